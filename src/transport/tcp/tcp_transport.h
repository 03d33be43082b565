// TCP transport. Initiator side (TcpEndpoint, one per peer instance): a pool of persistent
// connections; each keeps many slices in flight (requests are pipelined, responses come
// back in order), sends payloads straight from registered memory with writev and receives
// READ data straight into it. Small submits are sent by the submitting thread itself;
// larger ones by the connection's sender thread. Target side (TcpTarget): WRITE/READ
// handlers on the engine's RPC server that check every range against the registry before
// touching memory.
//
// Lock order: TcpEndpoint::mu_ -> TcpConnection::mu_; graveyard_mu_ and timer_mu_ are
// leaves (dead connections are collected under an endpoint's lock and buried after it is
// released).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "common/options.h"
#include "transport/endpoint_cache.h"
#include "transport/tcp/tcp_target.h"
#include "transport/tcp/tcp_socket.h"
#include "transport/transport.h"

namespace ferry {

class TcpConnection;
class TcpEndpoint;

class TcpTransport : public Transport {
 public:
  TcpTransport();
  ~TcpTransport() override;

  static void declareOptions(OptionTable& table);

  const char* name() const override { return "tcp"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override;
  // A file segment of our own is the file transport's (our server would refuse a private one).
  bool canReach(const PeerEndpoint& peer) const override {
    return peer.port != 0 && !(peer.file && peer.is_self);
  }
  uint64_t sliceSize() const override { return slice_size_; }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  /// {"rails": [...]} when rails are configured: peers connect to each.
  std::string describeLocal() const override;
  size_t peerStateCount() const override { return endpoints_.liveCount(); }
  size_t connectionCount() const override { return live_connections_.load(std::memory_order_relaxed); }

  struct Options {
    size_t connections_per_peer = 2;
    uint64_t inline_send_bytes = 256 * 1024;
    int connect_timeout_ms = 3000;
    int64_t transfer_timeout_ms = 30000;
    int spin_us = 0;  // polling mode
    size_t rcvlowat_bytes = 512 * 1024;
    int liveness_ms = 5000;
    tcp_socket::SendBuffers send_buffers;  // transports/tcp/send_buffer_bytes, resolved
    std::vector<std::string> rails;  // local addresses to leave from (and published)
  };

 private:
  friend class TcpEndpoint;
  // Dead connections are joined by the timer thread (never by one of their own threads),
  // or here at once when the transport has stopped.
  void bury(std::vector<std::shared_ptr<TcpConnection>> dead);
  void timerLoop();

  TransportContext* ctx_ = nullptr;
  Options options_;
  uint64_t slice_size_ = 1 << 20;
  TcpTarget target_;
  EndpointCache<TcpEndpoint> endpoints_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> live_connections_{0};  // TcpConnection objects alive (ours, outgoing)
  std::mutex graveyard_mu_;  // a leaf
  std::vector<std::shared_ptr<TcpConnection>> graveyard_;  // dead, to be joined
  std::mutex timer_mu_;  // a leaf: released while the timer checks endpoints
  std::condition_variable timer_cv_;
  std::thread timer_;
};

}  // namespace ferry
