// Socket helpers shared by the control plane and the TCP transport.
#pragma once

#include <sys/uio.h>

#include <chrono>
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
/// Connects with a deadline; the socket is blocking, TCP_NODELAY, close-on-exec. With a
/// `source` (a numeric local address) the connection leaves from it.
Status connectTcp(const std::string& host, uint16_t port, int timeout_ms, int& fd,
                  const std::string& source = "");
/// A connection whose peer (or path) stops acknowledging for `timeout_ms` fails with
/// ETIMEDOUT instead of retransmitting for many minutes: TCP_USER_TIMEOUT, plus keepalive
/// probes so an idle wait for the peer is covered too. 0 leaves the kernel's defaults.
void setLiveness(int fd, int timeout_ms);
/// Whether a connected socket's peer is on this machine: a Unix-domain socket, a loopback
/// address, or the address this end has (a connection to one of our own interfaces).
bool peerOnThisMachine(int fd);
/// Fixes the kernel's send buffer of `fd` at `bytes` (SO_SNDBUF: the kernel then reserves
/// twice that for its bookkeeping and stops sizing it itself); false when refused.
bool setSendBuffer(int fd, size_t bytes);

using Clock = std::chrono::steady_clock;
/// No deadline: a socket's own timeout (SO_RCVTIMEO/SO_SNDTIMEO) ends a wait.
constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

/// Writes every byte of iov (modified in place). Without a deadline a send timeout on the
/// socket fails the write; with one, the socket's timeout is only a tick and the whole
/// write must finish by `deadline` (a peer that reads a byte now and then cannot hold it).
Status writeAllV(int fd, struct iovec* iov, int iovcnt, Clock::time_point deadline = kNoDeadline);
Status writeAll(int fd, const void* data, size_t len, Clock::time_point deadline = kNoDeadline);
/// Reads exactly len bytes; Unavailable on EOF.
Status readAll(int fd, void* data, size_t len);
/// One receive of up to `cap` bytes into `out` (`got` = 0 on EOF). With a deadline, receive
/// timeouts on the socket are ticks until it passes, and data arriving after it is a
/// Timeout too; without one a receive timeout is a Timeout.
Status receiveSome(int fd, void* out, size_t cap, Clock::time_point deadline, size_t& got);

/// Longest path a Unix-domain socket may have (sockaddr_un's sun_path, less the NUL).
constexpr size_t kMaxUnixPathBytes = 107;
/// A Unix-domain stream socket listening at `path` (mode 0600: only this user and root may
/// connect). The path must be free and at most kMaxUnixPathBytes long.
Status listenUnix(const std::string& path, int& fd);
/// Connects to a Unix-domain socket; blocking, close-on-exec.
Status connectUnix(const std::string& path, int timeout_ms, int& fd);
/// The kernel's word on who holds the other end of a Unix-domain socket (SO_PEERCRED):
/// pid as seen from our pid namespace (0 when the peer's is not visible), uid.
Status peerCredentials(int fd, int32_t& pid, uint32_t& uid);
/// A pidfd of the process at the other end of a Unix-domain socket: SO_PEERPIDFD where the
/// kernel has it (race-free), else pidfd_open of the SO_PEERCRED pid (callers confirm the
/// socket still answers afterwards). -1 when neither works.
int peerPidfd(int fd);
/// Sends iov with `fds` attached (SCM_RIGHTS, at most kMaxPassedFds) to its first byte.
Status writeWithFds(int fd, struct iovec* iov, int iovcnt, const int* fds, size_t nfds,
                    Clock::time_point deadline = kNoDeadline);
/// Reads exactly len bytes; descriptors passed along with them are appended to `fds`
/// (close-on-exec; the caller owns them). A truncated set of descriptors is an error.
Status readAllWithFds(int fd, void* data, size_t len, std::vector<int>& fds);
constexpr size_t kMaxPassedFds = 16;
/// The most pieces one scatter receive (SocketReader::readExactV) or gathered answer takes:
/// the ranges of one tcp frame (tcp_wire::kMaxRanges is this).
constexpr size_t kMaxScatterParts = 1024;

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
  /// `capacity` bounds what one receive stages: a burst of small frames (acks, requests)
  /// costs one receive, and a payload's head that came with its frame header is copied once
  /// more from here, so it stays small (the rest is received straight into place).
  SocketReader(int fd, int spin_us, size_t capacity = 8 * 1024);
  /// Reads exactly n bytes into dst (by the current frame's deadline, if one is set).
  Status readExact(void* dst, size_t n);
  /// Starts a frame: waits for its first byte until `idle_until` (receive timeouts on the
  /// socket are ticks, not errors, until then), then gives the whole frame — these n bytes
  /// and every read until the next frame — `frame_budget` to arrive (0: no limit). A peer
  /// that trickles a frame cannot hold the reader past that.
  Status readFrameStart(void* dst, size_t n, Clock::time_point idle_until = kNoDeadline,
                        std::chrono::milliseconds frame_budget = std::chrono::milliseconds(0));
  /// Reads exactly the parts' bytes (at most kMaxScatterParts) into them, in order: payloads of
  /// many small ranges received with a few scatter receives rather than one per range.
  Status readExactV(const iovec* parts, size_t count);
  /// Reads and drops n bytes.
  Status skip(size_t n);
  /// Bytes already received and not consumed.
  size_t buffered() const { return end_ - begin_; }
  /// Payloads of kLowWaterMinBytes or more are received with non-blocking receives + poll
  /// and a low-water mark (SO_RCVLOWAT) of half of what is still missing, at most `cap`
  /// and at least kLowWaterTailBytes: a few wake-ups per payload instead of one per
  /// segment, and only a short tail to copy after its last byte. 0 turns it off.
  void setLowWaterCap(size_t cap) { lowat_cap_ = cap; }
  static constexpr size_t kLowWaterMinBytes = 64 * 1024;
  static constexpr size_t kLowWaterTailBytes = 32 * 1024;

 private:
  Status fill();  // at least one more byte into the buffer
  ssize_t recvSome(void* dst, size_t n, bool wait_all);
  // The large-payload receive with a low-water mark.
  Status readLowWater(iovec* iov, size_t count, size_t n);
  // Waits until the socket is readable (or the receive tick passes: -1/EAGAIN then).
  ssize_t waitReadable();
  // After a receive: OK to go on, or why not (EOF, error, the frame's deadline passed).
  Status check(ssize_t r);

  int fd_;
  int spin_us_;
  std::vector<uint8_t> buf_;
  size_t begin_ = 0, end_ = 0;
  Clock::time_point deadline_ = kNoDeadline;  // of the frame being read
  size_t lowat_cap_ = 0;
  int lowat_ = 1;        // SO_RCVLOWAT now set on the socket
  int tick_ms_ = -2;     // the socket's SO_RCVTIMEO as a poll timeout (-1: none); -2: not read yet
};

}  // namespace ferry::net
