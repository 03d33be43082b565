#include "metadata/metadata_server.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/base64.h"
#include "common/log.h"

namespace ferry {

Status MetadataServer::start(const Options& options) {
  options_ = options;
  if (!options_.data_file.empty()) FERRY_RETURN_IF_ERROR(load());
  http::Server::Options so;
  so.bind_address = options.bind_address;
  so.port = options.port;
  so.max_body = options.max_value_bytes;
  return server_.start(so, [this](const http::Request& r) { return handle(r); });
}

size_t MetadataServer::size() {
  std::lock_guard lock(mu_);
  return kv_.size();
}

http::Response MetadataServer::handle(const http::Request& req) {
  if (req.path == "/health") {
    if (req.method != "GET") return {405, "GET only"};
    return {200, "ok"};
  }
  if (req.path != "/metadata") return {404, "no such path; use /metadata?key=K or /health"};
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
    kv_[key] = req.body;
  } else if (req.method == "DELETE") {
    if (!kv_.erase(key)) return {404, "metadata not found"};
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
  if (j.is_discarded() || !j.is_object())
    return Status::Corrupted("data file '" + options_.data_file + "' is not a JSON object");
  for (auto& [k, v] : j.items()) {
    std::string value;
    if (!v.is_string() || !base64Decode(v.get<std::string>(), value))
      return Status::Corrupted("data file '" + options_.data_file + "': bad value for '" + k + "'");
    kv_[k] = std::move(value);
  }
  FERRY_LOG(INFO) << "metadata server: loaded " << kv_.size() << " key(s) from " << options_.data_file;
  return Status::OK();
}

Status MetadataServer::save() {
  if (options_.data_file.empty()) return Status::OK();
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : kv_) j[k] = base64Encode(v);
  // Write a temporary file and rename it: a crash never leaves a half-written store.
  std::string tmp = options_.data_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump();
    if (!f.flush()) return Status::InternalError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), options_.data_file.c_str()) != 0)
    return Status::InternalError("cannot rename " + tmp + " to " + options_.data_file);
  return Status::OK();
}

}  // namespace ferry
