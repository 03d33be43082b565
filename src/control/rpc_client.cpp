#include "control/rpc_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/net.h"
#include "control/handshake.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

namespace rpc {

Status sendRequest(int fd, MsgType type, uint64_t id, std::string_view body) {
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(FrameHeader{type, static_cast<uint32_t>(body.size()), 0, id}, hb);
  iovec iov[2] = {{hb, sizeof hb}, {const_cast<char*>(body.data()), body.size()}};
  return net::writeAllV(fd, iov, body.empty() ? 1 : 2);
}

Status readResponse(int fd, const wire::MessageTable& table, MsgType type, uint64_t id, const std::string& where,
                    std::string* reply, Status& answer, std::vector<int>* fds, uint64_t* epoch) {
  uint8_t hb[wire::kHeaderSize];
  FERRY_RETURN_IF_ERROR(fds ? net::readAllWithFds(fd, hb, sizeof hb, *fds) : net::readAll(fd, hb, sizeof hb));
  FrameHeader rh;
  FERRY_RETURN_IF_ERROR(wire::decodeHeader(hb, sizeof hb, table, rh));
  const wire::MessageSpec* spec = table.find(type);
  if (rh.request_id != id || !spec || rh.type != spec->response)
    return Status::Corrupted(std::string("unexpected ") + table.name(rh.type) + " from " + where);
  std::string body(rh.body_len, '\0');
  FERRY_RETURN_IF_ERROR(net::readAll(fd, body.data(), body.size()));
  if (epoch) *epoch = rh.epoch;
  answer = wire::fromWire(rh.status, where + " answered: " + body);
  if (answer.ok() && reply) *reply = std::move(body);
  return Status::OK();
}

}  // namespace rpc

RpcClient::~RpcClient() {
  for (auto& [where, conns] : idle_)
    for (auto& c : conns) ::close(c.fd);
}

void RpcClient::shutdown() {
  std::lock_guard lock(mu_);
  shut_ = true;
  for (int fd : busy_fds_) ::shutdown(fd, SHUT_RDWR);
  for (auto& [where, conns] : idle_)
    for (auto& c : conns) ::close(c.fd);
  idle_.clear();
}

size_t RpcClient::idleConnections() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [where, conns] : idle_) n += conns.size();
  return n;
}

bool RpcClient::takeIdle(const std::string& where, Conn& out) {
  std::lock_guard lock(mu_);
  auto it = idle_.find(where);
  if (it == idle_.end()) return false;
  out = it->second.back();
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  busy_fds_.push_back(out.fd);
  return true;
}

void RpcClient::putIdle(const std::string& where, Conn c) {
  {
    std::lock_guard lock(mu_);
    busy_fds_.erase(std::find(busy_fds_.begin(), busy_fds_.end(), c.fd));
    if (!shut_ && c.fd >= 0) {
      auto& conns = idle_[where];
      if (conns.size() < max_idle_) {
        conns.push_back(c);
        return;
      }
    }
  }
  if (c.fd >= 0) ::close(c.fd);
}

void RpcClient::track(int fd, bool add) {
  std::lock_guard lock(mu_);
  if (add)
    busy_fds_.push_back(fd);
  else
    busy_fds_.erase(std::find(busy_fds_.begin(), busy_fds_.end(), fd));
}

Status RpcClient::open(const std::string& host, uint16_t port, Conn& out) {
  {
    std::lock_guard lock(mu_);
    if (shut_) return Status::Canceled("engine is shutting down");
  }
  int fd = -1;
  FERRY_RETURN_IF_ERROR(net::connectTcp(host, port, timeout_ms_, fd));
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!token_.empty()) {
    Status st = handshake::client(fd, token_, timeout_ms_, net::joinHostPort(host, port), nullptr);
    if (!st.ok()) {
      ::close(fd);
      return st;
    }
  }
  out = Conn{fd, 1};
  track(fd, true);
  return Status::OK();
}

Status RpcClient::call(const std::string& host, uint16_t port, MsgType type,
                       std::string_view body, std::string* reply, uint64_t* epoch) {
  const std::string where = net::joinHostPort(host, port);
  Conn c;
  bool reused = takeIdle(where, c);
  if (!reused) FERRY_RETURN_IF_ERROR(open(host, port, c));
  bool sent = false;
  Status st = exchange(c, where, type, body, reply, epoch, sent);
  // An idle connection may have died meanwhile (peer restarted): one fresh try, but only
  // when the peer cannot have acted on the request.
  if (!st.ok() && reused && c.fd < 0 && !sent) {
    st = open(host, port, c);
    if (st.ok()) st = exchange(c, where, type, body, reply, epoch, sent);
  }
  if (c.fd >= 0) putIdle(where, c);
  return st;
}

Status RpcClient::exchange(Conn& c, const std::string& where, MsgType type, std::string_view body,
                           std::string* reply, uint64_t* epoch, bool& sent) {
  sent = false;
  const wire::MessageTable& table = table_;
  auto fail = [&](const Status& st) {
    track(c.fd, false);
    ::close(c.fd);
    c.fd = -1;
    if (st.code() == Status::Code::kUnavailable || st.code() == Status::Code::kTimeout)
      return Status(st.code(), table.name(type) + std::string(" to ") + where + ": " + st.message());
    return st;
  };
  const uint64_t id = c.next_id++;
  Status st = rpc::sendRequest(c.fd, type, id, body);
  if (!st.ok()) return fail(st);
  // A response byte proves the peer saw the request; until then a retry is safe.
  uint8_t first;
  ssize_t n;
  // EINTR is not the peer's silence: io_uring task work and signals interrupt a socket
  // wait that has a timeout (SO_RCVTIMEO) instead of restarting it.
  do {
    n = ::recv(c.fd, &first, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return fail(Status::Unavailable("connection closed by peer"));
  if (n < 0)
    return fail(errno == EAGAIN || errno == EWOULDBLOCK
                    ? Status::Timeout("no response within " + std::to_string(timeout_ms_) + " ms")
                    : Status::Unavailable(std::string("receive failed: ") + strerror(errno)));
  sent = true;
  Status answer;
  st = rpc::readResponse(c.fd, table, type, id, where, reply, answer, nullptr, epoch);
  if (!st.ok()) return fail(st);
  return answer;
}

}  // namespace ferry
