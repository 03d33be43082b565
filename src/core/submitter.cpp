#include "core/submitter.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "core/paged_runs.h"

namespace ferry {

Status Submitter::validateTarget(SegmentEntry& seg, const Request& req, Sides& sides, bool refresh_on_miss) {
  const bool policies = p_.selector.hasPolicies();
  if (seg.is_file) {
    sides.remote_kind = kFileData;
    if (policies) sides.remote_location = "file";
  }
  if (seg.is_self && seg.is_file) return p_.files.checkTarget(*seg.snapshot(), req);
  if (seg.is_self) {
    Status st = p_.registry.checkLocal(req.target_offset, req.length,
                                       policies ? &sides.remote_location : nullptr, &sides.remote_kind);
    if (!st.ok()) return Status::InvalidArgument("target: " + st.message());
    return Status::OK();
  }
  if (seg.stale.load(std::memory_order_acquire) && seg.stale.exchange(false)) {
    // Its registrations changed since we fetched the descriptor: buffers may be gone or
    // have other permissions now. The target checks every access anyway, so a failed
    // refresh (store down) leaves us on the cached copy rather than failing the request.
    Status st = p_.directory.refresh(seg);
    if (!st.ok())
      FERRY_LOG(WARN) << "segment '" << seg.name << "' changed but its descriptor could not be "
                      << "refreshed (" << st.ToString() << "); using the cached one";
  }
  Status file_status;
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard lock(seg.mu);
      if (seg.is_file) {
        file_status = p_.files.checkTarget(*seg.peer, req);
        // A range past the end may fit a file re-exposed larger: refresh once, like a miss.
        if (file_status.code() != Status::Code::kOutOfRange && !file_status.IsNotFound()) return file_status;
      } else if (const SegmentDescriptor* d = seg.desc()) {
        if (const BufferDesc* b = d->find(req.target_offset, req.length)) {
          sides.remote_kind = memoryKindOf(b->location);
          if (policies) sides.remote_location = b->location;
          return d->checkAccess(*b, req.opcode == Request::WRITE);
        }
      }
    }
    if (!refresh_on_miss) break;
    if (attempt == 0) FERRY_RETURN_IF_ERROR(p_.directory.refresh(seg));  // it may have registered it since
  }
  if (seg.is_file) return file_status;
  return Status::InvalidArgument("target range " + rangeText(req.target_offset, req.length) +
                                 " is not inside a registered buffer of segment '" + seg.name + "'");
}

Status Submitter::routeFor(SegmentEntry& seg, const Request& req, const Sides& sides,
                           std::shared_ptr<Route>& out) {
  SelectionCase c;
  c.length = req.length;
  c.local_kind = sides.local_kind;
  c.remote_kind = sides.remote_kind;
  c.local_location = sides.local_location;
  c.remote_location = sides.remote_location;
  c.segment_type = seg.is_file ? "file" : "memory";
  c.checksum = checked(req);
  std::string_view hint = req.transport_hint ? req.transport_hint : "";
  TransportSelector::Order order;
  bool pinned = false;
  std::lock_guard lock(seg.mu);
  c.same_machine = seg.peer->machine_id == machine_id_;
  FERRY_RETURN_IF_ERROR(p_.selector.choose(c, seg.reachable, hint, seg.name, order, pinned));
  if (seg.unusable && !pinned)
    if (auto best = p_.selector.missedBest(c, seg.reachable, seg.unusable, order))
      FERRY_RETURN_IF_ERROR(noteUnusableLocked(seg, *best, order.empty() ? -1 : order[0]));
  return p_.segments.routeLocked(seg, order, pinned, out);
}

Status Submitter::noteUnusableLocked(SegmentEntry& seg, uint8_t best, int chosen) {
  const auto& transports = p_.selector.transports();
  const std::string what = std::string(transports[best]->name()) + " would carry it but cannot here (" +
                           seg.unusable_why[best] + ")";
  if (p_.selector.strict())
    return Status::NotSupported("transfer to segment '" + seg.name + "' refused (selector/strict): " + what);
  if (chosen < 0) return Status::OK();  // nothing carries it: choose() said why
  if (TransferCounters* c = p_.batches.counters())
    c->countDowngrade(TransferCounters::kUnusableHere, best, static_cast<size_t>(chosen));
  FERRY_LOG_LIMITED(WARN, *seg.downgrade_log)
      << "downgrade toward segment '" << seg.name << "': " << what << "; going over "
      << transports[static_cast<size_t>(chosen)]->name() << " (selector/strict=true fails such transfers)";
  return Status::OK();
}

