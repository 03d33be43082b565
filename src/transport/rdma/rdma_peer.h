// What the rdma transport holds for one peer instance: the peer's NICs and per-buffer rkeys
// (parsed once per descriptor, checked as claims: bounded counts and names), and one path
// slot per (our NIC, peer NIC) pair with its pause state. Slices are resolved (local keys,
// remote keys, a path) before any is posted, so a submit takes all slices or none.
//
// mu_ is held across a handshake (bounded by connect_timeout_ms; only this peer's submits
// wait) and is taken before a path's lock; paths are failed and posted to outside it.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/rdma/rdma_transport.h"

namespace ferry {

/// Whether a descriptor lists RDMA NICs we could use (well-formed; canReach).
bool peerHasRdmaNics(const SegmentDescriptor& d);

class RdmaPeer : public Endpoint, public rdma::PathListener, public std::enable_shared_from_this<RdmaPeer> {
 public:
  explicit RdmaPeer(RdmaTransport& transport) : t_(transport) {}
  ~RdmaPeer() override;

  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override;

  void reroute(rdma::RdmaPath& path, std::vector<Slice*> slices, const Status& why) override;
  void pathFailed(rdma::RdmaPath& path, const Status& why) override;

  /// The paths made so far (tests: bytes per NIC, signaling).
  std::vector<std::shared_ptr<rdma::RdmaPath>> paths() const;

 private:
  struct PeerNic {
    std::string name;
    int numa = -1;
  };
  struct Pair {
    std::shared_ptr<rdma::RdmaPath> path;
    int64_t paused_until_ns = 0;
    int64_t cooldown_ns = 0;
    int64_t connected_at_ns = 0;
  };
  // Slices resolved to one path and not posted yet.
  struct Planned {
    std::shared_ptr<rdma::RdmaPath> path;
    std::vector<rdma::RdmaWork> items;
    uint64_t bytes = 0;
  };
  using Work = std::vector<Planned>;

  // Re-reads the peer's NICs and keys when its descriptor changed; paths to NICs it no
  // longer lists go to `dropped` (failed by the caller, outside mu_).
  Status indexLocked(const PeerEndpoint& peer, std::vector<std::shared_ptr<rdma::RdmaPath>>& dropped);
  // Keys and a path for `s`; with `connect`, a pair without a path may be handshaken now.
  Status resolveLocked(Slice* s, bool connect, Work& work);
  Status connectLocked(size_t local, size_t remote, std::shared_ptr<rdma::RdmaPath>& out);
  void pauseLocked(Pair& pair, const std::string& what, const Status& why);

  RdmaTransport& t_;
  mutable std::mutex mu_;  // guards everything below
  PeerEndpoint peer_;      // as of the last submit (re-posts resolve against its descriptor)
  std::shared_ptr<const SegmentDescriptor> indexed_;
  std::vector<PeerNic> nics_;
  std::vector<std::vector<int64_t>> rkeys_;  // per buffer of indexed_, per peer NIC; -1: none
  std::vector<Pair> pairs_;                  // [local NIC * nics_.size() + peer NIC]
  bool canceled_ = false;
};

}  // namespace ferry
