// submitTransfer: validate every request (local range, target range against the peer's
// descriptor or our live registry/files, refreshing a stale or missing descriptor once) →
// choose each request's route → cut into slices → hand runs of slices to the route's
// candidates → on a changed or moved peer, refresh and resubmit once.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/batch_table.h"
#include "core/file_segments.h"
#include "core/notifications.h"
#include "core/peer_directory.h"
#include "core/segment_table.h"
#include "core/selector.h"
#include "model/memory_registry.h"

namespace ferry {

class Submitter {
 public:
  struct Parts {
    MemoryRegistry& registry;
    SegmentTable& segments;
    PeerDirectory& directory;
    FileSegments& files;
    const TransportSelector& selector;
    BatchTable& batches;
    Notifications& notifications;
  };
  Submitter(Parts parts, std::string machine_id, int64_t transfer_timeout_ms, bool checksum_all)
      : p_(parts),
        machine_id_(std::move(machine_id)),
        transfer_timeout_ns_(transfer_timeout_ms * 1000000),
        checksum_all_(checksum_all) {}

  /// See TransferEngine::submitTransfer.
  Status submit(BatchID id, const std::vector<Request>& requests, const Notification* notifi);
  /// See TransferEngine::submitPagedTransfer.
  Status submitPaged(BatchID id, const PagedRequest& request);
  /// What submit() would refuse `requests` for, without submitting them (stream-ordered
  /// transfers report errors on the calling thread, then submit later).
  Status check(const std::vector<Request>& requests);

 private:
  // Every request validated and routed, before anything moves.
  struct Prepared {
    std::vector<std::shared_ptr<SegmentEntry>> segs;
    std::vector<std::shared_ptr<Route>> routes;
    std::vector<std::pair<MemoryKind, MemoryKind>> kinds;  // local, remote
    uint64_t bytes = 0;
  };
  // `refresh_on_miss` false: a target range no buffer of the cached descriptor holds is an
  // error at once (a probe that has a fallback must not cost a round trip to the peer).
  Status prepare(const std::vector<Request>& requests, Prepared& out, bool refresh_on_miss = true);
  // A paged transfer's runs checked at once, when one check decides for all of them: the
  // span they cover at each end lies inside one registered buffer (so each run does, with
  // that buffer's kind and permission) and their route does not depend on their size. False:
  // check them one by one. `out` then has one entry. `like`: the paged request's other fields.
  bool prepareSpan(const std::vector<SliceRange>& runs, const Request& like, Prepared& out);
  // What routing needs to know of a request's two sides.
  struct Sides {
    MemoryKind local_kind = kHostMemory, remote_kind = kHostMemory;
    Location local_location, remote_location;  // filled only when policies may match on them
  };
  // Checks a request's target (refreshing once on a miss) and tells its memory kind.
  Status validateTarget(SegmentEntry& seg, const Request& req, Sides& sides, bool refresh_on_miss = true);
  // The candidates for one request: hint, policy rule, or the default order.
  /// A request `best` would have carried goes over `chosen` (-1: none) because `best` is
  /// unusable toward this peer: refused under selector/strict, else counted and said.
  /// Caller holds seg.mu.
  Status noteUnusableLocked(SegmentEntry& seg, uint8_t best, int chosen);
  Status routeFor(SegmentEntry& seg, const Request& req, const Sides& sides, std::shared_ptr<Route>& out);
  // After a run's submit failed because the peer changed or moved: re-reads its descriptor,
  // re-checks requests [reqs, reqs+count) and submits the run once more; `failed` is kept
  // when the descriptor cannot be read. With `pieces` (a paged task's), the requests
  // re-checked are reqs[0] over each piece.
  Status resubmitAfterRefresh(SegmentEntry& seg, const Request* reqs, size_t count, size_t first_index,
                              Task* tasks, size_t task_count, std::vector<Slice*>& run, Status failed,
                              const std::vector<SliceRange>* pieces);
  // Reserves `count` tasks of the batch (PENDING) for requests of `bytes` in all; `first` is
  // the first one's index.
  Status reserveTasks(Batch& batch, size_t count, uint64_t bytes, size_t& first);
  // Hands a task's (or a run of tasks') slices to their route, refreshing the peer once when
  // it changed or moved; on failure the tasks are failed and the error returned.
  Status dispatch(SegmentEntry& seg, Route& route, const Request* reqs, size_t count, size_t first_index,
                  Task* tasks, size_t task_count, std::vector<Slice*>& run,
                  const std::vector<SliceRange>* pieces = nullptr);
  // Where a notification goes once the batch's data is in place.
  std::function<void(bool)> notifyWhenDone(BatchID id, const std::vector<std::shared_ptr<SegmentEntry>>& segs,
                                           const Notification& n);

  Parts p_;
  const std::string machine_id_;
  const int64_t transfer_timeout_ns_;
  const bool checksum_all_;  // config `checksum`: every request is checked as if it asked
  bool checked(const Request& r) const { return r.checksum || checksum_all_; }
};

}  // namespace ferry
