#include "metadata/etcd_store.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/base64.h"
#include "common/http.h"
#include "common/net.h"

namespace ferry {

using json = nlohmann::json;

Status EtcdStore::create(const std::string& endpoints, int timeout_ms, int lease_ttl_s,
                         std::unique_ptr<MetadataStore>& out) {
  auto s = std::make_unique<EtcdStore>();
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

Status EtcdStore::post(const std::string& path, const std::string& body, std::string& reply) {
  Status last;
  for (size_t k = 0; k < endpoints_.size(); ++k) {
    size_t i = (preferred_ + k) % endpoints_.size();
    http::Response resp;
    last = http::call(endpoints_[i].first, endpoints_[i].second, "POST", "/v3/" + path, body,
                      timeout_ms_, resp);
    if (!last.ok()) continue;
    if (resp.status != 200) {
      last = Status::Unavailable("etcd " + path + " answered " + std::to_string(resp.status) + ": " +
                                 resp.body.substr(0, 200));
      continue;
    }
    preferred_ = i;
    reply = std::move(resp.body);
    return Status::OK();
  }
  return Status(last.code(), describe() + ": " + last.message());
}

Status EtcdStore::grantLease(int64_t& id) {
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("lease/grant", json{{"TTL", lease_ttl_s_}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.contains("ID")) return Status::Corrupted("etcd lease/grant: " + reply.substr(0, 200));
  id = std::stoll(j["ID"].get<std::string>());
  return Status::OK();
}

Status EtcdStore::get(const std::string& key, std::string& value) {
  std::lock_guard lock(mu_);
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("kv/range", json{{"key", base64Encode(key)}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) return Status::Corrupted("etcd kv/range: bad JSON");
  if (!j.contains("kvs") || j["kvs"].empty()) return Status::NotFound("key '" + key + "' not in " + describe());
  if (!base64Decode(j["kvs"][0].value("value", ""), value))
    return Status::Corrupted("etcd kv/range: value is not base64");
  return Status::OK();
}

Status EtcdStore::put(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  if (lease_ == 0) FERRY_RETURN_IF_ERROR(grantLease(lease_));
  std::string reply;
  Status st = post("kv/put",
                   json{{"key", base64Encode(key)}, {"value", base64Encode(value)},
                        {"lease", std::to_string(lease_)}}.dump(),
                   reply);
  bool lease_gone = reply.find("lease not found") != std::string::npos ||
                    (!st.ok() && st.message().find("lease not found") != std::string::npos);
  if (lease_gone) {
    lease_ = 0;  // expired under us: a fresh one, once
    FERRY_RETURN_IF_ERROR(grantLease(lease_));
    st = post("kv/put",
              json{{"key", base64Encode(key)}, {"value", base64Encode(value)},
                   {"lease", std::to_string(lease_)}}.dump(),
              reply);
  }
  return st;
}

Status EtcdStore::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  std::string reply;
  return post("kv/deleterange", json{{"key", base64Encode(key)}}.dump(), reply);
}

Status EtcdStore::keepAlive() {
  std::lock_guard lock(mu_);
  if (lease_ == 0) return Status::OK();
  std::string reply;
  FERRY_RETURN_IF_ERROR(post("lease/keepalive", json{{"ID", std::to_string(lease_)}}.dump(), reply));
  auto j = json::parse(reply, nullptr, false);
  // An unknown (expired) lease comes back without a TTL.
  std::string ttl = (!j.is_discarded() && j.contains("result")) ? j["result"].value("TTL", "0") : "0";
  if (ttl == "0") {
    lease_ = 0;
    return Status::NotFound("etcd lease expired");
  }
  return Status::OK();
}

}  // namespace ferry
