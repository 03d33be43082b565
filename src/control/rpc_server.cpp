#include "control/rpc_server.h"

#include <sys/socket.h>


#include "common/log.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

ServerConnection::ServerConnection(int fd, int spin_us, std::string peer,
                                   const wire::MessageTable& table, const std::atomic<uint64_t>* epoch)
    : fd_(fd), table_(table), epoch_(epoch), reader_(fd, spin_us), peer_(std::move(peer)) {}

void ServerConnection::respond(MsgType type, uint64_t request_id, const Status& status,
                               std::string_view body) {
  if (!status.ok()) body = std::string_view(status.message()).substr(0, wire::kMaxErrorBytes);
  FrameHeader h{type, static_cast<uint32_t>(body.size()), wire::toWire(status), request_id,
                epoch()};
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(h, hb);
  out_.append(reinterpret_cast<char*>(hb), sizeof hb);
  out_.append(body);
}

Status ServerConnection::respondWithPayload(MsgType type, uint64_t request_id, const void* data,
                                            size_t len) {
  FrameHeader h{type, static_cast<uint32_t>(len), 0, request_id, epoch()};
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

RpcServer::RpcServer() { wire::defineControlMessages(table_); }

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
  Handler& slot = handlers_[static_cast<uint16_t>(type)];
  if (slot) return Status::AlreadyExists(std::string(spec->name) + " already has a handler");
  slot = std::move(handler);
  return Status::OK();
}

Status RpcServer::start(const Options& options) {
  FERRY_RETURN_IF_ERROR(listen(options));
  serve();
  return Status::OK();
}

Status RpcServer::listen(const Options& options) {
  options_ = options;
  started_ = true;
  net::TcpServer::Options to;
  to.bind_address = options.bind_address;
  to.port = options.port;
  to.max_connections = options.max_connections;
  to.io_timeout_ms = options.stall_timeout_ms;  // readFrameStart waits through idle timeouts
  return server_.listen(to);
}

void RpcServer::serve() {
  server_.serve([this](int fd, const std::string& peer) { serveConnection(fd, peer); });
}

void RpcServer::serveConnection(int fd, const std::string& peer) {
  ServerConnection conn(fd, options_.spin_us, peer, table_, options_.epoch);
  uint8_t hb[wire::kHeaderSize];
  while (!server_.stopping()) {
    if (conn.reader().buffered() == 0 && !conn.flush().ok()) break;
    Status st = conn.reader().readFrameStart(hb, sizeof hb);
    if (!st.ok()) {
      if (!server_.stopping() && !st.IsUnavailable())
        FERRY_LOG(WARN) << "closing connection from " << peer << ": " << st.ToString();
      break;
    }
    FrameHeader h;
    st = wire::decodeHeader(hb, sizeof hb, table_, h);
    const wire::MessageSpec* spec = st.ok() ? table_.find(h.type) : nullptr;
    if (st.ok() && !spec->request)
      st = Status::Corrupted(std::string("unexpected ") + spec->name + " from a client");
    if (st.ok()) {
      Handler& handler = handlers_[static_cast<uint16_t>(h.type)];
      if (handler) {
        st = handler(h, conn);
      } else {
        st = conn.reader().skip(h.body_len);
        conn.respond(spec->response, h.request_id,
                     Status::NotSupported(std::string(spec->name) + " is not served here"));
      }
    }
    if (!st.ok()) {
      if (!server_.stopping())
        FERRY_LOG(WARN) << "closing connection from " << peer << ": " << st.ToString();
      break;
    }
  }
  conn.flush().IgnoreError();
}

}  // namespace ferry
