#include "common/tcp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/net.h"

namespace ferry::net {

namespace {
std::string peerName(const sockaddr_storage& ss) {
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
  return joinHostPort(host, port);
}
}  // namespace

TcpServer::~TcpServer() { stop(); }

Status TcpServer::start(const Options& options, Serve serve) {
  FERRY_RETURN_IF_ERROR(listen(options));
  this->serve(std::move(serve));
  return Status::OK();
}

Status TcpServer::listen(const Options& options) {
  options_ = options;
  stopping_ = false;
  return listenTcp(options.bind_address, options.port, listen_fd_, port_);
}

void TcpServer::serve(Serve serve) {
  serve_ = std::move(serve);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

void TcpServer::stop() {
  if (listen_fd_ < 0 || stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::list<Conn> conns;
  {
    std::lock_guard lock(mu_);
    for (auto& c : conns_) ::shutdown(c.fd, SHUT_RDWR);
    conns.swap(conns_);
  }
  for (auto& c : conns) {
    if (c.thread.joinable()) c.thread.join();
    ::close(c.fd);
  }
}

void TcpServer::acceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && !stopping_)
        FERRY_LOG(WARN) << "accept failed: " << strerror(errno);
      continue;
    }
    std::string peer = peerName(ss);
    std::lock_guard lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->done) {
        it->thread.join();
        ::close(it->fd);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    if (conns_.size() >= options_.max_connections) {
      FERRY_LOG(WARN) << "refusing connection from " << peer << ": " << conns_.size()
                      << " connections open (limit " << options_.max_connections << ")";
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (options_.io_timeout_ms > 0) {
      timeval tv{options_.io_timeout_ms / 1000, (options_.io_timeout_ms % 1000) * 1000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    conns_.push_back(Conn{fd, {}, false});
    Conn& c = conns_.back();
    ++active_;
    c.thread = std::thread([this, fd, peer, &c] {
      serve_(fd, peer);
      ::shutdown(fd, SHUT_RDWR);  // the peer sees EOF now; the fd closes when reaped
      --active_;
      std::lock_guard l(mu_);
      c.done = true;
    });
  }
}

}  // namespace ferry::net
