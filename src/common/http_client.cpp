// http::call over libcurl: connections to a server are kept alive and reused across calls
// (a process-wide pool of easy handles, each with its own connection cache), chunked
// replies decoded, a reused connection the server closed meanwhile retried on a fresh one.
// Only plain http://, no proxy from the environment, no redirects, bodies capped.
#include <curl/curl.h>

#include <ctime>
#include <mutex>
#include <vector>

#include "common/http.h"
#include "common/net.h"

namespace ferry::http {

namespace {

class EasyPool {
 public:
  static EasyPool& instance() {
    static auto* pool = new EasyPool;  // never destroyed: threads may still call at exit
    return *pool;
  }
  CURL* take() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void give(CURL* h) {
    {
      std::lock_guard lock(mu_);
      if (idle_.size() < kMaxIdle) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

 private:
  static constexpr size_t kMaxIdle = 8;  // handles kept; each caches a few connections
  EasyPool() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  std::mutex mu_;  // a leaf: guards idle_
  std::vector<CURL*> idle_;
};

struct BodySink {
  std::string* body;
  size_t max;
  bool too_large = false;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * count;
  if (sink->body->size() + n > sink->max) {
    sink->too_large = true;
    return 0;  // curl stops with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

Status statusOf(CURLcode rc, const BodySink& sink, const char* detail) {
  if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) return Status::Corrupted("HTTP response body too large");
  const std::string why = std::string(curl_easy_strerror(rc)) + (*detail ? std::string(": ") + detail : "");
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return Status::Timeout(why);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: return Status::Unavailable(why);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PARTIAL_FILE: return Status::Corrupted(why);
    default: return Status::Unavailable(why);
  }
}

}  // namespace

Status call(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
            const std::string& body, int timeout_ms, Response& out, size_t max_body, const std::string& token) {
  const std::string url = "http://" + net::joinHostPort(host, port) + target;
  EasyPool& pool = EasyPool::instance();
  CURL* h = pool.take();
  if (!h) return Status::InternalError(method + " " + url + ": curl_easy_init failed");
  curl_easy_reset(h);  // options only: the handle's live connections stay for reuse
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/octet-stream");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  if (!token.empty())
    headers = curl_slist_append(
        headers, ("Authorization: " + signature(token, method, target, body, std::time(nullptr))).c_str());
  out.body.clear();
  BodySink sink{&out.body, max_body};
  char detail[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // never an http_proxy from the environment
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  if (method == "GET" && body.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  const char* type = nullptr;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  if (type) out.content_type = type;
  curl_slist_free_all(headers);
  pool.give(h);
  if (rc != CURLE_OK) {
    Status st = statusOf(rc, sink, detail);
    return Status(st.code(), method + " " + url + ": " + st.message());
  }
  out.status = static_cast<int>(code);
  return Status::OK();
}

}  // namespace ferry::http