std::function<void(bool)> Submitter::notifyWhenDone(BatchID id, const std::vector<std::shared_ptr<SegmentEntry>>& segs,
                                                    const Notification& n) {
  struct Target {
    bool self;
    std::string host;
    uint16_t port;
  };
  std::vector<Target> targets;
  std::vector<SegmentID> seen;
  for (const auto& s : segs) {
    if (std::find(seen.begin(), seen.end(), s->id) != seen.end()) continue;
    seen.push_back(s->id);
    auto peer = s->snapshot();
    targets.push_back({s->is_self, peer->host, peer->port});
  }
  Notifications& out = p_.notifications;
  return [&out, targets = std::move(targets), n, id](bool all_ok) {
    if (!all_ok) {
      FERRY_LOG(WARN) << "batch " << id << ": notification '" << n.name << "' not sent because a transfer failed";
      return;
    }
    for (const Target& t : targets) {
      if (t.self)
        out.deliver(n).IgnoreError();  // a full inbox said so in its log line
      else
        out.post(t.host, t.port, n);
    }
  };
}

Status Submitter::check(const std::vector<Request>& requests) {
  Prepared unused;
  return prepare(requests, unused);
}

Status Submitter::prepare(const std::vector<Request>& requests, Prepared& out, bool refresh_on_miss) {
  auto& segs = out.segs;
  auto& routes = out.routes;
  auto& kinds = out.kinds;
  uint64_t& bytes = out.bytes;
  segs.assign(requests.size(), nullptr);
  routes.assign(requests.size(), nullptr);
  kinds.assign(requests.size(), {kHostMemory, kHostMemory});
  const bool policies = p_.selector.hasPolicies();
  MemoryKind prev_local = kHostMemory, prev_remote = kHostMemory;
  bytes = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    auto fail = [&](const Status& st) {
      return Status(st.code(), "request " + std::to_string(i) + ": " + st.message());
    };
    // Read the opcode's bytes: callers from C or Python may pass any integer there.
    std::underlying_type_t<Request::OpCode> op;
    std::memcpy(&op, &r.opcode, sizeof op);
    if (op != Request::READ && op != Request::WRITE)
      return fail(Status::InvalidArgument("unknown opcode " + std::to_string(op)));
    if (r.length == 0) return fail(Status::InvalidArgument("length is 0"));
    bytes += r.length;
    if (!r.source) return fail(Status::InvalidArgument("source is null"));
    Sides sides;
    Status st = p_.registry.checkLocal(reinterpret_cast<uint64_t>(r.source), r.length,
                                       policies ? &sides.local_location : nullptr, &sides.local_kind);
    if (!st.ok()) return fail(st);
    if (i > 0 && r.target_id == requests[i - 1].target_id) {
      segs[i] = segs[i - 1];
    } else {
      segs[i] = p_.segments.find(r.target_id);
      if (!segs[i]) return fail(Status::NotFound("unknown segment handle " + std::to_string(r.target_id)));
    }
    st = validateTarget(*segs[i], r, sides, refresh_on_miss);
    if (!st.ok()) return fail(st);
    // The common case, a run of requests to one segment: the previous request's route
    // serves when nothing it was chosen on differs.
    const Request* prev = i > 0 ? &requests[i - 1] : nullptr;
    bool same_choice = prev && segs[i] == segs[i - 1] && !policies && sides.local_kind == prev_local &&
                       sides.remote_kind == prev_remote &&
                       r.checksum == prev->checksum &&
                       std::string_view(r.transport_hint ? r.transport_hint : "") ==
                           std::string_view(prev->transport_hint ? prev->transport_hint : "") &&
                       (r.length == prev->length ||
                        !p_.selector.orderDependsOnSize(sides.local_kind, sides.remote_kind));
    if (same_choice) {
      routes[i] = routes[i - 1];
    } else {
      st = routeFor(*segs[i], r, sides, routes[i]);
      if (!st.ok()) return fail(st);
    }
    prev_local = sides.local_kind;
    prev_remote = sides.remote_kind;
    kinds[i] = {sides.local_kind, sides.remote_kind};
  }
  return Status::OK();
}

