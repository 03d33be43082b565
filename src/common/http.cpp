#include "common/http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>

#include "common/auth.h"
#include "common/log.h"
#include "common/net.h"

namespace ferry::http {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
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
    case 507: return "Insufficient Storage";
    default: return "Status";
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view v) {
  size_t b = v.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  size_t e = v.find_last_not_of(" \t");
  return std::string(v.substr(b, e - b + 1));
}

// Reads until the blank line ending the head (starting with the bytes already received,
// `buf`); whatever body bytes came with it stay in `rest`. InvalidArgument on an oversized
// head.
Status readHead(int fd, std::string buf, std::string& head, std::string& rest, net::Clock::time_point deadline) {
  char tmp[4096];
  while (true) {
    auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      head = buf.substr(0, end);
      rest = buf.substr(end + 4);
      return Status::OK();
    }
    if (buf.size() > kMaxHeadBytes) return Status::InvalidArgument("header larger than 16 KiB");
    size_t n = 0;
    FERRY_RETURN_IF_ERROR(net::receiveSome(fd, tmp, sizeof tmp, deadline, n));
    if (n == 0) return Status::Unavailable("connection closed");
    buf.append(tmp, n);
  }
}

// Parses "Name: value" lines into lower-cased names. `duplicate`: a name seen twice with
// different values (the later one wins).
std::map<std::string, std::string> parseHeaders(std::string_view lines, std::string* duplicate = nullptr) {
  std::map<std::string, std::string> h;
  while (!lines.empty()) {
    size_t eol = lines.find('\n');
    std::string_view line = lines.substr(0, eol);
    lines = eol == std::string_view::npos ? std::string_view{} : lines.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = lower(std::string(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    auto [it, fresh] = h.emplace(name, value);
    if (!fresh && it->second != value) {
      if (duplicate) *duplicate = name;
      it->second = value;
    }
  }
  return h;
}

// The body's first bytes come out of `rest`; what follows them there (a pipelined next
// request) stays.
Status readBody(int fd, std::string& rest, size_t len, std::string& body, net::Clock::time_point deadline) {
  const size_t taken = std::min(rest.size(), len);
  body = rest.substr(0, taken);
  rest.erase(0, taken);
  size_t have = body.size();
  body.resize(len);
  while (have < len) {
    size_t n = 0;
    FERRY_RETURN_IF_ERROR(net::receiveSome(fd, body.data() + have, len - have, deadline, n));
    if (n == 0) return Status::Unavailable("connection closed mid-body");
    have += n;
  }
  return Status::OK();
}

// A plain decimal Content-Length (no sign, no spaces inside, no overflow).
bool parseLength(const std::string& v, size_t& out) {
  if (v.empty() || v.size() > 19) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  out = std::stoull(v);
  return true;
}

constexpr const char* kScheme = "Ferry-HMAC-SHA256";

auth::Mac requestMac(const std::string& token, const std::string& method, const std::string& target,
                     const std::string& ts, const std::string& nonce, const std::string& body_hash) {
  return auth::hmac(token, {"ferry http v1\n", method, "\n", target, "\n", ts, "\n", nonce, "\n", body_hash});
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

std::string signature(const std::string& token, const std::string& method, const std::string& target,
                      const std::string& body, int64_t now) {
  const std::string ts = std::to_string(now);
  const auth::Nonce n = auth::randomNonce();
  const std::string nonce = auth::hex(n.data(), 16);
  const auth::Mac mac = requestMac(token, method, target, ts, nonce, auth::sha256Hex(body));
  return std::string(kScheme) + " ts=" + ts + ",nonce=" + nonce + ",mac=" + auth::hex(mac.data(), mac.size());
}

int verifySignature(const Request& req, const std::string& token, int64_t now, int64_t window_s,
                    const std::function<bool(const std::string& nonce)>& seen, std::string& why) {
  auto h = req.headers.find("authorization");
  if (h == req.headers.end()) {
    why = "this server requires the cluster token (a Ferry-HMAC-SHA256 signature)";
    return 401;
  }
  std::string_view v = h->second;
  if (v.rfind(kScheme, 0) != 0) {
    why = "unknown authorization scheme";
    return 403;
  }
  std::map<std::string, std::string> fields;
  std::string_view rest = v.substr(std::strlen(kScheme));
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string part = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    size_t eq = part.find('=');
    if (eq != std::string::npos) fields[part.substr(0, eq)] = part.substr(eq + 1);
  }
  const std::string& ts = fields["ts"];
  const std::string& nonce = fields["nonce"];
  auth::Mac got{};
  int64_t when = 0;
  auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), when);
  if (ec != std::errc() || end != ts.data() + ts.size() || nonce.size() < 16 || nonce.size() > 64 ||
      !auth::unhex(fields["mac"], got.data(), got.size())) {
    why = "malformed signature";
    return 403;
  }
  if (when < now - window_s || when > now + window_s) {
    why = "signature timestamp too far from this server's clock";
    return 403;
  }
  const auth::Mac want = requestMac(token, req.method, req.target, ts, nonce, auth::sha256Hex(req.body));
  if (!auth::equal(want.data(), got.data(), want.size())) {
    why = "wrong cluster token";
    return 403;
  }
  if (seen(nonce)) {  // only a valid signature spends a nonce
    why = "replayed request";
    return 403;
  }
  return 0;
}

