#include "common/net.h"
#include "common/net_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

namespace ferry::net {

Status parseHostPort(const std::string& s, std::string& host, uint16_t& port) {
  std::string h, p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return Status::InvalidArgument("bad address '" + s + "': expected [v6]:port");
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return Status::InvalidArgument("bad address '" + s + "': expected host:port");
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
    if (h.find(':') != std::string::npos)
      return Status::InvalidArgument("bad address '" + s + "': bracket IPv6 hosts");
  }
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit))
    return Status::InvalidArgument("bad port in '" + s + "'");
  unsigned long v = std::stoul(p);
  if (v > 65535) return Status::InvalidArgument("port out of range in '" + s + "'");
  host = h;
  port = static_cast<uint16_t>(v);
  return Status::OK();
}

std::string joinHostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

std::string errnoText(int err) { return std::string(strerror(err)); }

Status resolve(const std::string& host, uint16_t port, bool passive, addrinfo** out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  hints.ai_flags |= AI_NUMERICSERV;
  std::string ps = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), ps.c_str(), &hints, out);
  if (rc != 0)
    return Status::Unavailable("cannot resolve '" + host + "': " + gai_strerror(rc));
  return Status::OK();
}

}  // namespace

Status listenTcp(const std::string& bind_addr, uint16_t port, int& fd_out, uint16_t& bound) {
  addrinfo* ai = nullptr;
  FERRY_RETURN_IF_ERROR(resolve(bind_addr, port, true, &ai));
  Status last = Status::Unavailable("no address for " + bind_addr);
  for (addrinfo* a = ai; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = Status::Unavailable("socket: " + errnoText(errno));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 512) != 0) {
      last = Status::Unavailable("cannot listen on " + joinHostPort(bind_addr, port) + ": " +
                                 errnoText(errno));
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    bound = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    fd_out = fd;
    freeaddrinfo(ai);
    return Status::OK();
  }
  freeaddrinfo(ai);
  return last;
}

Status connectTcp(const std::string& host, uint16_t port, int timeout_ms, int& fd_out,
                  const std::string& source) {
  addrinfo* ai = nullptr;
  FERRY_RETURN_IF_ERROR(resolve(host, port, false, &ai));
  std::string where = joinHostPort(host, port);
  if (!source.empty()) where += " from " + source;
  Status last = Status::Unavailable("no address for " + where);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (addrinfo* a = ai; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last = Status::Unavailable("socket: " + errnoText(errno));
      continue;
    }
    if (!source.empty()) {
      // Leave from this local address (a rail): the routing table picks its interface.
      addrinfo* src = nullptr;
      addrinfo hints{};
      hints.ai_family = a->ai_family;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
      int gai = getaddrinfo(source.c_str(), "0", &hints, &src);
      bool bound = gai == 0 && ::bind(fd, src->ai_addr, src->ai_addrlen) == 0;
      int err = errno;
      if (gai == 0) freeaddrinfo(src);
      if (!bound) {
        last = Status::Unavailable("cannot bind " + source + " to reach " + where + ": " +
                                   (gai ? std::string(gai_strerror(gai)) : errnoText(err)));
        ::close(fd);
        continue;
      }
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      pollfd p{fd, POLLOUT, 0};
      int pr;
      do {
        pr = ::poll(&p, 1, std::max(left, 0));
      } while (pr < 0 && errno == EINTR);
      if (pr == 0) {
        ::close(fd);
        last = Status::Timeout("connect to " + where + " timed out after " +
                               std::to_string(timeout_ms) + " ms");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
      errno = err;
    }
    if (rc != 0) {
      last = Status::Unavailable("connect to " + where + ": " + errnoText(errno));
      ::close(fd);
      continue;
    }
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_out = fd;
    freeaddrinfo(ai);
    return Status::OK();
  }
  freeaddrinfo(ai);
  return last;
}

void setLiveness(int fd, int timeout_ms) {
  if (timeout_ms <= 0) return;
  unsigned user_timeout = static_cast<unsigned>(timeout_ms);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  // Probes while nothing is unacknowledged (waiting for a READ's data): the user timeout
  // then bounds how long unanswered probes may go on.
  int one = 1, idle = std::max(1, timeout_ms / 2000), interval = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
}

namespace {
bool loopback(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr) >> 24) == 127;
  if (a.ss_family != AF_INET6) return false;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}
bool sameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr == reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  return a.ss_family == AF_INET6 && std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                                                &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, sizeof(in6_addr)) == 0;
}
}  // namespace

bool peerOnThisMachine(int fd) {
  sockaddr_storage peer{}, self{};
  socklen_t peer_len = sizeof peer, self_len = sizeof self;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) != 0)
    return false;
  return peer.ss_family == AF_UNIX || loopback(peer) || sameAddress(peer, self);
}

bool setSendBuffer(int fd, size_t bytes) {
  int value = static_cast<int>(std::min<size_t>(bytes, INT_MAX / 2));
  return ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, sizeof value) == 0;
}

bool keepWaiting(Clock::time_point deadline) {
  return deadline != kNoDeadline && Clock::now() < deadline;
}

