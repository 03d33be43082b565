// Socket helpers shared by the control plane and the TCP transport.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::net {

/// Splits "host:port" or "[v6]:port". The port must be 0..65535.
Status parseHostPort(const std::string& s, std::string& host, uint16_t& port);
/// "host:port", bracketing IPv6 literals.
std::string joinHostPort(const std::string& host, uint16_t port);

/// A listening TCP socket (SO_REUSEADDR, close-on-exec). port 0 picks a free one.
Status listenTcp(const std::string& bind_addr, uint16_t port, int& fd, uint16_t& bound_port);
/// Connects with a deadline; the socket is blocking, TCP_NODELAY, close-on-exec.
Status connectTcp(const std::string& host, uint16_t port, int timeout_ms, int& fd);

/// Writes every byte of iov (modified in place). Errors name the peer context.
Status writeAllV(int fd, struct iovec* iov, int iovcnt);
Status writeAll(int fd, const void* data, size_t len);
/// Reads exactly len bytes; Unavailable on EOF.
Status readAll(int fd, void* data, size_t len);

/// First non-loopback IPv4 address of an up interface, else "127.0.0.1".
std::string primaryIpv4();
/// Stable identity of this machine (/etc/machine-id, else hostname).
std::string machineId();

/// Buffered reader over a socket: small frames come from one recv, large payloads are
/// received straight into their destination. With a spin budget it polls with
/// non-blocking recv before it sleeps, trading a core for latency.
class SocketReader {
 public:
  /// spin_us > 0: poll with non-blocking recv that long before sleeping in the kernel.
  SocketReader(int fd, int spin_us, size_t capacity = 64 * 1024);
  /// Reads exactly n bytes into dst.
  Status readExact(void* dst, size_t n);
  /// Like readExact, but waits through receive timeouts while no byte of the frame has
  /// arrived: an idle connection is fine, a peer stalled mid-frame is not.
  Status readFrameStart(void* dst, size_t n);
  /// Reads and drops n bytes.
  Status skip(size_t n);
  /// Bytes already received and not consumed.
  size_t buffered() const { return end_ - begin_; }

 private:
  Status fill();  // at least one more byte into the buffer
  ssize_t recvSome(void* dst, size_t n, bool wait_all);

  int fd_;
  int spin_us_;
  std::vector<uint8_t> buf_;
  size_t begin_ = 0, end_ = 0;
};

}  // namespace ferry::net
