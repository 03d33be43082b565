#include "transport/tcp/tcp_rails.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace ferry::tcp_rails {

namespace {

// The address as bytes (4 or 16), empty when it is not numeric.
std::string addressBytes(const std::string& s) {
  uint8_t b[16];
  if (inet_pton(AF_INET, s.c_str(), b) == 1) return std::string(reinterpret_cast<char*>(b), 4);
  if (inet_pton(AF_INET6, s.c_str(), b) == 1) return std::string(reinterpret_cast<char*>(b), 16);
  return "";
}

// Leading bits two addresses share; -1 across families.
int commonPrefix(const std::string& a, const std::string& b) {
  if (a.empty() || a.size() != b.size()) return -1;
  int bits = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    uint8_t x = static_cast<uint8_t>(a[i] ^ b[i]);
    if (x == 0) {
      bits += 8;
      continue;
    }
    while (!(x & 0x80)) {
      ++bits;
      x <<= 1;
    }
    break;
  }
  return bits;
}

Status checkLocal(const std::string& addr) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* ai = nullptr;
  if (getaddrinfo(addr.c_str(), "0", &hints, &ai) != 0)
    return Status::InvalidArgument("transports/tcp/rails: '" + addr + "' is not a numeric address");
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0 && ::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  int err = errno;
  if (fd >= 0) ::close(fd);
  freeaddrinfo(ai);
  if (!ok)
    return Status::InvalidArgument("transports/tcp/rails: '" + addr + "' is not an address of this machine (" +
                                   std::strerror(err) + ")");
  return Status::OK();
}

}  // namespace

Status parseLocal(const std::string& text, std::vector<std::string>& out) {
  out.clear();
  std::string item;
  auto flush = [&]() -> Status {
    if (item.empty()) return Status::OK();
    if (addressBytes(item).empty())
      return Status::InvalidArgument("transports/tcp/rails: '" + item + "' is not a numeric address");
    if (std::find(out.begin(), out.end(), item) == out.end()) {
      if (out.size() == kMaxRails)
        return Status::InvalidArgument("transports/tcp/rails: at most " + std::to_string(kMaxRails) + " rails");
      FERRY_RETURN_IF_ERROR(checkLocal(item));
      out.push_back(item);
    }
    item.clear();
    return Status::OK();
  };
  for (char c : text) {
    if (c == ',') {
      FERRY_RETURN_IF_ERROR(flush());
    } else if (c != ' ' && c != '\t') {
      item += c;
    }
  }
  return flush();
}

std::string describe(const std::vector<std::string>& rails) {
  if (rails.empty()) return "";
  return nlohmann::json({{"rails", rails}}).dump();
}

std::vector<std::string> parsePeer(const std::string& attrs_json) {
  std::vector<std::string> rails;
  auto j = nlohmann::json::parse(attrs_json, nullptr, false);
  if (!j.is_object() || !j.contains("rails") || !j["rails"].is_array() || j["rails"].size() > kMaxRails) return {};
  for (const auto& r : j["rails"]) {
    if (!r.is_string() || addressBytes(r.get<std::string>()).empty()) return {};
    rails.push_back(r.get<std::string>());
  }
  return rails;
}

std::vector<Path> plan(const std::vector<std::string>& local, const std::vector<std::string>& peer,
                       const std::string& peer_host, size_t count) {
  const size_t n = std::max({count, local.size(), peer.size(), size_t{1}});
  std::vector<Path> paths(n);
  for (size_t k = 0; k < n; ++k) {
    Path& p = paths[k];
    p.source = local.empty() ? "" : local[k % local.size()];
    if (peer.empty()) {
      p.host = peer_host;
      continue;
    }
    if (p.source.empty()) {
      p.host = peer[k % peer.size()];
      continue;
    }
    const std::string src = addressBytes(p.source);
    int best = -2;
    for (size_t i = 0; i < peer.size(); ++i) {
      const std::string& candidate = peer[(k + i) % peer.size()];  // round-robin among equals
      int score = commonPrefix(src, addressBytes(candidate));
      if (score > best) {
        best = score;
        p.host = candidate;
      }
    }
    if (best < 0) {  // no peer rail of our family: leave as routing decides
      p.source.clear();
      p.host = peer[k % peer.size()];
    }
  }
  return paths;
}

}  // namespace ferry::tcp_rails