Status Submitter::submit(BatchID id, const std::vector<Request>& requests, const Notification* notifi) {
  std::shared_ptr<Batch> batch;
  FERRY_RETURN_IF_ERROR(p_.batches.find(id, batch));
  if (requests.empty()) return Status::OK();
  // Validate everything before anything moves.
  Prepared prepared;
  FERRY_RETURN_IF_ERROR(prepare(requests, prepared));
  const auto& segs = prepared.segs;
  const auto& routes = prepared.routes;
  const auto& kinds = prepared.kinds;
  const uint64_t bytes = prepared.bytes;

  size_t first;
  FERRY_RETURN_IF_ERROR(reserveTasks(*batch, requests.size(), bytes, first));

  std::shared_ptr<CompletionGroup> group;
  if (notifi) {
    group = std::make_shared<CompletionGroup>();
    group->tasks_left = requests.size();
    group->on_done = notifyWhenDone(id, segs, *notifi);
  }

  int64_t deadline = nowNs() + transfer_timeout_ns_;
  for (size_t i = 0; i < requests.size(); ++i) {
    Task& t = batch->tasks[first + i];
    t.group = group;
    t.route = routes[i];  // also keeps its endpoints alive while the slices are out
    makeSlices(t, requests[i], routes[i]->slice_size, deadline, kinds[i].first, kinds[i].second);
    t.checksum = checked(requests[i]);
  }

  // Hand each run of requests with the same route over in one call.
  Status result;
  std::vector<Slice*> run;
  for (size_t i = 0; i < requests.size();) {
    size_t j = i;
    while (j < requests.size() && routes[j] == routes[i]) ++j;
    run.clear();
    for (size_t k = i; k < j; ++k) {
      Task& t = batch->tasks[first + k];
      for (uint32_t n = 0; n < t.num_slices; ++n) run.push_back(&t.slices[n]);
    }
    Status st = dispatch(*segs[i], *routes[i], &requests[i], j - i, i, &batch->tasks[first + i], j - i, run);
    if (!st.ok() && result.ok()) result = st;
    i = j;
  }
  return result;
}

Status Submitter::reserveTasks(Batch& batch, size_t count, uint64_t bytes, size_t& first) {
  std::lock_guard lock(batch.mu);
  if (batch.freed) return Status::InvalidArgument("unknown batch id " + std::to_string(batch.id));
  size_t used = batch.size.load(std::memory_order_relaxed);
  if (count > batch.capacity - used)
    return Status::InvalidArgument("batch " + std::to_string(batch.id) + " over capacity: " + std::to_string(used) +
                                   " of " + std::to_string(batch.capacity) + " used, " + std::to_string(count) +
                                   " more requested");
  first = used;
  for (size_t i = 0; i < count; ++i) {
    Task& t = batch.tasks[first + i];
    t.batch = &batch;
    t.state.store(PENDING, std::memory_order_relaxed);
  }
  batch.pending.fetch_add(count, std::memory_order_acq_rel);
  batch.size.store(used + count, std::memory_order_release);
  batch.submitted_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return Status::OK();
}

Status Submitter::dispatch(SegmentEntry& seg, Route& route, const Request* reqs, size_t count, size_t first_index,
                           Task* tasks, size_t task_count, std::vector<Slice*>& run,
                           const std::vector<SliceRange>* pieces) {
  Status st = route.submitRun(run, seg.stale);
  bool moved = st.IsUnavailable() && seg.source && seg.source->followsMoves();
  // `stale` may have been cleared meanwhile by another submitter refreshing to a version
  // still older than the one this run's transport saw: an older descriptor is stale too.
  const SegmentDescriptor* used = route.peer ? route.peer->desc.get() : nullptr;
  bool outdated = used && used->version < seg.newest_reported.load(std::memory_order_acquire);
  if (!st.ok() && (seg.stale.load(std::memory_order_acquire) || moved || outdated))
    st = resubmitAfterRefresh(seg, reqs, count, first_index, tasks, task_count, run, st, pieces);
  if (!st.ok())
    for (size_t k = 0; k < task_count; ++k) failTask(tasks[k], st);
  return st;
}

Status Submitter::submitPaged(BatchID id, const PagedRequest& request) {
  std::shared_ptr<Batch> batch;
  FERRY_RETURN_IF_ERROR(p_.batches.find(id, batch));
  std::vector<SliceRange> runs;
  FERRY_RETURN_IF_ERROR(pageRuns(request, runs));
  if (runs.empty()) return Status::OK();
  const Request like = pagedLike(request);
  Prepared prepared;
  // Slices of several pages need the pages of each to lie in one buffer at both ends (a
  // transport resolves a slice's target once): the span's single check proves it.
  const bool spanned = prepareSpan(runs, like, prepared);
  if (!spanned) {
    std::vector<Request> each;
    each.reserve(runs.size());
    for (const SliceRange& r : runs) each.push_back(runRequest(like, r));
    Status st = prepare(each, prepared);
    if (!st.ok()) return Status(st.code(), "paged transfer, " + st.message());  // "request i" = run i
    // One task has one route: runs that would be routed differently (pages in memory of
    // different kinds, a size-dependent policy) are separate requests.
    for (size_t i = 1; i < runs.size(); ++i)
      if (prepared.routes[i] != prepared.routes[0] || prepared.kinds[i] != prepared.kinds[0])
        return Status::NotSupported("paged transfer: run " + std::to_string(i) +
                                    " needs another transport than the first (memory of another kind?); "
                                    "submit such pages as a separate request");
  }
  const auto [local_kind, remote_kind] = prepared.kinds[0];
  Route& route = *prepared.routes[0];
  const bool multi_range =
      spanned && route.multi_range && local_kind == kHostMemory && remote_kind == kHostMemory;
  size_t first;
  FERRY_RETURN_IF_ERROR(reserveTasks(*batch, 1, prepared.bytes, first));
  Task& t = batch->tasks[first];
  t.route = prepared.routes[0];
  makeSlices(t, std::move(runs), like, route.slice_size, nowNs() + transfer_timeout_ns_, local_kind, remote_kind,
             multi_range);
  t.checksum = checked(like);
  std::vector<Slice*> run(t.num_slices);
  for (uint32_t n = 0; n < t.num_slices; ++n) run[n] = &t.slices[n];
  // A refresh re-checks every run (the peer may have split the span's buffer since); the
  // slices point into the runs when they carry several (makeSlices moved them to the task).
  return dispatch(*prepared.segs[0], route, &like, 1, 0, &t, 1, run, t.ranges.empty() ? &runs : &t.ranges);
}

