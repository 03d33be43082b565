// Accepts connections — TCP, and optionally on a Unix-domain socket for same-machine peers —
// and serves each on a thread of its own: the part the RPC server and the HTTP server share.
// Admission is where a flood is stopped before it costs a thread: a cap on connections in
// all and per source address, finished threads reaped before every accept, and out of file
// descriptors (EMFILE/ENFILE) a connection is shed (a spare descriptor is given up to accept
// and close it) with a pause, never a hot loop. Sockets are closed only after their thread
// is joined, so stop() never touches a reused fd.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/log.h"
#include "ferry/status.h"

namespace ferry::net {

/// Who is on the other end of an accepted connection.
struct PeerInfo {
  std::string name;     // "host:port", or "local pid N" for the Unix-domain socket
  std::string address;  // what the per-address cap counts: the IP, or "local"
  bool local = false;   // came through the Unix-domain socket
  int32_t pid = 0;      // local: the kernel's word (SO_PEERCRED); 0 when not visible
  uint32_t uid = 0;
};

class SocketServer {
 public:
  struct Options {
    std::string bind_address = "127.0.0.1";
    uint16_t port = 0;
    std::string unix_path;          // also accept same-machine peers here; "" for none
    size_t max_connections = 1024;  // 0: half the process's file-descriptor limit, ≤ 1024
    size_t max_per_address = 0;     // 0: no cap per source address
    // SO_RCVTIMEO/SO_SNDTIMEO of accepted sockets (0: none). Servers that enforce their
    // own deadlines set a short tick here and read with net::SocketReader / deadlines.
    int io_tick_ms = 0;
  };
  /// Serves one connection; the socket is shut down when it returns.
  using Serve = std::function<void(int fd, const PeerInfo& peer)>;

  ~SocketServer();
  /// listen() then serve().
  Status start(const Options& options, Serve serve);
  /// Binds and listens: port() is known; connections wait in the backlog until serve().
  Status listen(const Options& options);
  /// Starts accepting, each connection on its own thread.
  void serve(Serve serve);
  /// Stops accepting, shuts every connection down, joins their threads; removes the Unix
  /// socket's path.
  void stop();
  uint16_t port() const { return port_; }
  size_t connectionCount() const { return active_.load(); }
  size_t maxConnections() const { return max_connections_; }
  bool stopping() const { return stopping_.load(); }

 private:
  void acceptLoop();
  void acceptOne(int listen_fd, bool local);
  // Accepts and closes one pending connection when out of descriptors (keeps the backlog
  // from spinning the loop), then pauses.
  void shed(int listen_fd);
  // Joins finished connection threads and closes their sockets. Caller holds mu_.
  void reapLocked();

  Options options_;
  Serve serve_;
  int listen_fd_ = -1, unix_fd_ = -1;
  int spare_fd_ = -1;  // given up to accept one connection when out of descriptors
  uint16_t port_ = 0;
  size_t max_connections_ = 1024;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> active_{0};
  std::thread acceptor_;
  log::RateLimit refusals_;  // what a flood makes us log
  std::mutex mu_;  // guards conns_ and per_address_; a leaf (docs/locking.md)
  struct Conn {
    int fd;
    std::string address;
    std::thread thread;
    bool done = false;
  };
  std::list<Conn> conns_;
  std::map<std::string, size_t> per_address_;
};

}  // namespace ferry::net
