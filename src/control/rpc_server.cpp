#include "control/rpc_server.h"

#include <sys/socket.h>

#include <algorithm>

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

ServerConnection::ServerConnection(int fd, int spin_us, const net::PeerInfo& peer, const wire::MessageTable& table,
                                   const std::atomic<uint64_t>* epoch, std::chrono::milliseconds send_budget)
    : fd_(fd), table_(table), epoch_(epoch), reader_(fd, spin_us), peer_(peer), send_budget_(send_budget) {}

void ServerConnection::appendHeader(MsgType type, uint64_t request_id, uint32_t status, size_t body_len) {
  FrameHeader h{type, static_cast<uint32_t>(body_len), status, request_id, epoch()};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  out_.append(reinterpret_cast<char*>(hb), sizeof hb);
}

void ServerConnection::respond(MsgType type, uint64_t request_id, const Status& status,
                               std::string_view body) {
  if (!status.ok()) body = std::string_view(status.message()).substr(0, wire::kMaxErrorBytes);
  appendHeader(type, request_id, wire::toWire(status), body.size());
  out_.append(body);
}

Status ServerConnection::respondWithPayload(MsgType type, uint64_t request_id, const void* data,
                                            size_t len) {
  iovec piece{const_cast<void*>(data), len};
  return respondWithPayload(type, request_id, &piece, 1);
}

Status ServerConnection::respondWithPayload(MsgType type, uint64_t request_id, const iovec* pieces, size_t count) {
  size_t len = 0;
  for (size_t i = 0; i < count; ++i) len += pieces[i].iov_len;
  return respondWithPayload(type, request_id, pieces, count, len);
}

Status ServerConnection::respondWithPayload(MsgType type, uint64_t request_id, const iovec* pieces, size_t count,
                                            size_t len) {
  constexpr size_t kMaxPieces = net::kMaxScatterParts + 1;  // a tcp frame's ranges and a table of their checksums
  if (count > kMaxPieces)
    return Status::InternalError("respondWithPayload: more than " + std::to_string(kMaxPieces) + " pieces");
  FrameHeader h{type, static_cast<uint32_t>(len), 0, request_id, epoch()};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  iovec iov[kMaxPieces + 2];
  int n = 0;
  if (!out_.empty()) iov[n++] = {out_.data(), out_.size()};
  iov[n++] = {hb, sizeof hb};
  for (size_t i = 0; i < count; ++i) iov[n++] = pieces[i];
  Status st = net::writeAllV(fd_, iov, n, sendDeadline());
  out_.clear();
  return st;
}

Status ServerConnection::beginPayload(MsgType type, uint64_t request_id, size_t len) {
  return respondWithPayload(type, request_id, nullptr, 0, len);
}

Status ServerConnection::sendPayloadPiece(const void* data, size_t len) {
  iovec piece{const_cast<void*>(data), len};
  return net::writeAllV(fd_, &piece, 1, sendDeadline());
}

Status ServerConnection::respondWithFds(MsgType type, uint64_t request_id, std::string_view body,
                                        const std::vector<int>& fds) {
  if (!peer_.local) return Status::InternalError("descriptors go to local peers only");
  // Earlier replies first, on their own: descriptors ride with the first byte of a send.
  FERRY_RETURN_IF_ERROR(flush());
  appendHeader(type, request_id, 0, body.size());
  out_.append(body);
  iovec iov{out_.data(), out_.size()};
  Status st = net::writeWithFds(fd_, &iov, 1, fds.data(), fds.size(), sendDeadline());
  out_.clear();
  return st;
}

Status ServerConnection::flush() {
  if (out_.empty()) return Status::OK();
  Status st = net::writeAll(fd_, out_.data(), out_.size(), sendDeadline());
  out_.clear();
  return st;
}

RpcServer::RpcServer() : bad_peers_(10) { wire::defineControlMessages(table_); }

Status RpcServer::defineMessage(MsgType type, const wire::MessageSpec& spec) {
  if (started_) return Status::InternalError("messages are defined before the RPC server starts");
  return table_.define(type, spec);
}

Status RpcServer::setHandler(MsgType type, Handler handler) {
  if (started_) return Status::InternalError("handlers are set before the RPC server starts");
  const wire::MessageSpec* spec = table_.find(type);
  if (!spec || !spec->request)
    return Status::InvalidArgument("message type " + std::to_string(static_cast<uint16_t>(type)) +
                                   " is not a defined request");
  if (type == MsgType::kHello || type == MsgType::kAuthProof)
    return Status::AlreadyExists(std::string(spec->name) + " is served by the RPC server itself");
  Handler& slot = handlers_[static_cast<uint16_t>(type)];
  if (slot) return Status::AlreadyExists(std::string(spec->name) + " already has a handler");
  slot = std::move(handler);
  return Status::OK();
}

