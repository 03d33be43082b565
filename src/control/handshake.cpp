#include "control/handshake.h"

#include <sys/socket.h>

#include <cstring>

#include "common/endian.h"
#include "common/net.h"
#include "control/rpc_client.h"

namespace ferry::handshake {

namespace {
using wire::kMaxIdentityBytes;
using wire::MsgType;

std::string lengthPrefixed(std::string_view s) {
  uint8_t len[2];
  putU16(len, static_cast<uint16_t>(s.size()));
  return std::string(reinterpret_cast<char*>(len), 2) + std::string(s);
}
}  // namespace

std::string encodeHelloAck(const HelloAck& a) {
  std::string out(1, static_cast<char>(a.token ? 1 : 0));
  out.append(reinterpret_cast<const char*>(a.nonce.data()), a.nonce.size());
  out.append(reinterpret_cast<const char*>(a.mac.data()), a.mac.size());
  out += lengthPrefixed(a.identity.name.substr(0, kMaxIdentityBytes));
  out += lengthPrefixed(a.identity.instance.substr(0, kMaxIdentityBytes));
  return out;
}

Status decodeHelloAck(std::string_view body, HelloAck& out) {
  auto* p = reinterpret_cast<const uint8_t*>(body.data());
  if (body.size() < wire::kHelloAckFixedBytes) return Status::Corrupted("truncated HelloAck");
  if (p[0] > 1) return Status::Corrupted("HelloAck with unknown flags");
  HelloAck a;
  a.token = p[0] == 1;
  std::memcpy(a.nonce.data(), p + 1, a.nonce.size());
  std::memcpy(a.mac.data(), p + 1 + a.nonce.size(), a.mac.size());
  size_t at = 1 + a.nonce.size() + a.mac.size();
  for (std::string* field : {&a.identity.name, &a.identity.instance}) {
    if (body.size() - at < 2) return Status::Corrupted("truncated HelloAck");
    size_t len = getU16(p + at);
    at += 2;
    if (len > kMaxIdentityBytes || len > body.size() - at) return Status::Corrupted("HelloAck identity overruns body");
    field->assign(body.data() + at, len);
    at += len;
  }
  if (at != body.size()) return Status::Corrupted("HelloAck lengths disagree with body");
  out = std::move(a);
  return Status::OK();
}

auth::Mac serverMac(std::string_view token, const auth::Nonce& client, const auth::Nonce& server,
                    const Identity& id) {
  return auth::hmac(token, {"ferry hello server v1", auth::view(client), auth::view(server),
                            lengthPrefixed(id.name), lengthPrefixed(id.instance)});
}

auth::Mac clientMac(std::string_view token, const auth::Nonce& server, const auth::Nonce& client) {
  return auth::hmac(token, {"ferry hello client v1", auth::view(server), auth::view(client)});
}

namespace {
// One request/response on the blocking socket, checked against the control table.
Status exchange(int fd, wire::MsgType type, uint64_t id, std::string_view body, std::string& reply,
                const std::string& where) {
  FERRY_RETURN_IF_ERROR(rpc::sendRequest(fd, type, id, body));
  Status answer;
  FERRY_RETURN_IF_ERROR(rpc::readResponse(fd, wire::controlMessages(), type, id, where, &reply, answer));
  return answer;
}
}  // namespace

Status client(int fd, std::string_view token, int timeout_ms, const std::string& where, Identity* peer) {
  // Bounded like a connect; the connection's own timeouts (if any) are restored after.
  timeval saved_rcv{}, saved_snd{};
  socklen_t len = sizeof saved_rcv;
  ::getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &saved_rcv, &len);
  len = sizeof saved_snd;
  ::getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &saved_snd, &len);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  Status st = [&]() -> Status {
    const auth::Nonce mine = auth::randomNonce();
    std::string reply;
    FERRY_RETURN_IF_ERROR(exchange(fd, MsgType::kHello, 1, auth::view(mine), reply, where));
    HelloAck ack;
    FERRY_RETURN_IF_ERROR(decodeHelloAck(reply, ack));
    if (!ack.token)
      return Status::PermissionDenied(where + " has no cluster token: it serves anyone, so it is not trusted "
                                              "with our data (set the same FERRY_AUTH_TOKEN there)");
    const auth::Mac want = serverMac(token, mine, ack.nonce, ack.identity);
    if (!auth::equal(want.data(), ack.mac.data(), want.size()))
      return Status::PermissionDenied(where + " does not know our cluster token");
    const auth::Mac proof = clientMac(token, ack.nonce, mine);
    Status proven = exchange(fd, MsgType::kAuthProof, 2, {reinterpret_cast<const char*>(proof.data()), proof.size()}, reply, where);
    if (!proven.ok()) return Status(Status::Code::kPermissionDenied, proven.message());
    if (peer) *peer = std::move(ack.identity);
    return Status::OK();
  }();
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &saved_rcv, sizeof saved_rcv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &saved_snd, sizeof saved_snd);
  if (!st.ok() && !st.IsPermissionDenied())
    return Status(st.code(), "handshake with " + where + ": " + st.message());
  return st;
}

Status ServerState::hello(std::string_view body, std::string& reply) {
  if (said_hello_) return Status::Corrupted("a second Hello on one connection");
  if (body.size() != client_.size()) return Status::Corrupted("Hello with a bad nonce");
  said_hello_ = true;
  std::memcpy(client_.data(), body.data(), client_.size());
  HelloAck ack;
  ack.token = !token_.empty();
  ack.nonce = server_ = auth::randomNonce();
  if (identity_) ack.identity = *identity_;
  if (ack.token) ack.mac = serverMac(token_, client_, server_, ack.identity);
  reply = encodeHelloAck(ack);
  return Status::OK();
}

Status ServerState::proof(std::string_view body) {
  if (token_.empty()) return Status::PermissionDenied("this engine has no cluster token");
  if (!said_hello_ || proven_) return Status::PermissionDenied("AuthProof out of order");
  const auth::Mac want = clientMac(token_, server_, client_);
  if (body.size() != want.size() ||
      !auth::equal(want.data(), reinterpret_cast<const uint8_t*>(body.data()), want.size()))
    return Status::PermissionDenied("wrong cluster token");
  proven_ = true;
  return Status::OK();
}

}  // namespace ferry::handshake
