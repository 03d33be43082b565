#include "control/rpc_client.h"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <unistd.h>

#include "common/net.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

RpcClient::~RpcClient() {
  for (auto& [k, ch] : channels_)
    if (ch->fd >= 0) ::close(ch->fd);
}

void RpcClient::drop(const std::string& host, uint16_t port) {
  std::shared_ptr<Channel> ch;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(net::joinHostPort(host, port));
    if (it == channels_.end()) return;
    ch = it->second;
  }
  std::lock_guard lock(ch->mu);
  if (ch->fd >= 0) ::close(ch->fd);
  ch->fd = -1;
}

Status RpcClient::call(const std::string& host, uint16_t port, MsgType type,
                       std::string_view body, std::string* reply) {
  std::shared_ptr<Channel> ch;
  {
    std::lock_guard lock(mu_);
    auto& slot = channels_[net::joinHostPort(host, port)];
    if (!slot) slot = std::make_shared<Channel>();
    ch = slot;
  }
  std::lock_guard lock(ch->mu);
  bool reused = ch->fd >= 0;
  bool sent = false;
  Status st = callOnce(*ch, host, port, type, body, reply, sent);
  // A cached connection may have died while idle (peer restarted): one fresh try, but only
  // when the peer cannot have acted on the request.
  if (!st.ok() && reused && ch->fd < 0 && !sent)
    st = callOnce(*ch, host, port, type, body, reply, sent);
  return st;
}

Status RpcClient::callOnce(Channel& ch, const std::string& host, uint16_t port, MsgType type,
                           std::string_view body, std::string* reply, bool& sent) {
  sent = false;
  std::string where = net::joinHostPort(host, port);
  if (ch.fd < 0) {
    FERRY_RETURN_IF_ERROR(net::connectTcp(host, port, timeout_ms_, ch.fd));
    timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
    ::setsockopt(ch.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(ch.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  auto fail = [&](const Status& st) {
    ::close(ch.fd);
    ch.fd = -1;
    if (st.code() == Status::Code::kUnavailable || st.code() == Status::Code::kTimeout)
      return Status(st.code(), wire::typeName(type) + std::string(" to ") + where + ": " +
                                   st.message());
    return st;
  };
  FrameHeader h{type, static_cast<uint32_t>(body.size()), 0, ch.next_id++};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  iovec iov[2] = {{hb, sizeof hb}, {const_cast<char*>(body.data()), body.size()}};
  Status st = net::writeAllV(ch.fd, iov, body.empty() ? 1 : 2);
  if (!st.ok()) return fail(st);
  // A response byte proves the peer saw the request; until then a retry is safe.
  uint8_t first;
  ssize_t n;
  // EINTR is not the peer's silence: io_uring task work and signals interrupt a socket
  // wait that has a timeout (SO_RCVTIMEO) instead of restarting it.
  do {
    n = ::recv(ch.fd, &first, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return fail(Status::Unavailable("connection closed by peer"));
  if (n < 0)
    return fail(errno == EAGAIN || errno == EWOULDBLOCK
                    ? Status::Timeout("no response within " + std::to_string(timeout_ms_) + " ms")
                    : Status::Unavailable(std::string("receive failed: ") + strerror(errno)));
  sent = true;
  st = net::readAll(ch.fd, hb, sizeof hb);
  if (!st.ok()) return fail(st);
  FrameHeader rh;
  st = wire::decodeHeader(hb, sizeof hb, rh);
  if (!st.ok()) return fail(st);
  if (rh.request_id != h.request_id ||
      static_cast<uint16_t>(rh.type) != static_cast<uint16_t>(type) + 1)
    return fail(Status::Corrupted(std::string("unexpected response ") + wire::typeName(rh.type) +
                                  " from " + where));
  std::string rbody(rh.body_len, '\0');
  st = net::readAll(ch.fd, rbody.data(), rbody.size());
  if (!st.ok()) return fail(st);
  if (rh.status != 0) return wire::fromWire(rh.status, where + " answered: " + rbody);
  if (reply) *reply = std::move(rbody);
  return Status::OK();
}

}  // namespace ferry
