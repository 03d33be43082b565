// Minimal HTTP/1.1 over our sockets: enough for metadata stores (Mooncake's HTTP metadata
// protocol, etcd's v3 JSON gateway). Content-Length bodies only, every size capped and
// every wait bounded: a request must arrive whole (head and body) within the server's
// request timeout, however slowly a client drips it; a kept-alive connection waits a short
// idle timeout for the next one.
//
// Requests may be signed with the cluster token (Ferry-HMAC-SHA256: a MAC over the method,
// target, a timestamp, a nonce and the body's hash), so a server can refuse clients without
// the token while the token never crosses the wire.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/socket_server.h"
#include "ferry/status.h"

namespace ferry::http {

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // as sent: path and query
  std::string version;  // "HTTP/1.1", "HTTP/1.0"
  std::string path;    // without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  /// Whether the client asked to keep the connection (HTTP/1.1 unless "Connection: close").
  bool keepAlive() const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
  std::string extra_headers{};  // whole "Name: value\r\n" lines
};

std::string urlEncode(const std::string& s);
bool urlDecode(const std::string& s, std::string& out);

/// "http://host:port/path" -> parts (path defaults to "/").
Status parseUrl(const std::string& url, std::string& host, uint16_t& port, std::string& path);

constexpr size_t kMaxHeadBytes = 16 * 1024;
/// Parses a request head (without the blank line that ends it): request line, headers, the
/// query. On a bad one returns false with the status to answer (400, 501, ...) and why. A
/// Content-Length that is not a plain number, or a second one that differs, is a 400.
bool parseRequestHead(std::string_view head, Request& out, size_t& content_length, int& status, std::string& why);

/// Sends one request and reads the whole response (body capped at max_body bytes). With a
/// token the request is signed.
Status call(const std::string& host, uint16_t port, const std::string& method,
            const std::string& target, const std::string& body, int timeout_ms, Response& out,
            size_t max_body = 64u << 20, const std::string& token = "");

/// One streaming request (etcd's watch): the reply's body goes to `on_data` as it arrives,
/// until the server ends it or on_data returns false; cancel() (from any thread) ends it at
/// once and every later run(). Its connection is its own, not the pool's.
class StreamCall {
 public:
  ~StreamCall();
  /// OK when the server ended a 200 reply or on_data stopped it; Canceled after cancel().
  Status run(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
             const std::string& body, int connect_timeout_ms, const std::function<bool(std::string_view)>& on_data);
  void cancel();

 private:
  std::mutex mu_;  // a leaf: guards multi_ and canceled_
  void* multi_ = nullptr;  // the running transfer's CURLM, woken by cancel()
  bool canceled_ = false;
};

/// The Authorization header value signing a request with `token`, at unix time `now`.
std::string signature(const std::string& token, const std::string& method, const std::string& target,
                      const std::string& body, int64_t now);
/// Checks a request's signature: 401 (none), 403 (malformed, wrong, stale, or a nonce seen
/// before: `seen` is asked and must remember it) or 0 when it holds. `window_s`: how far
/// the timestamp may be from now.
int verifySignature(const Request& req, const std::string& token, int64_t now, int64_t window_s,
                    const std::function<bool(const std::string& nonce)>& seen, std::string& why);

/// A thread-per-connection HTTP server. Malformed requests get a 4xx and a closed
/// connection; they never reach the handler.
class Server {
 public:
  using Handler = std::function<Response(const Request&)>;
  struct Options {
    std::string bind_address = "127.0.0.1";
    uint16_t port = 0;
    size_t max_body = 16u << 20;
    size_t max_connections = 256;
    size_t max_connections_per_address = 32;
    int request_timeout_ms = 10000;  // the whole request, head and body
    // A kept-alive connection (HTTP/1.1) waits this long for its next request, holding its
    // thread (0: one request per connection). Short: a client pool reuses connections within
    // a burst of lookups, and idle ones never crowd out new clients for long.
    int idle_timeout_ms = 2000;
    size_t max_requests_per_connection = 10000;
  };
  Status start(const Options& options, Handler handler);
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }

 private:
  void serve(int fd);
  // Reads, answers and returns whether to keep the connection for another request;
  // `pending` holds bytes of the request already received, and gets those of the next.
  bool serveOne(int fd, std::string& pending, bool may_keep);

  Options options_;
  Handler handler_;
  net::SocketServer server_;
};

}  // namespace ferry::http
