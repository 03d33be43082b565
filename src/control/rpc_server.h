// The engine's RPC server: one listening socket, one thread per connection, frames
// dispatched to handlers by type. Control messages (descriptor, notify, probe) and the
// transports' messages (tcp: write, read) share it; each owner defines its types in the
// server's table before start, and a type is served by one handler only. A malformed frame
// closes only its own connection, with one log line.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/net.h"
#include "common/tcp_server.h"
#include "control/wire.h"
#include "ferry/status.h"

namespace ferry {

class ServerConnection {
 public:
  ServerConnection(int fd, int spin_us, std::string peer, const wire::MessageTable& table,
                   const std::atomic<uint64_t>* epoch = nullptr);
  net::SocketReader& reader() { return reader_; }
  const std::string& peer() const { return peer_; }
  /// The server's message table (names for logs).
  const wire::MessageTable& messages() const { return table_; }

  /// Queues a small response; queued responses go out before the next blocking read, so
  /// a burst of acks costs one send.
  void respond(wire::MsgType type, uint64_t request_id, const Status& status,
               std::string_view body = {});
  /// Sends queued responses, then a header and a payload straight from memory.
  Status respondWithPayload(wire::MsgType type, uint64_t request_id, const void* data,
                            size_t len);
  Status flush();

 private:
  uint64_t epoch() const { return epoch_ ? epoch_->load(std::memory_order_acquire) : 0; }

  int fd_;
  const wire::MessageTable& table_;
  const std::atomic<uint64_t>* epoch_;
  net::SocketReader reader_;
  std::string peer_;
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
    int spin_us = 0;  // polling mode: spin this long for the next frame before sleeping
    size_t max_connections = 1024;
    int stall_timeout_ms = 30000;  // a peer silent mid-frame this long is dropped
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
  Status start(const Options& options);
  /// Binds (port() is known) without serving yet: peers that connect wait in the backlog.
  Status listen(const Options& options);
  /// Starts serving; no handler or message may be added after listen().
  void serve();
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }
  size_t connectionCount() const { return server_.connectionCount(); }

 private:
  void serveConnection(int fd, const std::string& peer);

  Options options_;
  wire::MessageTable table_;
  std::array<Handler, wire::kMaxMessageType + 1> handlers_;
  std::atomic<bool> started_{false};
  net::TcpServer server_;
};

}  // namespace ferry
