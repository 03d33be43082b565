#include "tcp_reference.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/endian.h"
#include "common/net.h"

namespace ferry::tools {

namespace {

constexpr size_t kHelloBytes = 25;  // direction, io, offset, share

// Plain blocking stream I/O, as a program without an engine would write it: every byte
// sent (send) or received (recv with MSG_WAITALL).
bool streamBytes(int fd, bool send, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = send ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}
bool sendBytes(int fd, const uint8_t* p, size_t n) { return streamBytes(fd, true, const_cast<uint8_t*>(p), n); }
bool recvBytes(int fd, uint8_t* p, size_t n) { return streamBytes(fd, false, p, n); }

// One round over [base, base+share) in io-sized calls.
bool moveShare(int fd, bool send, uint8_t* base, size_t share, size_t io) {
  for (size_t off = 0; off < share; off += io) {
    size_t n = std::min(io, share - off);
    if (!streamBytes(fd, send, base + off, n)) return false;
  }
  return true;
}

}  // namespace

TcpReferenceServer::~TcpReferenceServer() {
  stop_ = true;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  for (auto& w : workers_) w.join();
  for (int fd : fds_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

Status TcpReferenceServer::start(const std::string& host, uint8_t* buffer, size_t size) {
  buffer_ = buffer;
  size_ = size;
  uint16_t port = 0;
  FERRY_RETURN_IF_ERROR(net::listenTcp(host, 0, listen_fd_, port));
  address_ = net::joinHostPort(host, port);
  acceptor_ = std::thread([this] { acceptLoop(); });
  return Status::OK();
}

void TcpReferenceServer::acceptLoop() {
  while (!stop_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    if (stop_ || fds_.size() >= 64) {  // a benchmark needs a handful
      ::close(fd);
      continue;
    }
    fds_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void TcpReferenceServer::serve(int fd) {
  uint8_t hello[kHelloBytes];
  if (!recvBytes(fd, hello, sizeof hello)) return;
  const bool client_writes = hello[0] == 'W';
  const uint64_t io = getU64(hello + 1), offset = getU64(hello + 9), share = getU64(hello + 17);
  // The client's word is checked like any peer's: inside our buffer, sane sizes.
  if ((hello[0] != 'W' && hello[0] != 'R') || io == 0 || share == 0 || offset > size_ ||
      share > size_ - offset)
    return;
  uint8_t token = 0;
  while (!stop_) {
    if (client_writes) {
      if (!moveShare(fd, false, buffer_ + offset, share, io) || !sendBytes(fd, &token, 1)) return;
    } else {
      if (!recvBytes(fd, &token, 1) || !moveShare(fd, true, buffer_ + offset, share, io)) return;
    }
  }
}

TcpReferenceClient::~TcpReferenceClient() {
  for (int fd : fds_) ::close(fd);
}

Status TcpReferenceClient::connect(const std::string& address, int connections, bool write, size_t io,
                                   uint8_t* local, size_t bytes, uint64_t remote_offset) {
  std::string host;
  uint16_t port = 0;
  FERRY_RETURN_IF_ERROR(net::parseHostPort(address, host, port));
  if (connections <= 0 || io == 0 || bytes < static_cast<size_t>(connections))
    return Status::InvalidArgument("reference: nothing to move");
  write_ = write;
  io_ = io;
  local_ = local;
  share_ = bytes / static_cast<size_t>(connections);
  for (int i = 0; i < connections; ++i) {
    int fd = -1;
    FERRY_RETURN_IF_ERROR(net::connectTcp(host, port, 3000, fd));
    fds_.push_back(fd);
    uint8_t hello[kHelloBytes];
    hello[0] = write ? 'W' : 'R';
    putU64(hello + 1, io);
    putU64(hello + 9, remote_offset + i * share_);
    putU64(hello + 17, share_);
    if (!sendBytes(fd, hello, sizeof hello)) return Status::Unavailable("reference: cannot reach " + address);
  }
  return Status::OK();
}

bool TcpReferenceClient::round(int i) {
  const int fd = fds_[static_cast<size_t>(i)];
  uint8_t* base = local_ + static_cast<size_t>(i) * share_;
  uint8_t token = 0;
  if (write_) return moveShare(fd, true, base, share_, io_) && recvBytes(fd, &token, 1);
  return sendBytes(fd, &token, 1) && moveShare(fd, false, base, share_, io_);
}

}  // namespace ferry::tools
