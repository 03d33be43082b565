#include "control/rpc_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

ServerConnection::ServerConnection(int fd, int spin_us, std::string peer)
    : fd_(fd), reader_(fd, spin_us), peer_(std::move(peer)) {}

void ServerConnection::respond(MsgType type, uint64_t request_id, const Status& status,
                               std::string_view body) {
  if (!status.ok()) body = std::string_view(status.message()).substr(0, wire::kMaxErrorBytes);
  FrameHeader h{type, static_cast<uint32_t>(body.size()), wire::toWire(status), request_id};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  out_.append(reinterpret_cast<char*>(hb), sizeof hb);
  out_.append(body);
}

Status ServerConnection::respondWithPayload(MsgType type, uint64_t request_id, const void* data,
                                            size_t len) {
  FrameHeader h{type, static_cast<uint32_t>(len), 0, request_id};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  iovec iov[3];
  int n = 0;
  if (!out_.empty()) iov[n++] = {out_.data(), out_.size()};
  iov[n++] = {hb, sizeof hb};
  iov[n++] = {const_cast<void*>(data), len};
  Status st = net::writeAllV(fd_, iov, n);
  out_.clear();
  return st;
}

Status ServerConnection::flush() {
  if (out_.empty()) return Status::OK();
  Status st = net::writeAll(fd_, out_.data(), out_.size());
  out_.clear();
  return st;
}

RpcServer::~RpcServer() { stop(); }

void RpcServer::setHandler(MsgType type, Handler handler) {
  handlers_[static_cast<size_t>(type) & 15] = std::move(handler);
}

Status RpcServer::start(const Options& options) {
  options_ = options;
  FERRY_RETURN_IF_ERROR(net::listenTcp(options.bind_address, options.port, listen_fd_, port_));
  stopping_ = false;
  acceptor_ = std::thread([this] { acceptLoop(); });
  return Status::OK();
}

void RpcServer::stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
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

void RpcServer::acceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, 200);
    if (pr <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && !stopping_)
        FERRY_LOG(WARN) << "accept failed: " << strerror(errno);
      continue;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    std::string peer = net::joinHostPort(host, port);
    std::lock_guard lock(mu_);
    // Reap finished connection threads; their sockets close here, after the join, so
    // stop() never shuts down a descriptor number that was reused.
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
                      << " connections open (rpc/max_connections)";
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{options_.stall_timeout_ms / 1000, (options_.stall_timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    conns_.push_back(Conn{fd, {}, false});
    Conn& c = conns_.back();
    ++active_;
    c.thread = std::thread([this, fd, peer, &c] {
      serve(fd, peer);
      std::lock_guard lock(mu_);
      c.done = true;
    });
  }
}

void RpcServer::serve(int fd, std::string peer) {
  ServerConnection conn(fd, options_.spin_us, peer);
  uint8_t hb[wire::kHeaderSize];
  while (!stopping_) {
    if (conn.reader().buffered() == 0 && !conn.flush().ok()) break;
    Status st = conn.reader().readFrameStart(hb, sizeof hb);
    if (!st.ok()) {
      if (!stopping_ && !st.IsUnavailable())
        FERRY_LOG(WARN) << "closing connection from " << peer << ": " << st.ToString();
      break;
    }
    FrameHeader h;
    st = wire::decodeHeader(hb, sizeof hb, h);
    if (st.ok() && !wire::isRequest(h.type))
      st = Status::Corrupted(std::string("unexpected ") + wire::typeName(h.type) + " from a client");
    if (st.ok()) {
      Handler& handler = handlers_[static_cast<size_t>(h.type) & 15];
      if (handler) {
        st = handler(h, conn);
      } else {
        st = conn.reader().skip(h.body_len);
        conn.respond(static_cast<MsgType>(static_cast<uint16_t>(h.type) + 1), h.request_id,
                     Status::NotSupported(std::string(wire::typeName(h.type)) +
                                          " is not served here"));
      }
    }
    if (!st.ok()) {
      if (!stopping_)
        FERRY_LOG(WARN) << "closing connection from " << peer << ": " << st.ToString();
      break;
    }
  }
  conn.flush().IgnoreError();
  ::shutdown(fd, SHUT_RDWR);
  --active_;
}

}  // namespace ferry
