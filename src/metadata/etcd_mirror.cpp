#include "metadata/etcd_mirror.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "common/base64.h"
#include "common/log.h"

namespace ferry {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxLineBytes = 64u << 20;  // one watch message; beyond, read everything again

// The end of the key range holding every key that starts with `prefix`.
std::string rangeEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

bool decodedField(const json& kv, const char* name, std::string& out) {
  out.clear();
  if (!kv.contains(name)) return true;  // etcd leaves empty fields out
  return kv[name].is_string() && base64Decode(kv[name].get<std::string>(), out);
}

bool revisionOf(const json& reply, int64_t& out) {
  if (!reply.is_object() || !reply.contains("header") || !reply["header"].is_object()) return false;
  const json r = reply["header"].value("revision", json());
  if (r.is_number_integer()) {
    out = r.get<int64_t>();
    return true;
  }
  if (!r.is_string()) return false;
  const std::string& text = r.get_ref<const std::string&>();  // etcd's gateway sends int64 as text
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

EtcdMirror::EtcdMirror(std::string prefix, Post post, Watch watch)
    : prefix_(std::move(prefix)), post_(std::move(post)), watch_(std::move(watch)) {
  thread_ = std::thread([this] { run(); });
}

EtcdMirror::~EtcdMirror() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  call_.cancel();
  thread_.join();
}

bool EtcdMirror::find(const std::string& key, std::string& value) {
  std::lock_guard lock(mu_);
  if (!current_) return false;
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  value = it->second;
  return true;
}

bool EtcdMirror::current() {
  std::lock_guard lock(mu_);
  return current_;
}

Status EtcdMirror::snapshot(int64_t& revision) {
  std::string reply;
  FERRY_RETURN_IF_ERROR(post_("kv/range",
                              json{{"key", base64Encode(prefix_)}, {"range_end", base64Encode(rangeEnd(prefix_))}}.dump(),
                              reply));
  const json j = json::parse(reply, nullptr, false);
  if (!revisionOf(j, revision)) return Status::Corrupted("etcd kv/range: no revision in " + reply.substr(0, 200));
  std::unordered_map<std::string, std::string> entries;
  if (j.contains("kvs")) {
    if (!j["kvs"].is_array()) return Status::Corrupted("etcd kv/range: kvs is not a list");
    for (const json& kv : j["kvs"]) {
      std::string key, value;
      if (!kv.is_object() || !decodedField(kv, "key", key) || !decodedField(kv, "value", value))
        return Status::Corrupted("etcd kv/range: a malformed entry");
      entries[std::move(key)] = std::move(value);
    }
  }
  std::lock_guard lock(mu_);
  entries_ = std::move(entries);
  current_ = false;  // until the watch from `revision` + 1 is established
  return Status::OK();
}

bool applyWatchLine(std::string_view line, const std::string& prefix,
                    std::unordered_map<std::string, std::string>& entries, bool& created) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("result") || !j["result"].is_object()) return false;
  const json& r = j["result"];
  if (r.value("canceled", false)) return false;  // compacted past us, or etcd ended it
  if (r.value("created", false)) created = true;
  if (!r.contains("events")) return true;
  if (!r["events"].is_array()) return false;
  for (const json& e : r["events"]) {
    if (!e.is_object() || !e.contains("kv") || !e["kv"].is_object()) return false;
    std::string key, value;
    if (!decodedField(e["kv"], "key", key) || !decodedField(e["kv"], "value", value)) return false;
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    if (e.value("type", std::string()) == "DELETE")
      entries.erase(key);
    else
      entries[std::move(key)] = std::move(value);
  }
  return true;
}

bool EtcdMirror::applyLine(std::string_view line) {
  std::lock_guard lock(mu_);
  return applyWatchLine(line, prefix_, entries_, current_);
}

bool EtcdMirror::onData(std::string_view data) {
  partial_.append(data);
  size_t start = 0, end;
  while ((end = partial_.find('\n', start)) != std::string::npos) {
    std::string_view line(partial_.data() + start, end - start);
    if (!line.empty() && !applyLine(line)) return false;
    start = end + 1;
  }
  partial_.erase(0, start);
  return partial_.size() <= kMaxLineBytes;
}

void EtcdMirror::run() {
  auto backoff = std::chrono::milliseconds(100);
  log::RateLimit said(1, std::chrono::seconds(60));
  while (true) {
    int64_t revision = 0;
    Status st = snapshot(revision);
    if (st.ok()) {
      partial_.clear();
      const std::string body = json{{"create_request",
                                     {{"key", base64Encode(prefix_)},
                                      {"range_end", base64Encode(rangeEnd(prefix_))},
                                      {"start_revision", std::to_string(revision + 1)}}}}
                                   .dump();
      st = watch_(call_, body, [this](std::string_view d) { return onData(d); });
    }
    std::unique_lock lock(mu_);
    const bool was_current = current_;
    current_ = false;
    if (stopping_) return;
    if (was_current) backoff = std::chrono::milliseconds(100);  // it worked for a while: retry soon
    FERRY_LOG_LIMITED(INFO, said) << "etcd mirror of '" << prefix_ << "' interrupted ("
                                  << (st.ok() ? std::string("watch ended") : st.ToString())
                                  << "); lookups read etcd until it is back";
    cv_.wait_for(lock, backoff, [&] { return stopping_; });
    if (stopping_) return;
    backoff = std::min<std::chrono::milliseconds>(2 * backoff, std::chrono::seconds(5));
  }
}

}  // namespace ferry