bool parseRequestHead(std::string_view head, Request& req, size_t& content_length, int& status, std::string& why) {
  auto bad = [&](int code, std::string text) {
    status = code;
    why = std::move(text);
    return false;
  };
  size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // "METHOD SP target SP HTTP/1.x", nothing more.
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return bad(400, "malformed request line");
  req.method = std::string(line.substr(0, sp1));
  req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view version = line.substr(sp2 + 1);
  if (req.method.empty() || req.target.empty() || req.target[0] != '/' || version.rfind("HTTP/1.", 0) != 0)
    return bad(400, "malformed request line");
  req.version = std::string(version);
  std::string duplicate;
  req.headers = parseHeaders(eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 1), &duplicate);
  if (duplicate == "content-length") return bad(400, "two different Content-Length headers");
  if (req.headers.count("transfer-encoding")) return bad(501, "chunked bodies are not supported; send Content-Length");
  content_length = 0;
  if (auto cl = req.headers.find("content-length"); cl != req.headers.end() && !parseLength(cl->second, content_length))
    return bad(400, "bad Content-Length");
  auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query.clear();
  if (q != std::string::npos) {
    std::string_view qs = std::string_view(req.target).substr(q + 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string pair(qs.substr(0, amp));
      qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
      auto eq = pair.find('=');
      std::string k, v;
      if (!urlDecode(pair.substr(0, eq), k) || !urlDecode(eq == std::string::npos ? "" : pair.substr(eq + 1), v))
        return bad(400, "bad percent-encoding in the query");
      req.query[k] = v;
    }
  }
  return true;
}

Status Server::start(const Options& options, Handler handler) {
  options_ = options;
  handler_ = std::move(handler);
  net::SocketServer::Options so;
  so.bind_address = options.bind_address;
  so.port = options.port;
  so.max_connections = options.max_connections;
  so.max_per_address = options.max_connections_per_address;
  so.io_tick_ms = std::clamp(options.request_timeout_ms / 8, 1, 1000);
  return server_.start(so, [this](int fd, const net::PeerInfo&) { serve(fd); });
}

bool Request::keepAlive() const {
  auto c = headers.find("connection");
  const std::string connection = c == headers.end() ? "" : lower(c->second);
  if (version == "HTTP/1.0") return connection == "keep-alive";
  return connection.find("close") == std::string::npos;
}

void Server::serve(int fd) {
  std::string pending;  // bytes of the next request that came with the last one
  for (size_t served = 0;; ++served) {
    if (served > 0 && pending.empty()) {
      // Kept alive: the next request's first bytes by the idle timeout, or the connection
      // (and its thread) goes.
      char first[4096];
      size_t n = 0;
      const auto idle = net::Clock::now() + std::chrono::milliseconds(options_.idle_timeout_ms);
      if (!net::receiveSome(fd, first, sizeof first, idle, n).ok() || n == 0) return;
      pending.assign(first, n);
    }
    if (!serveOne(fd, pending, served + 1 < options_.max_requests_per_connection)) return;
  }
}

bool Server::serveOne(int fd, std::string& pending, bool may_keep) {
  // The whole request (head and body) by this time, and our answer taken by the next.
  const auto budget = std::chrono::milliseconds(options_.request_timeout_ms);
  const auto deadline = net::Clock::now() + budget;
  Response resp;
  std::string head, rest;
  Status st = readHead(fd, std::move(pending), head, rest, deadline);
  pending.clear();
  if (st.IsUnavailable()) return false;
  Request req;
  size_t len = 0;
  int status = 0;
  std::string why;
  bool keep = false;  // only a request that was read whole and answered keeps the connection
  if (st.IsTimeout()) {
    resp = {408, "request head not complete in time"};
  } else if (!st.ok()) {
    resp = {431, st.message()};
  } else if (!parseRequestHead(head, req, len, status, why)) {
    resp = {status, why};
  } else if (len > options_.max_body) {
    resp = {413, "body larger than " + std::to_string(options_.max_body) + " bytes"};
  } else {
    st = readBody(fd, rest, len, req.body, deadline);
    if (st.IsTimeout()) {
      resp = {408, "request body not complete in time"};
    } else if (!st.ok()) {
      return false;  // the client went away mid-body
    } else {
      resp = handler_(req);
      keep = may_keep && options_.idle_timeout_ms > 0 && req.keepAlive();
      pending = std::move(rest);
    }
  }
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                    "\r\nContent-Type: " + resp.content_type +
                    "\r\nContent-Length: " + std::to_string(resp.body.size()) + "\r\n" + resp.extra_headers +
                    (keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  iovec iov[2] = {{out.data(), out.size()}, {resp.body.data(), resp.body.size()}};
  return net::writeAllV(fd, iov, 2, net::Clock::now() + budget).ok() && keep;
}

}  // namespace ferry::http
