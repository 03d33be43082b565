// RDMA verbs transport (`rdma`, InfiniBand and RoCE): one-sided RDMA WRITE and READ between
// registered buffers over RC queue pairs, striped over the NICs of both ends.
//
// Verbs are reached through a table loaded at run time (verbs_api.h): without rdma-core,
// without devices, or with none ACTIVE, start() succeeds and the transport stays inert — no
// thread, no descriptor entry, canReach false, one log line with the reason (inertReason()).
//
// What it publishes (descriptor attrs under "rdma"): about the segment, its NICs
// {"devices": [{"name", "numa", "gbps"}]}; per buffer, {"rkeys": [...]} in that order. Each
// buffer is registered once per NIC with the access its permission allows (local-only: no
// remote access and no rkey published; read-only: remote read), so the NIC itself refuses a
// peer's access outside what the owner registered: a forged key or range fails at the NIC.
//
// Paths (rdma_path.h) connect one of our NICs to one of the peer's, made on first use by a
// handshake over the engine's RPC server (rdma_wire.h: versioned, validated; the MTU is the
// smaller of both ends'). Slices go to the least-loaded usable path among those from the
// NICs nearest the local buffer (its location's NUMA node) to the peer NIC of the same rank
// (rail-aligned); a path error pauses that NIC pair with a doubling cooldown and re-posts the
// slice on another connected path, and with none left the slice fails as Unavailable, which
// the engine's selector fails over to the next transport (tcp). The target side of a path
// holds QPs only (passive: one-sided operations need no target CPU). QPs per NIC, ours and
// those held for peers, are capped (max_qps): past it idle paths of ours are closed (longest
// idle first), then the oldest paths peers made to us (Mooncake #1845: QP exhaustion).
//
// Threads: one completion thread per NIC, sleeping on its completion channel (in polling
// mode it first polls the CQ for polling_spin_us after each completion).
// Locks (docs/locking.md): RdmaPeer::mu_ -> RdmaPath::mu_ -> RdmaDevice::mu_; mr_mu_ and
// passive_mu_ are leaves. No slice completes under any of them.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/options.h"
#include "control/rpc_client.h"
#include "transport/endpoint_cache.h"
#include "transport/rdma/rdma_device.h"
#include "transport/rdma/rdma_path.h"
#include "transport/transport.h"

namespace ferry {

class RdmaPeer;

class RdmaTransport : public Transport {
 public:
  RdmaTransport();
  ~RdmaTransport() override;

  static void declareOptions(OptionTable& table);

  const char* name() const override { return "rdma"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  std::string unusableFor(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  Status registerMemory(const BufferDesc& buffer, const MemoryOptions& options, std::string& attrs) override;
  Status unregisterMemory(const BufferDesc& buffer) override;
  std::string describeLocal() const override;
  size_t peerStateCount() const override { return endpoints_.liveCount(); }
  /// Queue pairs held on every NIC (paths to peers and peers' paths to us): an RDMA
  /// connection is a queue pair.
  size_t connectionCount() const override;
  std::string inspect() const override;

  /// Why the transport is inert ("" when it has devices).
  const std::string& inertReason() const { return inert_reason_; }
  /// The NICs in use (tests, ferry-info).
  const std::vector<std::unique_ptr<rdma::RdmaDevice>>& devices() const { return devices_; }
  /// Queue pairs held for peers' paths to us (target side).
  size_t passiveQpCount() const;

 private:
  friend class RdmaPeer;
  struct Options {
    std::string provider = "system";
    std::string devices;
    int gid_index = -1;
    int mtu = 4096;
    rdma::PathOptions path;
    int max_cqe = 4096;
    size_t max_qps = 16384;
    int64_t cooldown_ms = 1000, cooldown_max_ms = 60000;
    uint8_t max_resends = 3;
    int connect_timeout_ms = 3000;
    int spin_us = 0;  // polling mode (the engine's `polling`): completion threads spin first
  };
  // A registered buffer: its MR on each device (null where registration failed).
  struct LocalBuffer {
    uint64_t length = 0;
    int numa = -1;
    std::vector<ibv_mr*> mrs;
  };
  // The target side of one path: QPs a peer's path is connected to.
  struct PassivePath {
    size_t device = 0;
    std::vector<ibv_qp*> qps;
    uint64_t created = 0;  // order, for eviction
  };

  Status openDevices();
  // kRdmaConnect from a peer: connect QPs on our side of the path.
  Status serveConnect(const wire::FrameHeader& h, ServerConnection& conn);
  Status acceptPath(const rdma_wire::ConnectInfo& req, rdma_wire::ConnectInfo& reply);
  // Room for `count` more QPs on `device` under max_qps: closes idle paths of ours, then the
  // oldest paths peers made to us; Busy when that is not enough.
  Status makeRoom(size_t device, size_t count);
  void destroyPassive(PassivePath& p);
  // The registered buffer holding [addr, addr+len): its local key per device (-1 where its
  // registration failed) and NUMA node. Slices of one request share a buffer, so callers keep
  // the last answer and ask again only for an address outside it.
  struct LocalKeys {
    uint64_t base = 0, end = 0;  // the buffer ([base, end); empty: none yet)
    std::vector<int64_t> lkeys;
    int numa = -1;
    bool covers(uint64_t addr, uint64_t len) const { return addr >= base && len <= end - addr && addr < end; }
  };
  // False when the range is not (or no longer) registered here.
  bool localKeys(uint64_t addr, uint64_t len, LocalKeys& out) const;

  TransportContext* ctx_ = nullptr;
  Options options_;
  uint64_t slice_size_ = 256 << 10;
  std::string inert_reason_ = "not started";
  std::shared_ptr<const rdma::VerbsApi> verbs_;
  std::vector<std::unique_ptr<rdma::RdmaDevice>> devices_;
  std::unique_ptr<RpcClient> rpc_;
  EndpointCache<RdmaPeer> endpoints_;
  std::atomic<bool> stopping_{false};

  mutable std::shared_mutex mr_mu_;  // guards mrs_; a leaf
  std::map<uint64_t, LocalBuffer> mrs_;  // by base address

  mutable std::mutex passive_mu_;  // guards passive_; a leaf
  std::map<std::string, PassivePath> passive_;  // by initiator instance + NIC pair
  size_t passive_qps_ = 0;
  uint64_t passive_seq_ = 0;
  log::RateLimit refused_;  // lines about peers' refused handshakes
};

}  // namespace ferry
