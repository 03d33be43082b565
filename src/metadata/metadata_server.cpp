#include "metadata/metadata_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/base64.h"
#include "common/log.h"

namespace ferry {

namespace {
constexpr size_t kMaxNonces = 1u << 20;

Status writeFileDurably(const std::string& path, const std::string& text) {
  // A temporary file next to it, renamed over it: a crash leaves the old or the new file,
  // never half of one; fsync of the file and of the directory makes the rename stick.
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::InternalError("cannot create " + tmp + ": " + strerror(errno));
  ::fchmod(fd, 0600);  // an older file of that name may have had a wider mode
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == text.size() && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::InternalError("cannot write " + tmp + ": " + strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::InternalError("cannot rename " + tmp + " to " + path + ": " + strerror(errno));
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}
}  // namespace

Status MetadataServer::start(const Options& options) {
  options_ = options;
  if (!options_.data_file.empty()) FERRY_RETURN_IF_ERROR(load());
  http::Server::Options so;
  so.bind_address = options.bind_address;
  so.port = options.port;
  so.max_body = options.max_value_bytes;
  so.max_connections = options.max_connections;
  so.max_connections_per_address = options.max_connections_per_address;
  so.request_timeout_ms = options.request_timeout_ms;
  return server_.start(so, [this](const http::Request& r) { return handle(r); });
}

size_t MetadataServer::size() {
  std::lock_guard lock(mu_);
  return kv_.size();
}

bool MetadataServer::seenLocked(const std::string& nonce, int64_t now) {
  while (!nonce_order_.empty() && nonce_order_.front().first < now - 2 * kSignatureWindowS) {
    nonces_.erase(nonce_order_.front().second);
    nonce_order_.pop_front();
  }
  if (nonces_.size() >= kMaxNonces) return true;  // refuse rather than forget one within the window
  if (!nonces_.insert(nonce).second) return true;
  nonce_order_.emplace_back(now, nonce);
  return false;
}

http::Response MetadataServer::handle(const http::Request& req) {
  if (req.path == "/health") {
    if (req.method != "GET") return {405, "GET only"};
    return {200, "ok"};
  }
  if (req.path != "/metadata") return {404, "no such path; use /metadata?key=K or /health"};
  if (!options_.token.empty()) {
    std::string why;
    const int64_t now = std::time(nullptr);
    // The MAC (over up to a value's worth of body) outside the lock; only the nonce under it.
    int refused = http::verifySignature(req, options_.token, now, kSignatureWindowS,
                                        [&](const std::string& n) {
                                          std::lock_guard lock(mu_);
                                          return seenLocked(n, now);
                                        },
                                        why);
    if (refused) {
      FERRY_LOG_LIMITED(WARN, refusals_) << "metadata server: refused " << req.method << " " << req.path << ": " << why;
      http::Response r{refused, why};
      if (refused == 401) r.extra_headers = "WWW-Authenticate: Ferry-HMAC-SHA256\r\n";
      return r;
    }
  }
  auto k = req.query.find("key");
  if (k == req.query.end() || k->second.empty()) return {400, "missing ?key="};
  const std::string& key = k->second;
  if (key.size() > options_.max_key_bytes)
    return {414, "key longer than " + std::to_string(options_.max_key_bytes) + " bytes"};
  std::lock_guard lock(mu_);
  if (req.method == "GET") {
    auto it = kv_.find(key);
    if (it == kv_.end()) return {404, "metadata not found"};
    return {200, it->second, "application/octet-stream"};
  }
  if (req.method == "PUT" || req.method == "POST") {
    if (req.body.size() > options_.max_value_bytes) return {413, "value too large"};
    auto it = kv_.find(key);
    const size_t old = it == kv_.end() ? 0 : key.size() + it->second.size();
    if (it == kv_.end() && kv_.size() >= options_.max_keys)
      return {507, "the store holds " + std::to_string(kv_.size()) + " keys (--max_keys)"};
    if (bytes_ - old + key.size() + req.body.size() > options_.max_total_bytes)
      return {507, "the store would exceed " + std::to_string(options_.max_total_bytes) + " bytes (--max_total_bytes)"};
    bytes_ = bytes_ - old + key.size() + req.body.size();
    kv_[key] = req.body;
  } else if (req.method == "DELETE") {
    auto it = kv_.find(key);
    if (it == kv_.end()) return {404, "metadata not found"};
    bytes_ -= key.size() + it->second.size();
    kv_.erase(it);
  } else {
    return {405, "use GET, PUT or DELETE"};
  }
  Status st = save();
  if (!st.ok()) {
    FERRY_LOG(ERROR) << "metadata server: " << st.ToString();
    return {500, "cannot persist: " + st.message()};
  }
  return {200, req.method == "DELETE" ? "metadata deleted" : "metadata updated"};
}

Status MetadataServer::load() {
  std::ifstream f(options_.data_file);
  if (!f) return Status::OK();  // first start
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  auto bad = [&](const std::string& why) {
    return Status::Corrupted("data file '" + options_.data_file + "': " + why);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto put = [&](std::string key, std::string value) {
    bytes_ += key.size() + value.size();
    kv_[std::move(key)] = std::move(value);
  };
  if (j.contains("entries")) {
    // Format 2: keys and values base64, so any bytes round-trip.
    if (!j["entries"].is_array()) return bad("entries is not a list");
    for (const auto& e : j["entries"]) {
      std::string key, value;
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_string() ||
          !base64Decode(e[0].get<std::string>(), key) || !base64Decode(e[1].get<std::string>(), value))
        return bad("a malformed entry");
      put(std::move(key), std::move(value));
    }
  } else {
    // Format 1 (before keys were binary-safe): {"key": base64(value)}.
    for (auto& [k, v] : j.items()) {
      std::string value;
      if (!v.is_string() || !base64Decode(v.get<std::string>(), value)) return bad("bad value for '" + k + "'");
      put(k, std::move(value));
    }
  }
  FERRY_LOG(INFO) << "metadata server: loaded " << kv_.size() << " key(s) from " << options_.data_file;
  return Status::OK();
}

Status MetadataServer::save() {
  if (options_.data_file.empty()) return Status::OK();
  nlohmann::json entries = nlohmann::json::array();
  for (auto& [k, v] : kv_) entries.push_back({base64Encode(k), base64Encode(v)});
  nlohmann::json j = {{"format", 2}, {"entries", std::move(entries)}};
  return writeFileDurably(options_.data_file, j.dump());
}

}  // namespace ferry
