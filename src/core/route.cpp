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
  multi_range = !candidates.empty();
  for (size_t i = 0; i < candidates.size() && i <= max_failover; ++i) {
    slice_size = std::min(slice_size, candidates[i].transport->sliceSize());
    multi_range = multi_range && candidates[i].transport->caps().multi_range;
  }
  if (candidates.empty()) slice_size = 1 << 20;
}

void Route::noteDowngrade(const Slice& slice, size_t count, TransferCounters::Downgrade kind, size_t from, size_t to,
                          const Status& why) {
  if (TransferCounters* c = slice.task->batch->counters)
    c->countDowngrade(kind, transport_index.at(from), transport_index.at(to), count);
  if (downgrade_log)
    FERRY_LOG_LIMITED(WARN, *downgrade_log)
        << "downgrade toward segment '" << peer->segment_name << "': " << candidates[from].transport->name()
        << (kind == TransferCounters::kRefusedAtSubmit ? " refused the transfer" : " failed a slice") << " ("
        << why.ToString() << "), " << count << " slice(s) going over " << candidates[to].transport->name()
        << " instead (selector/strict=true fails them)";
}

void Route::noteRefusedFallback(size_t from, const Status& why) {
  if (downgrade_log && from + 1 < candidates.size())
    FERRY_LOG_LIMITED(WARN, *downgrade_log)
        << "segment '" << peer->segment_name << "': " << candidates[from].transport->name() << " failed ("
        << why.ToString() << "); not falling back to " << candidates[from + 1].transport->name()
        << " (selector/strict)";
}

bool Route::failover(Slice* slice, const Status& why) {
  if (!retryable(why)) return false;
  if (strict) noteRefusedFallback(slice->attempt, why);
  if (!canFailOver()) return false;
  if (!admitSlice(*slice).ok()) return false;  // canceled or out of time: not started again
  while (slice->attempt < max_failover && slice->attempt + 1u < candidates.size()) {
    const size_t from = slice->attempt;
    const Candidate& to = candidates[++slice->attempt];
    if (slice->ranges && !to.transport->caps().multi_range) continue;  // a route refreshed since it was cut
    noteDowngrade(*slice, 1, TransferCounters::kFailedOver, from, slice->attempt, why);
    Slice* one = slice;
    if (to.endpoint->submit(*peer, &one, 1).ok()) return true;
  }
  return false;
}

Status Route::submitRun(std::vector<Slice*>& run, const std::atomic<bool>& stale) {
  Status st = Status::Unavailable("no transport can reach '" + peer->segment_name + "'");
  size_t tries = pinned ? 1 : std::min(candidates.size(), max_failover + 1);
  for (size_t k = 0; k < tries; ++k) {
    if (k > 0 && !run.empty()) noteDowngrade(*run[0], run.size(), TransferCounters::kRefusedAtSubmit, k - 1, k, st);
    // Slices cut for another route (this one is a refresh's) may hold several pieces.
    if (!candidates[k].transport->caps().multi_range &&
        std::any_of(run.begin(), run.end(), [](const Slice* s) { return s->ranges != nullptr; })) {
      st = Status::NotSupported(std::string(candidates[k].transport->name()) +
                                " cannot carry slices of several pieces (a paged transfer's pages)");
      continue;
    }
    for (Slice* s : run) s->attempt = static_cast<uint8_t>(k);  // before: it may complete inline
    st = candidates[k].endpoint->submit(*peer, run.data(), run.size());
    if (st.ok() || !retryable(st)) return st;
    // A transport that found the peer's registrations changed wants a refresh, not the next one.
    if (stale.load(std::memory_order_acquire)) return st;
    if (strict && !pinned) noteRefusedFallback(k, st);
  }
  return st;
}

}  // namespace ferry
