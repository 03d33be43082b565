#include "common/socket_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "common/net.h"

namespace ferry::net {

namespace {
// The peer's address without the port (what the per-address cap counts) and with it.
void describe(const sockaddr_storage& ss, std::string& address, std::string& name) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  address = host;
  name = joinHostPort(host, port);
}

// Connections beyond half the descriptors a process may open would starve everything else
// it opens (peers, files, shared memory).
size_t defaultMaxConnections() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1024;
  return std::clamp<size_t>(static_cast<size_t>(r.rlim_cur) / 2, 16, 1024);
}
}  // namespace

SocketServer::~SocketServer() { stop(); }

Status SocketServer::start(const Options& options, Serve serve) {
  FERRY_RETURN_IF_ERROR(listen(options));
  this->serve(std::move(serve));
  return Status::OK();
}

Status SocketServer::listen(const Options& options) {
  options_ = options;
  stopping_ = false;
  max_connections_ = options.max_connections ? options.max_connections : defaultMaxConnections();
  FERRY_RETURN_IF_ERROR(listenTcp(options.bind_address, options.port, listen_fd_, port_));
  if (!options.unix_path.empty()) {
    Status st = listenUnix(options.unix_path, unix_fd_);
    if (!st.ok()) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return st;
    }
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return Status::OK();
}

void SocketServer::serve(Serve serve) {
  serve_ = std::move(serve);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

void SocketServer::stop() {
  if (listen_fd_ < 0 || stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (unix_fd_ >= 0) ::shutdown(unix_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  if (unix_fd_ >= 0) {
    ::close(unix_fd_);
    ::unlink(options_.unix_path.c_str());
  }
  if (spare_fd_ >= 0) ::close(spare_fd_);
  std::list<Conn> conns;
  {
    std::lock_guard lock(mu_);
    for (auto& c : conns_) ::shutdown(c.fd, SHUT_RDWR);
    conns.swap(conns_);
    per_address_.clear();
  }
  for (auto& c : conns) {
    if (c.thread.joinable()) c.thread.join();
    ::close(c.fd);
  }
}

void SocketServer::reapLocked() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    if (it->thread.joinable()) it->thread.join();  // it has returned from serve_: immediate
    ::close(it->fd);
    if (--per_address_[it->address] == 0) per_address_.erase(it->address);
    it = conns_.erase(it);
  }
}

void SocketServer::acceptLoop() {
  while (!stopping_) {
    {
      std::lock_guard lock(mu_);  // before accepting: finished connections free descriptors
      reapLocked();
    }
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {unix_fd_, POLLIN, 0}};
    int n = ::poll(p, unix_fd_ >= 0 ? 2 : 1, 200);
    if (n <= 0 || stopping_) continue;
    if (p[0].revents & POLLIN) acceptOne(listen_fd_, false);
    if (unix_fd_ >= 0 && (p[1].revents & POLLIN)) acceptOne(unix_fd_, true);
  }
}

void SocketServer::shed(int listen_fd) {
  if (spare_fd_ >= 0) {
    ::close(spare_fd_);
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) ::close(fd);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  // Threads finishing meanwhile give descriptors back; the next round reaps them.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void SocketServer::acceptOne(int listen_fd, bool local) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == EINTR || e == EAGAIN || e == ECONNABORTED || stopping_) return;
    FERRY_LOG_LIMITED(WARN, refusals_) << "accept failed: " << strerror(e) << " (" << active_.load()
                                       << " connections open); shedding new connections for now";
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) shed(listen_fd);
    return;
  }
  PeerInfo peer;
  if (local) {
    peer.address = "local";
    if (!peerCredentials(fd, peer.pid, peer.uid).ok() || (peer.uid != ::geteuid() && peer.uid != 0)) {
      // Same-machine access hands out this process's memory: this user (or root) only.
      FERRY_LOG_LIMITED(WARN, refusals_) << "refusing a local connection from uid " << peer.uid << " (pid "
                                         << peer.pid << "): only uid " << ::geteuid() << " and root may attach";
      ::close(fd);
      return;
    }
    peer.local = true;
    peer.name = "local pid " + std::to_string(peer.pid);
  } else {
    describe(ss, peer.address, peer.name);
  }
  std::lock_guard lock(mu_);
  size_t& from_here = per_address_[peer.address];
  const bool all_full = conns_.size() >= max_connections_;
  const bool address_full = options_.max_per_address && from_here >= options_.max_per_address;
  if (all_full || address_full) {
    FERRY_LOG_LIMITED(WARN, refusals_)
        << "refusing connection from " << peer.name << ": "
        << (all_full ? std::to_string(conns_.size()) + " connections open (limit " + std::to_string(max_connections_)
                     : std::to_string(from_here) + " connections from that address (limit " +
                           std::to_string(options_.max_per_address))
        << ")";
    if (from_here == 0) per_address_.erase(peer.address);
    ::close(fd);
    return;
  }
  ++from_here;
  if (!local) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (options_.io_tick_ms > 0) {
    timeval tv{options_.io_tick_ms / 1000, (options_.io_tick_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  conns_.push_back(Conn{fd, peer.address, {}, false});
  Conn& c = conns_.back();
  ++active_;
  try {
    c.thread = std::thread([this, fd, peer, &c] {
      serve_(fd, peer);
      ::shutdown(fd, SHUT_RDWR);  // the peer sees EOF now; the fd closes when reaped
      --active_;
      std::lock_guard l(mu_);
      c.done = true;
    });
  } catch (const std::system_error& e) {  // out of threads: like out of descriptors
    FERRY_LOG_LIMITED(WARN, refusals_) << "refusing connection from " << peer.name << ": " << e.what();
    --active_;
    c.done = true;  // reaped (closed) by the next round
  }
}

}  // namespace ferry::net