Status RpcServer::start(const Options& options, handshake::Identity identity) {
  FERRY_RETURN_IF_ERROR(listen(options));
  serve(std::move(identity));
  return Status::OK();
}

Status RpcServer::listen(const Options& options) {
  options_ = options;
  started_ = true;
  net::SocketServer::Options so;
  so.bind_address = options.bind_address;
  so.port = options.port;
  so.unix_path = options.unix_path;
  so.max_connections = options.max_connections;
  so.max_per_address = options.max_connections_per_address;
  // A tick, not a limit: the deadlines above are enforced by the reads and writes.
  so.io_tick_ms = std::clamp(std::min(options.first_frame_timeout_ms, options.frame_timeout_ms) / 8, 1, 2000);
  return server_.listen(so);
}

void RpcServer::serve(handshake::Identity identity) {
  identity_ = std::move(identity);
  server_.serve([this](int fd, const net::PeerInfo& peer) { serveConnection(fd, peer); });
}

Status RpcServer::handshakeRequest(const FrameHeader& h, ServerConnection& conn, handshake::ServerState& auth) {
  std::string body(h.body_len, '\0');
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(body.data(), body.size()));
  if (h.type == MsgType::kHello) {
    std::string reply;
    FERRY_RETURN_IF_ERROR(auth.hello(body, reply));
    conn.respond(MsgType::kHelloAck, h.request_id, Status::OK(), reply);
    return Status::OK();
  }
  Status st = auth.proof(body);
  conn.respond(MsgType::kAuthOk, h.request_id, st);
  return st;  // a failed proof closes the connection (after the answer goes out)
}

void RpcServer::serveConnection(int fd, const net::PeerInfo& peer) {
  const std::chrono::milliseconds frame_budget(options_.frame_timeout_ms);
  ServerConnection conn(fd, options_.spin_us, peer, table_, options_.epoch, frame_budget);
  handshake::ServerState auth(options_.token, &identity_);
  // A connection must say something soon; after its first frame, idling between frames is
  // what pooled connections do.
  net::Clock::time_point idle_until = net::Clock::now() + std::chrono::milliseconds(options_.first_frame_timeout_ms);
  uint8_t hb[wire::kHeaderSize];
  while (!server_.stopping()) {
    if (conn.reader().buffered() == 0 && !conn.flush().ok()) break;
    Status st = conn.reader().readFrameStart(hb, sizeof hb, idle_until, frame_budget);
    idle_until = net::kNoDeadline;
    FrameHeader h;
    if (st.ok()) st = wire::decodeHeader(hb, sizeof hb, table_, h);
    const wire::MessageSpec* spec = st.ok() ? table_.find(h.type) : nullptr;
    if (st.ok() && !spec->request)
      st = Status::Corrupted(std::string("unexpected ") + spec->name + " from a client");
    if (st.ok()) {
      Handler& handler = handlers_[static_cast<uint16_t>(h.type)];
      if (h.type == MsgType::kHello || h.type == MsgType::kAuthProof) {
        st = handshakeRequest(h, conn, auth);
      } else if (!auth.admitted()) {
        // Nothing is read or served: no descriptor, no data, no write.
        conn.respond(spec->response, h.request_id,
                     Status::PermissionDenied("this engine requires the cluster token: set FERRY_AUTH_TOKEN "
                                              "(or auth/token) to the cluster's"));
        st = Status::PermissionDenied(std::string(spec->name) + " before proving the cluster token");
      } else if (handler) {
        st = handler(h, conn);
      } else {
        st = conn.reader().skip(h.body_len);
        conn.respond(spec->response, h.request_id,
                     Status::NotSupported(std::string(spec->name) + " is not served here"));
      }
    }
    if (st.ok() && conn.backlog() > options_.max_reply_backlog_bytes) st = conn.flush();
    if (!st.ok()) {
      if (!server_.stopping() && !st.IsUnavailable())
        FERRY_LOG_LIMITED(WARN, bad_peers_) << "closing connection from " << peer.name << ": " << st.ToString();
      break;
    }
  }
  conn.flush().IgnoreError();
}

}  // namespace ferry
