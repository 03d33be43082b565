// Accepts TCP connections and serves each on a thread of its own: the part the RPC server
// and the HTTP server share. Finished threads are reaped as new connections come; sockets
// are closed only after their thread is joined, so stop() never touches a reused fd.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "ferry/status.h"

namespace ferry::net {

class TcpServer {
 public:
  struct Options {
    std::string bind_address = "127.0.0.1";
    uint16_t port = 0;
    size_t max_connections = 1024;
    int io_timeout_ms = 0;  // SO_RCVTIMEO/SO_SNDTIMEO on accepted sockets; 0: none
  };
  /// Serves one connection; the socket is shut down when it returns.
  using Serve = std::function<void(int fd, const std::string& peer)>;

  ~TcpServer();
  /// listen() then serve().
  Status start(const Options& options, Serve serve);
  /// Binds and listens: port() is known; connections wait in the backlog until serve().
  Status listen(const Options& options);
  /// Starts accepting, each connection on its own thread.
  void serve(Serve serve);
  /// Stops accepting, shuts every connection down, joins their threads.
  void stop();
  uint16_t port() const { return port_; }
  size_t connectionCount() const { return active_.load(); }
  bool stopping() const { return stopping_.load(); }

 private:
  void acceptLoop();

  Options options_;
  Serve serve_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> active_{0};
  std::thread acceptor_;
  std::mutex mu_;  // guards conns_; a leaf (docs/locking.md)
  struct Conn {
    int fd;
    std::thread thread;
    bool done = false;
  };
  std::list<Conn> conns_;
};

}  // namespace ferry::net
