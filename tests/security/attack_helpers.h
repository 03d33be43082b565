// What the attack tests share: forged descriptors, raw sockets from a chosen source address,
// raw frames, and reading another process's resource use.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "common/base64.h"
#include "common/net.h"
#include "control/wire.h"
#include "model/segment_descriptor.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry::test {

inline const std::string kToken = "correct horse battery staple 42";

/// The descriptor inside an exportLocalSegment handle.
inline SegmentDescriptor decodeExported(const std::string& handle) {
  std::string text;
  SegmentDescriptor d;
  if (base64Decode(handle.substr(handle.find("v1:") + 3), text)) SegmentDescriptor::fromJson(text, d).IgnoreError();
  return d;
}

/// A segment handle for importRemoteSegment carrying whatever `d` claims.
inline std::string forgedHandle(const SegmentDescriptor& d) { return "ferry-segment:v1:" + base64Encode(d.toJson()); }

/// A TCP connection to 127.0.0.1:port from `source` (e.g. 127.0.0.2): -1 on failure.
/// Non-blocking when `nonblocking` (the connect may still be in progress).
inline int connectFrom(const std::string& source, uint16_t port, bool nonblocking = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline void setReceiveTimeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/// Sends one request frame (header, then `body`).
inline bool sendFrame(int fd, wire::MsgType type, std::string_view body, uint64_t id = 1) {
  // One send: a server may refuse on the header and close without reading the body, and a
  // body sent after that close would meet a reset.
  std::string frame(wire::kHeaderSize, '\0');
  wire::encodeHeader({type, static_cast<uint32_t>(body.size()), 0, id}, reinterpret_cast<uint8_t*>(frame.data()));
  frame.append(body);
  return net::writeAll(fd, frame.data(), frame.size()).ok();
}

/// Reads one response frame; false on EOF, timeout or a malformed frame.
inline bool readFrame(int fd, const wire::MessageTable& table, wire::FrameHeader& h, std::string& body) {
  uint8_t hb[wire::kHeaderSize];
  if (!net::readAll(fd, hb, sizeof hb).ok() || !wire::decodeHeader(hb, sizeof hb, table, h).ok()) return false;
  body.assign(h.body_len, '\0');
  return net::readAll(fd, body.data(), body.size()).ok();
}

/// Every message a tcp target answers (control and data).
inline const wire::MessageTable& tcpMessages() { return tcp_wire::messages(); }

/// A raw WRITE (with `len` bytes of 'W') or READ of a peer's memory, as a client that skips
/// every client-side check would send it.
struct RawRequest {
  wire::MsgType type;
  std::string body;
};
inline RawRequest dataRequest(wire::MsgType type, uint64_t addr, uint64_t len) {
  std::string body(tcp_wire::kRangeSize, '\0');
  tcp_wire::encodeRange(addr, len, reinterpret_cast<uint8_t*>(body.data()));
  if (type == tcp_wire::kWrite) body.append(len, 'W');
  return {type, body};
}
inline RawRequest writeRequest(uint64_t addr, uint64_t len) { return dataRequest(tcp_wire::kWrite, addr, len); }
inline RawRequest readRequest(uint64_t addr, uint64_t len) { return dataRequest(tcp_wire::kRead, addr, len); }

/// True when the other side closed the connection (EOF or reset) within the socket's
/// receive timeout, whatever it sent before.
inline bool closedByPeer(int fd) {
  char b[4096];
  while (true) {
    ssize_t n = ::recv(fd, b, sizeof b, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

}  // namespace ferry::test
