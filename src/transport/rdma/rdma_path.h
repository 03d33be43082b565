// One connected path to a peer instance: a set of RC queue pairs from one of our NICs to one
// of the peer's, made by the handshake and never reused after it fails (a new path replaces
// it). Slices are posted as chains of RDMA WRITE/READ work requests spread over the QPs;
// only every `signal_every`-th request and the last of a chain ask for a completion, and a
// completion retires every earlier request of its QP (RC completes in order). Requests that
// do not fit (send queue depth, CQ room) wait in a backlog posted as completions free room.
//
// Failure: the first error completion fails the whole path. A refusal by the target (remote
// access: rkey, bounds, permission) fails that slice for good; every other slice of the path
// (the failed one too on a path error, and those flushed after it) goes back to the listener
// (the peer endpoint), which re-posts it on another path or gives it up to the engine's
// failover. The QPs go to ERR, the flushes drain, then the QPs are destroyed; a drain that
// does not finish within `drain_ns` is cut short. A slice past its deadline fails the path
// the same way (a stuck path can hold nothing forever).
//
// Locks: mu_ is a leaf (the device's lock is taken under it only to register or destroy
// QPs); no slice completes and no listener is called under it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "model/slice.h"
#include "transport/rdma/rdma_device.h"
#include "transport/rdma/rdma_wire.h"

namespace ferry::rdma {

/// A slice with its keys on one path's NICs.
struct RdmaWork {
  Slice* slice = nullptr;
  uint32_t lkey = 0;
  uint32_t rkey = 0;
};

class RdmaPath;

/// Hears what a path gives back (the peer endpoint).
class PathListener {
 public:
  virtual ~PathListener() = default;
  /// Slices the path could not finish, to re-post elsewhere or fail; called once per batch
  /// of them, with no lock held.
  virtual void reroute(RdmaPath& path, std::vector<Slice*> slices, const Status& why) = 0;
  /// The path failed (first error, once): pause its NIC pair.
  virtual void pathFailed(RdmaPath& path, const Status& why) = 0;
  /// The target's NIC refused a request (key, bounds, permission). Called before the refused
  /// slice completes, so that a caller woken by it submits with this already known.
  virtual void targetRefused(RdmaPath& path) = 0;
};

struct PathOptions {
  uint32_t qps = 2;
  uint32_t max_wr = 256;
  uint32_t signal_every = 16;
  uint32_t post_batch = 32;
  uint8_t timeout = 14, retry_cnt = 7, rnr_retry = 7;
  int64_t drain_ns = 2'000'000'000;
};

class RdmaPath : public QpOwner, public std::enable_shared_from_this<RdmaPath> {
 public:
  RdmaPath(RdmaDevice& device, size_t local_index, size_t peer_index, const PathOptions& options,
           std::weak_ptr<PathListener> listener)
      : device_(device), local_index_(local_index), peer_index_(peer_index), options_(options),
        listener_(std::move(listener)) {}
  ~RdmaPath() override;

  /// Handshake, first half: creates the QPs (INIT) and fills our side of the request.
  Status prepare(rdma_wire::ConnectInfo& request);
  /// Second half: the peer's answer; QPs to RTR and RTS with the MTU both use.
  Status complete(const rdma_wire::ConnectInfo& reply);
  /// Destroys QPs of a path that never became ready.
  void abandon();

  /// Takes every work item: posts what fits now, keeps the rest in order for later. On a
  /// path that is no longer usable they go straight back to the listener.
  void post(std::vector<RdmaWork> work);
  /// Fails the path (idempotent): QPs to ERR, slices back to the listener as they drain.
  void fail(const Status& why) override;

  bool usable() const { return state_.load(std::memory_order_acquire) == State::kReady; }
  bool closed() const { return state_.load(std::memory_order_acquire) == State::kClosed; }
  /// Bytes posted or queued and not yet finished (striping weighs paths by it).
  uint64_t load() const { return load_.load(std::memory_order_relaxed); }
  size_t localIndex() const { return local_index_; }
  size_t peerIndex() const { return peer_index_; }
  RdmaDevice& device() { return device_; }
  ibv_mtu mtu() const { return mtu_; }

  void onCompletions(const ibv_wc* wc, int count) override;
  void sweep(int64_t now_ns) override;
  int64_t idleSinceNs() override;

  /// Work requests posted and signaled so far (tests check selective signaling).
  uint64_t postedCount() const { return posted_.load(std::memory_order_relaxed); }
  uint64_t signaledCount() const { return signaled_.load(std::memory_order_relaxed); }

 private:
  enum class State : uint8_t { kNew, kReady, kFailed, kClosed };
  struct Posted {
    uint64_t seq;
    Slice* slice;
  };
  struct Qp {
    ibv_qp* qp = nullptr;
    uint32_t psn = 0;
    std::deque<Posted> ledger;  // posted, not yet retired, in order
    uint64_t next_seq = 1;
    uint32_t unsignaled = 0;
    bool errored = false;
  };
  // What to do once mu_ is released.
  struct Outcome {
    std::vector<Slice*> ok;
    std::vector<std::pair<Slice*, Status>> failed;
    std::vector<Slice*> back;  // to the listener
    Status why;                // for `back`
    bool newly_failed = false;
    bool refused = false;  // a slice in `failed` was refused by the target
    std::vector<ibv_qp*> destroy;
  };

  void postLocked(Outcome& out);
  // Takes the oldest posted request of `q` off its ledger (its CQE slot is the caller's).
  Slice* popLocked(Qp& q);
  // Retires the ledger entries of `q` up to `seq` (inclusive: `upto`), each with `result`
  // (OK, or back to the listener).
  void retireLocked(Qp& q, uint64_t seq, bool inclusive, bool success, Outcome& out);
  void failLocked(const Status& why, Outcome& out);
  // Destroys the QPs once nothing is posted (or `force`).
  void maybeCloseLocked(bool force, Outcome& out);
  // Records the path's failure in `out` when something goes back or the path just failed
  // (read under mu_, used after it).
  void captureLocked(Outcome& out) const;
  void finish(Outcome& out);
  Qp* findLocked(uint32_t qp_num);

  RdmaDevice& device_;
  const size_t local_index_, peer_index_;
  const PathOptions options_;
  const std::weak_ptr<PathListener> listener_;
  ibv_mtu mtu_ = IBV_MTU_1024;

  std::mutex mu_;  // guards qps_, backlog_, why_, failed_at_ns_
  std::vector<Qp> qps_;
  std::deque<RdmaWork> backlog_;
  size_t next_qp_ = 0;
  Status why_;  // the failure
  int64_t failed_at_ns_ = 0;
  int64_t last_used_ns_ = 0;  // last post or completion
  std::atomic<State> state_{State::kNew};
  std::atomic<uint64_t> load_{0};
  std::atomic<uint64_t> posted_{0}, signaled_{0};
};

/// The status a failed work completion means for its slice (the refusals are final).
Status completionStatus(const VerbsApi& verbs, const ibv_wc& wc, const std::string& where);
/// Whether `s` is the target's refusal (never retried on another path or transport).
bool isRefusal(const Status& s);

}  // namespace ferry::rdma
