#include "common/http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "common/log.h"
#include "common/net.h"

namespace ferry::http {

namespace {

constexpr size_t kMaxHead = 16 * 1024;

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads until the blank line ending the head; whatever body bytes came with it stay in
// `rest`. Returns false (with an HTTP status in `status`) on a bad or oversized head.
Status readHead(int fd, std::string& head, std::string& rest) {
  std::string buf;
  char tmp[4096];
  while (true) {
    auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      head = buf.substr(0, end);
      rest = buf.substr(end + 4);
      return Status::OK();
    }
    if (buf.size() > kMaxHead) return Status::InvalidArgument("431 header too large");
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n == 0) return Status::Unavailable("connection closed");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Timeout("408 no complete request head in time");
    }
    buf.append(tmp, static_cast<size_t>(n));
  }
}

// Parses "Name: value" lines into lower-cased names.
std::map<std::string, std::string> parseHeaders(std::istringstream& lines) {
  std::map<std::string, std::string> h;
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    h[lower(line.substr(0, colon))] = v;
  }
  return h;
}

Status readBody(int fd, std::string& rest, size_t len, std::string& body) {
  body = rest.substr(0, std::min(rest.size(), len));
  if (body.size() < len) {
    size_t have = body.size();
    body.resize(len);
    FERRY_RETURN_IF_ERROR(net::readAll(fd, body.data() + have, len - have));
  }
  return Status::OK();
}

// Joins the chunks of a chunked body ("<hex size>\r\n<data>\r\n" ... "0\r\n\r\n"); a stream
// cut short keeps the complete chunks (a streaming reply ends when we close).
Status decodeChunked(const std::string& raw, std::string& out) {
  out.clear();
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) break;
    char* end = nullptr;
    unsigned long long size = std::strtoull(raw.c_str() + pos, &end, 16);
    if (end == raw.c_str() + pos) return Status::Corrupted("bad chunk size in HTTP response");
    if (size == 0) break;
    if (eol + 2 + size > raw.size()) break;
    out.append(raw, eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return Status::OK();
}

void setTimeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

std::string urlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool urlDecode(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || !isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !isxdigit(static_cast<unsigned char>(s[i + 2])))
        return false;
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return true;
}

Status parseUrl(const std::string& url, std::string& host, uint16_t& port, std::string& path) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return Status::InvalidArgument("not an http:// URL: '" + url + "'");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (hostport.find(':') == std::string::npos) hostport += ":80";
  return net::parseHostPort(hostport, host, port);
}

Status call(const std::string& host, uint16_t port, const std::string& method,
            const std::string& target, const std::string& body, int timeout_ms, Response& out,
            size_t max_body) {
  int fd = -1;
  FERRY_RETURN_IF_ERROR(net::connectTcp(host, port, timeout_ms, fd));
  setTimeouts(fd, timeout_ms);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + net::joinHostPort(host, port) +
                    "\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  iovec iov[2] = {{req.data(), req.size()}, {const_cast<char*>(body.data()), body.size()}};
  Status st = net::writeAllV(fd, iov, body.empty() ? 1 : 2);
  std::string head, rest;
  if (st.ok()) st = readHead(fd, head, rest);
  if (st.ok()) {
    std::istringstream lines(head);
    std::string status_line;
    std::getline(lines, status_line);
    int code = 0;
    if (std::sscanf(status_line.c_str(), "HTTP/%*d.%*d %d", &code) != 1) {
      st = Status::Corrupted("bad HTTP status line from " + net::joinHostPort(host, port));
    } else {
      auto headers = parseHeaders(lines);
      out.status = code;
      auto cl = headers.find("content-length");
      if (cl != headers.end()) {
        size_t len = std::strtoull(cl->second.c_str(), nullptr, 10);
        if (len > max_body) st = Status::Corrupted("HTTP response body too large");
        else st = readBody(fd, rest, len, out.body);
      } else {  // read to EOF (Connection: close)
        std::string raw = rest;
        char tmp[4096];
        ssize_t n;
        while (((n = ::recv(fd, tmp, sizeof tmp, 0)) > 0 || (n < 0 && errno == EINTR)) &&
               raw.size() <= max_body)
          if (n > 0) raw.append(tmp, static_cast<size_t>(n));
        auto te = headers.find("transfer-encoding");
        if (te != headers.end() && lower(te->second).find("chunked") != std::string::npos)
          st = decodeChunked(raw, out.body);  // e.g. etcd's streaming gateway replies
        else
          out.body = std::move(raw);
      }
    }
  }
  ::close(fd);
  if (!st.ok())
    return Status(st.code(), method + " http://" + net::joinHostPort(host, port) + target + ": " +
                                 st.message());
  return Status::OK();
}

Status Server::start(const Options& options, Handler handler) {
  options_ = options;
  handler_ = std::move(handler);
  net::TcpServer::Options to;
  to.bind_address = options.bind_address;
  to.port = options.port;
  to.max_connections = options.max_connections;
  to.io_timeout_ms = options.io_timeout_ms;
  return server_.start(to, [this](int fd, const std::string&) { serve(fd); });
}

void Server::serve(int fd) {
  Response resp;
  std::string head, rest;
  Status st = readHead(fd, head, rest);
  if (st.IsUnavailable()) return;
  Request req;
  if (!st.ok()) {
    resp.status = std::atoi(st.message().c_str());
    resp.body = st.message().substr(4);
  } else {
    std::istringstream lines(head);
    std::string request_line, target, version;
    std::getline(lines, request_line);
    std::istringstream rl(request_line);
    auto headers = parseHeaders(lines);
    if (!(rl >> req.method >> target >> version) || version.rfind("HTTP/1.", 0) != 0 ||
        target.empty() || target[0] != '/') {
      resp = {400, "malformed request line"};
    } else if (headers.count("transfer-encoding")) {
      resp = {501, "chunked bodies are not supported; send Content-Length"};
    } else {
      size_t len = 0;
      auto cl = headers.find("content-length");
      if (cl != headers.end()) {
        char* end = nullptr;
        unsigned long long v = std::strtoull(cl->second.c_str(), &end, 10);
        if (end == cl->second.c_str() || *end) resp = {400, "bad Content-Length"};
        len = static_cast<size_t>(v);
      }
      if (resp.status == 200 && len > options_.max_body) {
        resp = {413, "body larger than " + std::to_string(options_.max_body) + " bytes"};
      } else if (resp.status == 200 && !readBody(fd, rest, len, req.body).ok()) {
        return;  // the client went away mid-body
      }
      auto q = target.find('?');
      req.path = target.substr(0, q);
      if (resp.status == 200 && q != std::string::npos) {
        std::istringstream qs(target.substr(q + 1));
        std::string pair;
        while (std::getline(qs, pair, '&')) {
          auto eq = pair.find('=');
          std::string k, v;
          if (!urlDecode(pair.substr(0, eq), k) ||
              !urlDecode(eq == std::string::npos ? "" : pair.substr(eq + 1), v)) {
            resp = {400, "bad percent-encoding in the query"};
            break;
          }
          req.query[k] = v;
        }
      }
      if (resp.status == 200) resp = handler_(req);
    }
  }
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                    "\r\nContent-Type: " + resp.content_type +
                    "\r\nContent-Length: " + std::to_string(resp.body.size()) +
                    "\r\nConnection: close\r\n\r\n";
  iovec iov[2] = {{out.data(), out.size()}, {resp.body.data(), resp.body.size()}};
  net::writeAllV(fd, iov, 2).IgnoreError();
}

}  // namespace ferry::http