namespace {
Status sendTimeout(Clock::time_point deadline) {
  return deadline == kNoDeadline ? Status::Timeout("peer accepted no data within the send timeout")
                                 : Status::Timeout("peer did not take the whole message in time");
}

// sendmsg of the whole iov (advanced in place), with `control` on the first call only.
Status sendAll(int fd, struct iovec* iov, int iovcnt, msghdr* first, Clock::time_point deadline) {
  while (iovcnt > 0) {
    // sendmsg + MSG_NOSIGNAL: a peer that vanished must not SIGPIPE the whole process.
    msghdr msg{};
    if (first) msg = *first;
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(std::min(iovcnt, IOV_MAX));
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (keepWaiting(deadline)) continue;
        return sendTimeout(deadline);
      }
      return Status::Unavailable("send failed: " + errnoText(errno));
    }
    first = nullptr;  // the descriptors went with the first byte
    // Advance past what was written.
    while (iovcnt > 0 && static_cast<size_t>(n) >= iov->iov_len) {
      n -= static_cast<ssize_t>(iov->iov_len);
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + n;
      iov->iov_len -= static_cast<size_t>(n);
      if (deadline != kNoDeadline && Clock::now() >= deadline) return sendTimeout(deadline);
    }
  }
  return Status::OK();
}
}  // namespace

Status writeAllV(int fd, struct iovec* iov, int iovcnt, Clock::time_point deadline) {
  return sendAll(fd, iov, iovcnt, nullptr, deadline);
}

Status writeAll(int fd, const void* data, size_t len, Clock::time_point deadline) {
  iovec v{const_cast<void*>(data), len};
  return writeAllV(fd, &v, 1, deadline);
}

Status writeWithFds(int fd, struct iovec* iov, int iovcnt, const int* fds, size_t nfds,
                    Clock::time_point deadline) {
  if (nfds == 0) return writeAllV(fd, iov, iovcnt, deadline);
  if (nfds > kMaxPassedFds) return Status::InvalidArgument("too many descriptors in one message");
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  msghdr msg{};
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  return sendAll(fd, iov, iovcnt, &msg, deadline);
}

Status recvError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK)
    return Status::Timeout("peer sent nothing within the receive timeout");
  return Status::Unavailable("recv failed: " + errnoText(err));
}

Status receiveSome(int fd, void* out, size_t cap, Clock::time_point deadline, size_t& got) {
  while (true) {
    ssize_t n = ::recv(fd, out, cap, 0);
    if (n > 0 && deadline != kNoDeadline && Clock::now() >= deadline)
      return Status::Timeout("message not complete in time");
    if (n >= 0) {
      got = static_cast<size_t>(n);
      return Status::OK();
    }
    if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && keepWaiting(deadline))) continue;
    return recvError(errno);
  }
}

Status readAll(int fd, void* data, size_t len) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, MSG_WAITALL);
    if (n == 0) return Status::Unavailable("connection closed by peer");
    if (n < 0) {
      if (errno == EINTR) continue;
      return recvError(errno);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status readAllWithFds(int fd, void* data, size_t len, std::vector<int>& fds) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    iovec v{p, len};
    msghdr msg{};
    msg.msg_iov = &v;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    for (cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed;
        std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        fds.push_back(passed);
      }
    }
    if (n > 0 && (msg.msg_flags & MSG_CTRUNC)) return Status::Corrupted("peer passed more descriptors than expected");
    if (n == 0) return Status::Unavailable("connection closed by peer");
    if (n < 0) return recvError(errno);
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::OK();
}

static_assert(sizeof(sockaddr_un::sun_path) == kMaxUnixPathBytes + 1);

Status listenUnix(const std::string& path, int& fd_out) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("Unix socket path '" + path + "' is empty or longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  addr.sun_family = AF_UNIX;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("socket(AF_UNIX): " + errnoText(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0600) != 0 ||
      ::listen(fd, 512) != 0) {
    Status st = Status::Unavailable("cannot listen on " + path + ": " + errnoText(errno));
    ::close(fd);
    return st;
  }
  fd_out = fd;
  return Status::OK();
}

Status connectUnix(const std::string& path, int timeout_ms, int& fd_out) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("Unix socket path '" + path + "' is empty or too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  addr.sun_family = AF_UNIX;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("socket(AF_UNIX): " + errnoText(errno));
  // A full backlog blocks connect(); the send timeout bounds it.
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    Status st = errno == EAGAIN ? Status::Timeout("connect to " + path + " timed out")
                                : Status::Unavailable("connect to " + path + ": " + errnoText(errno));
    ::close(fd);
    return st;
  }
  fd_out = fd;
  return Status::OK();
}

Status peerCredentials(int fd, int32_t& pid, uint32_t& uid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return Status::Unavailable("SO_PEERCRED: " + errnoText(errno));
  pid = cred.pid;
  uid = cred.uid;
  return Status::OK();
}

int peerPidfd(int fd) {
#ifndef SO_PEERPIDFD
  constexpr int SO_PEERPIDFD = 77;  // Linux 6.5; older headers lack the name
#endif
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) return pidfd;
#ifdef SYS_pidfd_open
  int32_t pid = 0;
  uint32_t uid = 0;
  if (peerCredentials(fd, pid, uid).ok() && pid > 0)
    return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
#endif
  return -1;
}

std::string primaryIpv4() {
  ifaddrs* ifs = nullptr;
  std::string out = "127.0.0.1";
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    out = buf;
    break;
  }
  freeifaddrs(ifs);
  return out;
}

std::string machineId() {
  std::ifstream f("/etc/machine-id");
  std::string id;
  if (f && std::getline(f, id) && !id.empty()) return id;
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string("host-") + host;
}

}  // namespace ferry::net