bool Submitter::prepareSpan(const std::vector<SliceRange>& runs, const Request& like, Prepared& out) {
  if (runs.size() < 2 || p_.selector.hasPolicies()) return false;
  uint64_t local_lo = UINT64_MAX, local_hi = 0, remote_lo = UINT64_MAX, remote_hi = 0, bytes = 0;
  for (const SliceRange& r : runs) {  // pageRuns made them: no range wraps
    const auto local = reinterpret_cast<uint64_t>(r.local);
    local_lo = std::min(local_lo, local);
    local_hi = std::max(local_hi, local + r.length);
    remote_lo = std::min(remote_lo, r.remote);
    remote_hi = std::max(remote_hi, r.remote + r.length);
    bytes += r.length;
  }
  // One request as long as the longer span: it may reach past the shorter one's buffer,
  // and then the runs are checked one by one (correct, only slower).
  Request span = like;
  span.source = reinterpret_cast<void*>(local_lo);
  span.target_offset = remote_lo;
  span.length = std::max(local_hi - local_lo, remote_hi - remote_lo);
  Prepared one;
  if (!prepare({span}, one, false).ok() || p_.selector.orderDependsOnSize(one.kinds[0].first, one.kinds[0].second))
    return false;
  one.bytes = bytes;
  out = std::move(one);
  return true;
}

Status Submitter::resubmitAfterRefresh(SegmentEntry& seg, const Request* reqs, size_t count, size_t first_index,
                                       Task* tasks, size_t task_count, std::vector<Slice*>& run, Status failed,
                                       const std::vector<SliceRange>* pieces) {
  seg.stale.store(false, std::memory_order_release);
  const uint64_t reported = seg.newest_reported.load(std::memory_order_acquire);  // before the read
  const auto before = seg.snapshot();
  if (!p_.directory.refresh(seg).ok()) return failed;
  const auto after = seg.snapshot();
  const bool restarted = before->desc && after->desc && before->desc->instance_id != after->desc->instance_id;
  auto nth = [&](size_t k) { return pieces ? runRequest(reqs[0], (*pieces)[k]) : reqs[k]; };
  const Request first = nth(0);
  Sides sides;  // of the run's first request, which the route is chosen for
  for (size_t k = 0; k < (pieces ? pieces->size() : count); ++k) {
    Sides other;
    Status v = validateTarget(seg, nth(k), k == 0 ? sides : other);
    if (!v.ok()) return Status(v.code(), "request " + std::to_string(first_index + k) + ": " + v.message());
  }
  p_.registry.checkLocal(reinterpret_cast<uint64_t>(first.source), first.length,
                         p_.selector.hasPolicies() ? &sides.local_location : nullptr, &sides.local_kind)
      .IgnoreError();  // checked at validation; still registered while its task is pending
  std::shared_ptr<Route> base;
  FERRY_RETURN_IF_ERROR(routeFor(seg, first, sides, base));
  // The run's own copy, marked so that a transport checking the peer's live version takes
  // the descriptor just read as current. Slice sizes stay: any candidate can carry them.
  auto route = std::make_shared<Route>(*base);
  auto peer = std::make_shared<PeerEndpoint>(*route->peer);
  peer->just_refreshed = true;
  // A restart found by this refresh starts versions over: nothing older to refuse then.
  peer->refreshed_over = restarted ? 0 : reported;
  route->peer = std::move(peer);
  for (size_t k = 0; k < task_count; ++k) tasks[k].route = route;
  return route->submitRun(run, seg.stale);
}

}  // namespace ferry
