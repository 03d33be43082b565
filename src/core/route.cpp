#include "core/route.h"

#include <algorithm>

#include "common/log.h"

namespace ferry {

bool Route::retryable(const Status& s) {
  switch (s.code()) {
    case Status::Code::kUnavailable:
    case Status::Code::kNotSupported:
    case Status::Code::kInternalError:
    case Status::Code::kCorrupted: return true;
    default: return false;
  }
}

void Route::finish(size_t max_failover_attempts) {
  max_failover = pinned ? 0 : max_failover_attempts;
  slice_size = UINT64_MAX;
  for (size_t i = 0; i < candidates.size() && i <= max_failover; ++i)
    slice_size = std::min(slice_size, candidates[i].transport->sliceSize());
  if (candidates.empty()) slice_size = 1 << 20;
}

bool Route::failover(Slice* slice, const Status& why) {
  if (!canFailOver() || !retryable(why)) return false;
  if (!admitSlice(*slice).ok()) return false;  // canceled or out of time: not started again
  while (slice->attempt < max_failover && slice->attempt + 1u < candidates.size()) {
    const Candidate& from = candidates[slice->attempt];
    const Candidate& to = candidates[++slice->attempt];
    static std::atomic<uint64_t> logged{0};
    if (logged.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
      FERRY_LOG(WARN) << "segment '" << peer->segment_name << "': " << from.transport->name() << " failed ("
                      << why.ToString() << "); retrying on " << to.transport->name();
    Slice* one = slice;
    if (to.endpoint->submit(*peer, &one, 1).ok()) return true;
  }
  return false;
}

Status Route::submitRun(std::vector<Slice*>& run, const std::atomic<bool>& stale) {
  Status st = Status::Unavailable("no transport can reach '" + peer->segment_name + "'");
  size_t tries = pinned ? 1 : std::min(candidates.size(), max_failover + 1);
  for (size_t k = 0; k < tries; ++k) {
    for (Slice* s : run) s->attempt = static_cast<uint8_t>(k);  // before: it may complete inline
    st = candidates[k].endpoint->submit(*peer, run.data(), run.size());
    if (st.ok() || !retryable(st)) return st;
    // A transport that found the peer's registrations changed wants a refresh, not the next one.
    if (stale.load(std::memory_order_acquire)) return st;
  }
  return st;
}

}  // namespace ferry
