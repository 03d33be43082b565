// Minimal HTTP/1.1 over our sockets: enough for metadata stores (Mooncake's HTTP metadata
// protocol, etcd's v3 JSON gateway). One request per connection, Content-Length bodies only,
// every size capped and every wait bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/tcp_server.h"
#include "ferry/status.h"

namespace ferry::http {

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // without the query
  std::map<std::string, std::string> query;  // decoded
  std::string body;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

std::string urlEncode(const std::string& s);
bool urlDecode(const std::string& s, std::string& out);

/// "http://host:port/path" -> parts (path defaults to "/").
Status parseUrl(const std::string& url, std::string& host, uint16_t& port, std::string& path);

/// Sends one request and reads the whole response (body capped at max_body bytes).
Status call(const std::string& host, uint16_t port, const std::string& method,
            const std::string& target, const std::string& body, int timeout_ms, Response& out,
            size_t max_body = 64u << 20);

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
    int io_timeout_ms = 10000;
  };
  Status start(const Options& options, Handler handler);
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }

 private:
  void serve(int fd);

  Options options_;
  Handler handler_;
  net::TcpServer server_;
};

}  // namespace ferry::http
