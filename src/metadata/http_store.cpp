#include "metadata/http_store.h"

#include "common/http.h"

namespace ferry {

Status HttpStore::create(const std::string& url, int timeout_ms, const std::string& token,
                         std::unique_ptr<MetadataStore>& out) {
  auto s = std::make_unique<HttpStore>();
  FERRY_RETURN_IF_ERROR(http::parseUrl(url, s->host_, s->port_, s->path_));
  s->url_ = url;
  s->timeout_ms_ = timeout_ms;
  s->token_ = token;
  out = std::move(s);
  return Status::OK();
}

Status HttpStore::request(const std::string& method, const std::string& key,
                          const std::string& body, std::string* reply) {
  http::Response resp;
  Status st = http::call(host_, port_, method, path_ + "?key=" + http::urlEncode(key), body,
                         timeout_ms_, resp, 64u << 20, token_);
  if (!st.ok()) return Status(st.code(), "metadata server " + url_ + ": " + st.message());
  if (resp.status == 404) return Status::NotFound("key '" + key + "' not in " + url_);
  if (resp.status == 401 || resp.status == 403)
    return Status::PermissionDenied("metadata server " + url_ + " refused us (" + std::to_string(resp.status) +
                                    "): " + resp.body.substr(0, 200));
  if (resp.status != 200)
    return Status::Unavailable("metadata server " + url_ + " answered " + std::to_string(resp.status) +
                               ": " + resp.body.substr(0, 200));
  if (reply) *reply = std::move(resp.body);
  return Status::OK();
}

Status HttpStore::get(const std::string& key, std::string& value) {
  return request("GET", key, "", &value);
}

Status HttpStore::put(const std::string& key, const std::string& value) {
  return request("PUT", key, value, nullptr);
}

Status HttpStore::remove(const std::string& key) {
  Status st = request("DELETE", key, "", nullptr);
  return st.IsNotFound() ? Status::OK() : st;
}

}  // namespace ferry
