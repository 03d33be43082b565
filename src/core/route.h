// One request's transport candidates toward one segment, and the failover of its slices:
// a slice that fails with an error another transport might not have moves to the next
// candidate, at submit (submitRun) and at completion (failover).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

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
  size_t max_failover = 0;
  uint64_t slice_size = 0;  // the smallest of the candidates': any of them can carry a slice

  /// Errors another transport might not have. A refusal by the target (permission, range)
  /// or a passed deadline would only repeat.
  static bool retryable(const Status& s);
  /// Sets max_failover and slice_size once the candidates are known.
  void finish(size_t max_failover_attempts);
  bool canFailOver() const { return max_failover > 0 && candidates.size() > 1; }
  bool failover(Slice* slice, const Status& why) override;
  /// Hands a run of slices to the candidates in order (submit-time failover). Stops early
  /// when `stale` gets set (the caller refreshes and retries instead).
  Status submitRun(std::vector<Slice*>& run, const std::atomic<bool>& stale);
};

}  // namespace ferry
