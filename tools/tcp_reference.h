// The raw TCP reference of ferry-bench (--reference=tcp): a plain TCP stream between the
// same two processes that the transfer runs between, moving the same memory (the initiator's
// registered buffer and the target's), so the ratio says what the engine costs over the
// socket itself. Plain means blocking send/recv of `io` bytes (MSG_WAITALL), default buffer
// sizes (TCP_NODELAY as on every socket here), no low-water marks: what a program without a
// transfer engine would write.
//
// A connection states its direction and its part of the working set once; then each round
// moves that whole part and ends with a one-byte handshake, so a timed window ends when the
// bytes have arrived (as a transfer's batch ends at its completion), not when they were queued.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ferry/status.h"

namespace ferry::tools {

/// Serves reference connections on the target, over its benchmark buffer.
class TcpReferenceServer {
 public:
  ~TcpReferenceServer();
  /// Listens on `host` (a free port) and serves connections until destroyed.
  Status start(const std::string& host, uint8_t* buffer, size_t size);
  /// "host:port" to give to the client.
  const std::string& address() const { return address_; }

 private:
  void acceptLoop();
  void serve(int fd);

  int listen_fd_ = -1;
  uint8_t* buffer_ = nullptr;
  size_t size_ = 0;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // only the acceptor touches this
  std::vector<int> fds_;              // shut down on destruction
};

/// The initiator's side: `connections` streams, each over its share of [local, local+bytes)
/// and the same range of the target's buffer at `remote_offset`.
class TcpReferenceClient {
 public:
  ~TcpReferenceClient();
  Status connect(const std::string& address, int connections, bool write, size_t io, uint8_t* local,
                 size_t bytes, uint64_t remote_offset);
  int connections() const { return static_cast<int>(fds_.size()); }
  /// Bytes one connection moves per round.
  size_t share() const { return share_; }
  /// One round on connection `i`: its whole share, then the handshake.
  bool round(int i);

 private:
  std::vector<int> fds_;
  bool write_ = true;
  size_t io_ = 0, share_ = 0;
  uint8_t* local_ = nullptr;
};

}  // namespace ferry::tools
