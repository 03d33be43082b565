#include "metadata/etcd_store.h"

#include <nlohmann/json.hpp>
#include <charconv>
#include <sstream>

#include "common/base64.h"
#include "common/http.h"
#include "common/net.h"

namespace ferry {

using json = nlohmann::json;

Status EtcdStore::create(const std::string& endpoints, int timeout_ms, int lease_ttl_s, bool mirror,
                         std::unique_ptr<MetadataStore>& out) {
  auto s = std::make_unique<EtcdStore>();
  s->mirror_enabled_ = mirror;
  std::string list = endpoints.rfind("etcd://", 0) == 0 ? endpoints.substr(7) : endpoints;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    std::string host;
    uint16_t port;
    FERRY_RETURN_IF_ERROR(net::parseHostPort(item, host, port));
    s->endpoints_.push_back({host, port});
  }
  if (s->endpoints_.empty()) return Status::InvalidArgument("no etcd endpoint in '" + endpoints + "'");
  s->endpoints_text_ = list;
  s->timeout_ms_ = timeout_ms;
  s->lease_ttl_s_ = std::max(lease_ttl_s, 2);
  out = std::move(s);
  return Status::OK();
}

namespace {
// etcd's gateway sends int64 fields as JSON strings ("ID": "7587..."); tolerate numbers too.
bool int64Field(const json& j, const char* name, int64_t& out) {
  if (!j.is_object() || !j.contains(name)) return false;
  const json& v = j[name];
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}
}  // namespace

Status EtcdStore::post(const std::string& path, const std::string& body, std::string& reply) {
  Status last;
  const size_t first = preferred_.load(std::memory_order_relaxed);
  for (size_t k = 0; k < endpoints_.size(); ++k) {
    size_t i = (first + k) % endpoints_.size();
    http::Response resp;
    last = http::call(endpoints_[i].first, endpoints_[i].second, "POST", "/v3/" + path, body,
                      timeout_ms_, resp);
    if (!last.ok()) continue;
    if (resp.status != 200) {
      last = Status::Unavailable("etcd " + path + " answered " + std::to_string(resp.status) + ": " +
                                 resp.body.substr(0, 200));
      continue;
    }
    preferred_.store(i, std::memory_order_relaxed);
    reply = std::move(resp.body);
    return Status::OK();
  }
  return Status(last.code(), describe() + ": " + last.message());
}

Status EtcdStore::grantLease(int64_t& id) {
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("lease/grant", json{{"TTL", lease_ttl_s_}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  if (!int64Field(j, "ID", id) || id == 0) return Status::Corrupted("etcd lease/grant: " + reply.substr(0, 200));
  return Status::OK();
}

Status EtcdStore::get(const std::string& key, std::string& value) {
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("kv/range", json{{"key", base64Encode(key)}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  if (!j.is_object()) return Status::Corrupted("etcd kv/range: not a JSON object: " + reply.substr(0, 200));
  if (!j.contains("kvs")) return Status::NotFound("key '" + key + "' not in " + describe());
  const json& kvs = j["kvs"];
  if (!kvs.is_array()) return Status::Corrupted("etcd kv/range: kvs is not a list");
  if (kvs.empty()) return Status::NotFound("key '" + key + "' not in " + describe());
  const json& kv = kvs[0];
  if (!kv.is_object()) return Status::Corrupted("etcd kv/range: an entry is not an object");
  // etcd leaves out empty fields: a missing value is an empty one.
  std::string encoded;
  if (kv.contains("value")) {
    if (!kv["value"].is_string()) return Status::Corrupted("etcd kv/range: value is not a string");
    encoded = kv["value"].get<std::string>();
  }
  if (!base64Decode(encoded, value)) return Status::Corrupted("etcd kv/range: value is not base64");
  return Status::OK();
}

EtcdStore::~EtcdStore() { mirror_.reset(); }  // its thread calls post() on us

Status EtcdStore::lookup(const std::string& key, std::string& value) {
  if (!mirror_enabled_) return get(key, value);
  std::call_once(mirror_once_, [&] {
    mirror_ = std::make_unique<EtcdMirror>(
        key.substr(0, key.rfind('/') + 1),
        [this](const std::string& path, const std::string& body, std::string& reply) { return post(path, body, reply); },
        [this](http::StreamCall& call, const std::string& body, const std::function<bool(std::string_view)>& on_data) {
          const auto& [host, port] = endpoints_[preferred_.load(std::memory_order_relaxed) % endpoints_.size()];
          return call.run(host, port, "POST", "/v3/watch", body, timeout_ms_, on_data);
        });
    mirror_made_.store(mirror_.get(), std::memory_order_release);
  });
  if (key.compare(0, mirror_->prefix().size(), mirror_->prefix()) == 0 && mirror_->find(key, value)) {
    mirror_hits_.fetch_add(1, std::memory_order_relaxed);
    return Status::OK();
  }
  return get(key, value);
}

bool EtcdStore::mirrorCurrent() {
  EtcdMirror* mirror = mirror_made_.load(std::memory_order_acquire);
  return mirror && mirror->current();
}

Status EtcdStore::putOnLease(const std::string& key, const std::string& value, std::string& reply) {
  int64_t lease = lease_.load();
  if (lease == 0) {
    std::lock_guard lock(grant_mu_);
    lease = lease_.load();
    if (lease == 0) {
      FERRY_RETURN_IF_ERROR(grantLease(lease));
      lease_ = lease;
    }
  }
  return post("kv/put",
              json{{"key", base64Encode(key)}, {"value", base64Encode(value)}, {"lease", std::to_string(lease)}}.dump(),
              reply);
}

Status EtcdStore::put(const std::string& key, const std::string& value) {
  std::string reply;
  Status st = putOnLease(key, value, reply);
  bool lease_gone = reply.find("lease not found") != std::string::npos ||
                    (!st.ok() && st.message().find("lease not found") != std::string::npos);
  if (!lease_gone) return st;
  lease_ = 0;  // expired under us: a fresh one, once
  return putOnLease(key, value, reply);
}

Status EtcdStore::remove(const std::string& key) {
  std::string reply;
  return post("kv/deleterange", json{{"key", base64Encode(key)}}.dump(), reply);
}

Status EtcdStore::keepAlive() {
  const int64_t lease = lease_.load();
  if (lease == 0) return Status::OK();
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("lease/keepalive", json{{"ID", std::to_string(lease)}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  // An unknown (expired) lease comes back without a TTL.
  int64_t ttl = 0;
  if (!j.is_object() || !j.contains("result") || !int64Field(j["result"], "TTL", ttl) || ttl <= 0) {
    int64_t expected = lease;
    lease_.compare_exchange_strong(expected, 0);
    return Status::NotFound("etcd lease expired");
  }
  return Status::OK();
}

}  // namespace ferry
