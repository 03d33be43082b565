// http::call and http::StreamCall over libcurl: connections to a server are kept alive and
// reused across calls (a process-wide pool of easy handles, each with its own connection
// cache), chunked replies decoded, a reused connection the server closed meanwhile retried on
// a fresh one. Only plain http://, no proxy from the environment, no redirects, bodies capped.
// A stream (etcd's watch) runs on a handle of its own in a multi handle that cancel() wakes.
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

// What every request of ours sets: plain http only, never a proxy from the environment, no
// signals, errors into `detail`, a method with its body (none for a plain GET).
void setCommon(CURL* h, const std::string& url, const std::string& method, const std::string& body,
               int connect_timeout_ms, curl_slist* headers, char* detail) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (method == "GET" && body.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
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
  setCommon(h, url, method, body, timeout_ms, headers, detail);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
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

StreamCall::~StreamCall() = default;

void StreamCall::cancel() {
  std::lock_guard lock(mu_);
  canceled_ = true;
  if (multi_) curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

Status StreamCall::run(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, int connect_timeout_ms,
                       const std::function<bool(std::string_view)>& on_data) {
  const std::string url = "http://" + net::joinHostPort(host, port) + target;
  EasyPool::instance();  // curl_global_init, once
  CURL* h = curl_easy_init();
  CURLM* m = curl_multi_init();
  if (!h || !m) {
    if (h) curl_easy_cleanup(h);
    if (m) curl_multi_cleanup(m);
    return Status::InternalError(method + " " + url + ": curl init failed");
  }
  struct Sink {
    const std::function<bool(std::string_view)>* on_data;
    bool stopped = false;
  } sink{&on_data};
  auto write = +[](char* data, size_t size, size_t count, void* user) -> size_t {
    auto* s = static_cast<Sink*>(user);
    if ((*s->on_data)(std::string_view(data, size * count))) return size * count;
    s->stopped = true;
    return 0;
  };
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  char detail[CURL_ERROR_SIZE] = "";
  setCommon(h, url, method, body, connect_timeout_ms, headers, detail);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);  // a peer that vanished is noticed
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_multi_add_handle(m, h);
  {
    std::lock_guard lock(mu_);
    multi_ = m;
  }
  int running = 1;
  bool canceled = false;
  while (running) {
    {
      std::lock_guard lock(mu_);
      canceled = canceled_;
    }
    if (canceled) break;
    if (curl_multi_perform(m, &running) != CURLM_OK) break;
    if (running) curl_multi_poll(m, nullptr, 0, 1000, nullptr);  // cancel() wakes it
  }
  CURLcode rc = CURLE_OK;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(m, &left))
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  {
    std::lock_guard lock(mu_);
    multi_ = nullptr;
  }
  curl_multi_remove_handle(m, h);
  curl_multi_cleanup(m);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  if (canceled) return Status::Canceled(method + " " + url + ": stream canceled");
  if (sink.stopped) return Status::OK();
  if (running || rc != CURLE_OK) {
    BodySink none{nullptr, 0};
    Status st = statusOf(rc == CURLE_OK ? CURLE_RECV_ERROR : rc, none, detail);
    return Status(st.code(), method + " " + url + ": " + st.message());
  }
  if (code != 200) return Status::Unavailable(method + " " + url + " answered " + std::to_string(code));
  return Status::OK();
}

}  // namespace ferry::http
