// The engine's RPC server: one listening socket (and, for same-machine peers, a Unix-domain
// one), one thread per connection, frames dispatched to handlers by type. Control messages
// (descriptor, notify, probe, the token handshake) and the transports' messages (tcp:
// write, read; shm and file: descriptors of shared files for local peers) share it; each
// owner defines its types in the server's table before start, and a type is served by one
// handler only. A malformed frame closes only its own connection, with a rate-limited log
// line.
//
// What one client can hold: a connection slot (caps in all and per source address), a
// first frame within first_frame_timeout_ms of connecting, each whole frame (header and
// body) within frame_timeout_ms of its first byte, each whole reply taken within
// frame_timeout_ms, and at most max_reply_backlog_bytes of small replies queued before they
// must be taken. With a cluster token nothing but the handshake is served before the client
// has proven it knows the token.
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/net.h"
#include "common/socket_server.h"
#include "control/handshake.h"
#include "control/wire.h"
#include "ferry/status.h"

namespace ferry {

class ServerConnection {
 public:
  ServerConnection(int fd, int spin_us, const net::PeerInfo& peer, const wire::MessageTable& table,
                   const std::atomic<uint64_t>* epoch, std::chrono::milliseconds send_budget);
  net::SocketReader& reader() { return reader_; }
  /// The socket, for the socket options a transport serving on it sets (its send buffer).
  int socket() const { return fd_; }
  /// "host:port" or "local pid N", for logs.
  const std::string& peer() const { return peer_.name; }
  /// Whether the peer came through the Unix-domain socket (same machine, the kernel vouches
  /// for its user and process).
  bool local() const { return peer_.local; }
  /// The server's message table (names for logs).
  const wire::MessageTable& messages() const { return table_; }

  /// Queues a small response; queued responses go out before the next blocking read, so
  /// a burst of acks costs one send.
  void respond(wire::MsgType type, uint64_t request_id, const Status& status,
               std::string_view body = {});
  /// Sends queued responses, then a header and a payload straight from memory.
  Status respondWithPayload(wire::MsgType type, uint64_t request_id, const void* data,
                            size_t len);
  /// The same with the payload gathered from `count` (<= net::kMaxScatterParts + 1) pieces, in order.
  Status respondWithPayload(wire::MsgType type, uint64_t request_id, const iovec* pieces, size_t count);
  /// A payload made piece by piece (the GPU's, copied out while it is sent): sends queued
  /// responses and a header announcing `len` bytes; exactly `len` bytes of
  /// sendPayloadPiece must follow, else the connection must be closed (the handler fails).
  Status beginPayload(wire::MsgType type, uint64_t request_id, size_t len);
  Status sendPayloadPiece(const void* data, size_t len);
  /// Sends queued responses, then a response carrying open descriptors (SCM_RIGHTS; local
  /// connections only). The descriptors stay ours; the peer gets its own copies.
  Status respondWithFds(wire::MsgType type, uint64_t request_id, std::string_view body,
                        const std::vector<int>& fds);
  Status flush();
  /// Bytes of responses queued and not yet sent.
  size_t backlog() const { return out_.size(); }

 private:
  // The header announces `len` bytes: the pieces, or (beginPayload) what follows them.
  Status respondWithPayload(wire::MsgType type, uint64_t request_id, const iovec* pieces, size_t count, size_t len);
  uint64_t epoch() const { return epoch_ ? epoch_->load(std::memory_order_acquire) : 0; }
  void appendHeader(wire::MsgType type, uint64_t request_id, uint32_t status, size_t body_len);
  net::Clock::time_point sendDeadline() const { return net::Clock::now() + send_budget_; }

  int fd_;
  const wire::MessageTable& table_;
  const std::atomic<uint64_t>* epoch_;
  net::SocketReader reader_;
  const net::PeerInfo& peer_;
  const std::chrono::milliseconds send_budget_;
  std::string out_;
};

class RpcServer {
 public:
  /// Reads the frame's body (if any) from conn.reader() and responds. A non-OK return is a
  /// protocol violation: the connection is closed and the reason logged.
  using Handler = std::function<Status(const wire::FrameHeader&, ServerConnection&)>;

  struct Options {
    std::string bind_address = "0.0.0.0";
    uint16_t port = 0;
    std::string unix_path;  // also serve same-machine peers here ("" : none)
    int spin_us = 0;        // polling mode: spin this long for the next frame before sleeping
    size_t max_connections = 1024;  // 0: half the file-descriptor limit, at most 1024
    size_t max_connections_per_address = 256;
    int first_frame_timeout_ms = 10000;   // a new connection silent this long is dropped
    int frame_timeout_ms = 30000;         // a frame (or a reply) not through by then: dropped
    size_t max_reply_backlog_bytes = 1 << 20;  // replies queued for a client that does not read
    std::string token;  // the cluster token; empty: no handshake required
    // Stamped into every response (wire::FrameHeader::epoch); the registry's version.
    const std::atomic<uint64_t>* epoch = nullptr;
  };

  RpcServer();

  /// Defines a message type for this server's frames (the control messages are defined
  /// from the start). Before start() only.
  Status defineMessage(wire::MsgType type, const wire::MessageSpec& spec);
  /// Serves request `type`, which must be defined. AlreadyExists when another handler
  /// serves it. Before start() only.
  Status setHandler(wire::MsgType type, Handler handler);
  /// listen() then serve().
  Status start(const Options& options, handshake::Identity identity = {});
  /// Binds (port() is known) without serving yet: peers that connect wait in the backlog.
  Status listen(const Options& options);
  /// Starts serving, saying `identity` in handshakes; no handler or message may be added
  /// after listen().
  void serve(handshake::Identity identity);
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }
  size_t connectionCount() const { return server_.connectionCount(); }
  size_t maxConnections() const { return server_.maxConnections(); }

 private:
  void serveConnection(int fd, const net::PeerInfo& peer);
  // The token handshake's requests, served by the server itself.
  Status handshakeRequest(const wire::FrameHeader& h, ServerConnection& conn, handshake::ServerState& auth);

  Options options_;
  handshake::Identity identity_;
  wire::MessageTable table_;
  std::array<Handler, wire::kMaxMessageType + 1> handlers_;
  std::atomic<bool> started_{false};
  log::RateLimit bad_peers_;  // lines about protocol violations and refused clients
  net::SocketServer server_;
};

}  // namespace ferry
