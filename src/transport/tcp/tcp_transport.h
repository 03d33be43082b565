// TCP transport. Initiator side: a pool of persistent connections per peer; each keeps
// many slices in flight (requests are pipelined, responses come back in order), sends
// payloads straight from registered memory with writev and receives READ data straight
// into it. Small submits are sent by the submitting thread itself; larger ones by the
// connection's sender thread. Target side: WRITE/READ handlers on the engine's RPC server
// that check every range against the registry before touching memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "transport/transport.h"

namespace ferry {

class ServerConnection;
namespace wire {
struct FrameHeader;
}
class TcpConnection;

class TcpTransport : public Transport {
 public:
  TcpTransport();
  ~TcpTransport() override;

  const char* name() const override { return "tcp"; }
  TransportCaps caps() const override { return {true, true, true}; }
  Status start(TransportContext& ctx) override;
  void stop() override;
  // A file segment of our own is the file transport's (our server would refuse a private one).
  bool canReach(const PeerEndpoint& peer) const override {
    return peer.port != 0 && !(peer.file && peer.is_self);
  }
  uint64_t sliceSize() const override { return slice_size_; }
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  Status cancel(const PeerEndpoint& peer) override;

  struct Options {
    size_t connections_per_peer = 2;
    uint64_t inline_send_bytes = 256 * 1024;
    int connect_timeout_ms = 3000;
    int64_t transfer_timeout_ms = 30000;
    int spin_us = 0;  // polling mode
  };

 private:
  struct PeerPool {
    std::mutex mu;
    std::vector<std::shared_ptr<TcpConnection>> conns;
  };

  // A peer's admitted access: a pinned memory range, or a range of an exposed file.
  struct RemoteAccess {
    uint64_t addr = 0, len = 0;  // for a file: the file offset
    MemoryRegistry::Pin pin;
    std::shared_ptr<OpenFile> file;  // keeps the file open
  };
  Status handleWrite(const wire::FrameHeader& h, ServerConnection& conn);
  Status handleRead(const wire::FrameHeader& h, ServerConnection& conn);
  Status admitRemoteAccess(const wire::FrameHeader& h, ServerConnection& conn, RemoteAccess& a,
                           bool& refused);
  // This server thread's aligned bounce buffer for file accesses, at least `len` bytes.
  Status bounceBuffer(uint64_t len, uint8_t*& buf);
  // The I/O of an admitted file access between `buf` and the file.
  Status fileOp(const RemoteAccess& a, bool write, uint8_t* buf);
  // Live connections to the peer, connecting up to connections_per_peer.
  Status connectionsFor(const PeerEndpoint& peer, std::vector<std::shared_ptr<TcpConnection>>& out);
  void timerLoop();

  TransportContext* ctx_ = nullptr;
  Options options_;
  uint64_t slice_size_ = 1 << 20;
  uint32_t file_align_ = 4096;  // files/direct_alignment, for the target's bounce buffers
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<PeerPool>> pools_;  // by "host:port"
  std::vector<std::shared_ptr<TcpConnection>> graveyard_;   // dead, to be joined
  std::atomic<bool> stopping_{false};
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::thread timer_;
};

}  // namespace ferry
