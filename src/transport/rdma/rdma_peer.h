// What the rdma transport holds for one peer instance: the peer's NICs and per-buffer rkeys
// (parsed once per descriptor, checked as claims: bounded counts and names), and one path
// slot per (our NIC, peer NIC) pair with its pause state. Slices are resolved (local keys,
// remote keys, a path) before any is posted, so a submit takes all slices or none.
//
// mu_ is never held across a handshake: the submit that needs a path marks its pair as
// connecting, releases mu_, handshakes, and resolves again (others wanting that pair wait
// for it; completion threads re-posting slices only take paths already up). mu_ is taken
// before a path's lock; paths are failed and posted to outside it.
#pragma once

#include <atomic>
#include <condition_variable>
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
  void targetRefused(rdma::RdmaPath& path) override;

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
    bool connecting = false;  // a submit is making its path (mu_ released)
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
  // Keys and a path for `s`. With `connect`, a pair whose path is not up may be chosen: then
  // nothing is added and `*need_connect` names it (the caller makes it and resolves again).
  Status resolveLocked(Slice* s, bool connect, Work& work, size_t* need_connect,
                       RdmaTransport::LocalKeys& local);
  // Makes the path of pair `need` (and the other missing rail-aligned ones) to `peer` with
  // mu_ released, or waits for whoever is making it; `lock` holds mu_ on entry and return.
  void connectUnlocked(std::unique_lock<std::mutex>& lock, const PeerEndpoint& peer, size_t need);
  // The handshake of one path (no lock held).
  Status handshake(const PeerEndpoint& peer, size_t local, size_t remote, const std::string& nic,
                   std::shared_ptr<rdma::RdmaPath>& out);
  void pauseLocked(Pair& pair, const std::string& what, const Status& why);

  RdmaTransport& t_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;  // a pair's connect finished
  std::shared_ptr<const SegmentDescriptor> indexed_;
  std::vector<PeerNic> nics_;
  std::vector<std::vector<int64_t>> rkeys_;  // per buffer of indexed_, per peer NIC; -1: none
  std::vector<Pair> pairs_;                  // [local NIC * nics_.size() + peer NIC]
  uint64_t generation_ = 0;  // bumped when pairs_ is rebuilt (the peer's NICs changed)
  // Set when the target refused an access: the next submit asks the peer's registry version
  // (a stale descriptor holds keys the peer has taken back) and has the engine refresh.
  std::atomic<bool> check_version_{false};
  bool canceled_ = false;
};

}  // namespace ferry
