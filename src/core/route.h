// One request's transport candidates toward one segment, and the failover of its slices:
// a slice that fails with an error another transport might not have moves to the next
// candidate, at submit (submitRun) and at completion (failover).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "common/log.h"
#include "model/slice.h"
#include "transport/transport.h"

namespace ferry {

struct Route : SliceRoute {
  struct Candidate {
    Transport* transport = nullptr;
    std::shared_ptr<Endpoint> endpoint;  // the segment's endpoint on that transport
  };
  std::shared_ptr<const PeerEndpoint> peer;
  std::vector<Candidate> candidates;
  bool pinned = false;
  bool strict = false;  // selector/strict: a failure never moves to a slower candidate
  size_t max_failover = 0;
  // Downgrades toward this segment are said at most once per 10 s (shared by its routes):
  // a broken fast path fails every slice.
  std::shared_ptr<log::RateLimit> downgrade_log;
  uint64_t slice_size = 0;  // the smallest of the candidates': any of them can carry a slice
  bool multi_range = false;  // every candidate carries slices of several pieces (TransportCaps)

  /// Errors another transport might not have. A refusal by the target (permission, range)
  /// or a passed deadline would only repeat.
  static bool retryable(const Status& s);
  /// Sets max_failover, slice_size and multi_range once the candidates are known.
  void finish(size_t max_failover_attempts);
  bool canFailOver() const { return max_failover > 0 && candidates.size() > 1; }
  bool failover(Slice* slice, const Status& why) override;
  /// Hands a run of slices to the candidates in order (submit-time failover). Stops early
  /// when `stale` gets set (the caller refreshes and retries instead).
  Status submitRun(std::vector<Slice*>& run, const std::atomic<bool>& stale);

 private:
  /// `count` slices moved from candidate `from` to `to`: counted, and said (rate-limited)
  /// with the pair, both transports and why.
  void noteDowngrade(const Slice& slice, size_t count, TransferCounters::Downgrade kind, size_t from, size_t to,
                     const Status& why);
  /// Under selector/strict: the fallback from candidate `from` that was not taken, said.
  void noteRefusedFallback(size_t from, const Status& why);
};

}  // namespace ferry
