#include "model/slice.h"

#include <algorithm>
#include <cstdint>

#include "common/checksum.h"
#include "common/log.h"

namespace ferry {

TransferStatusEnum stateFor(const Status& s) {
  if (s.ok()) return COMPLETED;
  switch (s.code()) {
    case Status::Code::kTimeout: return TIMEOUT;
    case Status::Code::kCanceled: return CANCELED;
    case Status::Code::kInvalidArgument: return INVALID;
    default: return FAILED;
  }
}

namespace {

// What a task's slices share, and what it keeps of the request (`like`).
void fillShared(Slice& s, Task& task, Request::OpCode op, int64_t deadline_ns, MemoryKind local_kind,
                MemoryKind remote_kind) {
  s.task = &task;
  s.op = op;
  s.deadline_ns = deadline_ns;
  s.local_kind = local_kind;
  s.remote_kind = remote_kind;
}

void fillTask(Task& task, const Request& like, uint64_t length) {
  task.priority = static_cast<uint8_t>(std::clamp(like.priority, 0, kPriorityClasses - 1));
  task.start_by_ns = static_cast<int64_t>(std::min<uint64_t>(like.deadline_ns, INT64_MAX));
  task.checksum = like.checksum;
  task.length = length;
  task.submitted_ns = task.batch && task.batch->counters ? nowNs() : 0;
}

void allocateSlices(Task& task, uint64_t n) {
  // new[], not make_unique: value-initialisation would zero the array before the member
  // initialisers run, a second pass over a paged call's megabytes of slices.
  task.slices.reset(new Slice[n]);
  task.num_slices = static_cast<uint32_t>(n);
  task.slices_left.store(static_cast<uint32_t>(n), std::memory_order_relaxed);
}

// Calls one_range(range, offset, length) for each single-range slice of `ranges` and
// many(first, count, bytes) for each multi-range one, in order (see makeSlices).
template <class One, class Many>
void cutRanges(const std::vector<SliceRange>& ranges, uint64_t slice_size, bool multi_range, One&& one_range,
               Many&& many) {
  size_t first = 0, count = 0;  // the pieces gathered for the next multi-range slice
  uint64_t bytes = 0;
  auto flush = [&] {
    if (count == 1) one_range(ranges[first], 0, bytes);
    if (count > 1) many(first, count, bytes);
    count = 0;
    bytes = 0;
  };
  for (size_t i = 0; i < ranges.size(); ++i) {
    const SliceRange& r = ranges[i];
    if (multi_range && r.length < slice_size) {
      if (count == kMaxSliceRanges || bytes + r.length > slice_size) flush();
      if (count++ == 0) first = i;
      bytes += r.length;
      continue;
    }
    flush();
    for (uint64_t off = 0; off < r.length; off += slice_size) one_range(r, off, std::min(slice_size, r.length - off));
  }
  flush();
}

}  // namespace

void makeSlices(Task& task, const Request& req, uint64_t slice_size, int64_t deadline_ns, MemoryKind local_kind,
                MemoryKind remote_kind) {
  allocateSlices(task, (req.length + slice_size - 1) / slice_size);
  auto* src = static_cast<uint8_t*>(req.source);
  Slice* s = task.slices.get();
  for (uint64_t off = 0; off < req.length; off += slice_size, ++s) {
    fillShared(*s, task, req.opcode, deadline_ns, local_kind, remote_kind);
    s->local = src + off;
    s->remote = req.target_offset + off;
    s->length = static_cast<uint32_t>(std::min<uint64_t>(slice_size, req.length - off));
  }
  fillTask(task, req, req.length);
}

void makeSlices(Task& task, std::vector<SliceRange>&& ranges, const Request& like, uint64_t slice_size,
                int64_t deadline_ns, MemoryKind local_kind, MemoryKind remote_kind, bool multi_range) {
  slice_size = std::min<uint64_t>(slice_size, UINT32_MAX);  // Slice::length
  uint64_t n = 0, length = 0, pieces = 0;
  cutRanges(
      ranges, slice_size, multi_range, [&](const SliceRange&, uint64_t, uint64_t bytes) { ++n, length += bytes; },
      [&](size_t, size_t count, uint64_t bytes) { ++n, length += bytes, pieces += count; });
  allocateSlices(task, n);
  if (pieces) task.ranges = std::move(ranges);
  const std::vector<SliceRange>& table = pieces ? task.ranges : ranges;
  Slice* s = task.slices.get();
  cutRanges(
      table, slice_size, multi_range,
      [&](const SliceRange& r, uint64_t off, uint64_t bytes) {
        fillShared(*s, task, like.opcode, deadline_ns, local_kind, remote_kind);
        s->local = r.local + off;
        s->remote = r.remote + off;
        s->length = static_cast<uint32_t>(bytes);
        ++s;
      },
      [&](size_t first, size_t count, uint64_t bytes) {
        fillShared(*s, task, like.opcode, deadline_ns, local_kind, remote_kind);
        s->local = table[first].local;
        s->remote = table[first].remote;
        s->length = static_cast<uint32_t>(bytes);
        s->ranges = &table[first];
        s->range_count = static_cast<uint32_t>(count);
        ++s;
      });
  fillTask(task, like, length);
}

Status admitSlice(const Slice& slice) {
  const Task& t = *slice.task;
  if (t.canceled.load(std::memory_order_acquire)) return Status::Canceled("task canceled before this slice started");
  if (t.start_by_ns && nowNs() > t.start_by_ns)
    return Status::Timeout("the request's deadline passed before this slice started");
  if (t.submitted_ns) slice.admitted_ns = nowNs();
  return Status::OK();
}

Status compareChecksums(Slice& slice, const char* where, uint64_t sent, uint64_t got) {
  if (sent == got) return Status::OK();
  slice.checksum_mismatch = true;
  return Status::Corrupted(checksum::mismatchText(where, sent, got, slice.length));
}

Status checksumMismatch(Slice& slice, const char* where) {
  slice.checksum_mismatch = true;
  return Status::Corrupted(std::string("checksum mismatch at the ") + where + " (" + std::to_string(slice.length) +
                           " bytes of a checked frame)");
}

void markUnfenced(const Slice& slice) {
  if (slice.op == Request::WRITE) slice.task->batch->unfenced.fetch_add(1, std::memory_order_relaxed);
}

namespace {

size_t carrierOf(const Slice& s) {
  const SliceRoute* r = s.task->route.get();
  return r && s.attempt < r->transport_index.size() ? r->transport_index[s.attempt] : TransferCounters::kMaxTransports;
}

void observeStages(TransferCounters& c, const Slice& s, int64_t now) {
  if (!s.admitted_ns) return;
  c.stages[TransferCounters::kQueued].observe(s.admitted_ns - s.task->submitted_ns);
  const int64_t left = s.sent_ns ? s.sent_ns : now;
  c.stages[TransferCounters::kOnTheWire].observe(left - s.admitted_ns);
  if (s.sent_ns) c.stages[TransferCounters::kAwaitingAck].observe(now - s.sent_ns);
}

// The `count` completed slices of one task (one op): bytes and slices are added once per run
// of slices with one carrier — mostly the whole call — not per slice, as the counters are
// shared by every completing thread; stages are per slice.
void countMoved(TransferCounters& c, Slice* const* slices, size_t count) {
  const int64_t now = nowNs();
  const size_t op = TransferCounters::opIndex(slices[0]->op);
  for (size_t i = 0; i < count;) {
    const size_t carrier = carrierOf(*slices[i]);
    uint64_t bytes = 0, n = 0;
    for (; i < count && carrierOf(*slices[i]) == carrier; ++i, ++n) {
      bytes += slices[i]->length;
      observeStages(c, *slices[i], now);
    }
    if (carrier < TransferCounters::kMaxTransports) {
      c.bytes[carrier][op].fetch_add(bytes, std::memory_order_relaxed);
      c.slices[carrier][op].fetch_add(n, std::memory_order_relaxed);
    }
  }
}

void countFailure(const Batch& b, const Status& status) {
  if (b.counters)
    b.counters->failed_slices[static_cast<size_t>(status.code())].fetch_add(1, std::memory_order_relaxed);
}

void countTask(TransferCounters& c, const Task& task, uint8_t state) {
  const size_t op = task.num_slices ? TransferCounters::opIndex(task.slices[0].op) : 0;
  c.tasks[op][state < TransferCounters::kStates ? state : static_cast<uint8_t>(FAILED)].fetch_add(1, std::memory_order_relaxed);
  if (task.submitted_ns && state == COMPLETED)
    c.task_latency[op][TransferCounters::sizeClass(task.length)].observe(nowNs() - task.submitted_ns);
}

void settleTask(Task& task) {
  uint8_t failure = task.failure.load(std::memory_order_acquire);
  // A canceled task that did not complete whole is CANCELED whatever stopped its slices;
  // one that completed after its deadline missed it.
  if (failure != COMPLETED && task.canceled.load(std::memory_order_acquire))
    failure = CANCELED;
  else if (failure == COMPLETED && task.start_by_ns && nowNs() > task.start_by_ns)
    failure = TIMEOUT;
  Batch* b = task.batch;
  if (b->counters) countTask(*b->counters, task, failure);
  task.state.store(failure, std::memory_order_release);
  if (auto g = task.group) {
    if (failure != COMPLETED) g->any_failed.store(true, std::memory_order_relaxed);
    if (g->tasks_left.fetch_sub(1, std::memory_order_acq_rel) == 1 && g->on_done)
      g->on_done(!g->any_failed.load(std::memory_order_relaxed));
  }
  // Under the mutex: once freeBatch (which takes it) sees pending == 0, no completer
  // touches the batch again.
  std::lock_guard lock(b->mu);
  if (b->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) b->cv.notify_all();
}

void recordFailure(Task& task, const Status& status) {
  uint8_t expected = COMPLETED;
  task.failure.compare_exchange_strong(expected, stateFor(status), std::memory_order_acq_rel);
  Batch* b = task.batch;
  std::lock_guard lock(b->mu);
  if (b->first_error.empty()) {
    b->first_error = status.ToString();
    if (task.canceled.load(std::memory_order_relaxed))  // asked for: no warning
      FERRY_LOG(INFO) << "batch " << b->id << ": canceled: " << b->first_error;
    else
      FERRY_LOG(WARN) << "batch " << b->id << ": transfer failed: " << b->first_error;
  }
}

}  // namespace

void completeSlice(Slice* slice, const Status& status) {
  if (status.ok()) return completeSlicesOk(&slice, 1);
  Task& task = *slice->task;
  if (!slice->checksum_mismatch && task.route && task.route->failover(slice, status)) return;
  if (slice->checksum_mismatch)
    if (auto* n = task.batch->checksum_mismatches) n->fetch_add(1, std::memory_order_relaxed);
  countFailure(*task.batch, status);
  recordFailure(task, status);
  if (task.slices_left.fetch_sub(1, std::memory_order_acq_rel) == 1) settleTask(task);
}

void completeSlicesOk(Slice* const* slices, size_t count) {
  Task& task = *slices[0]->task;
  uint64_t bytes = 0;
  for (size_t i = 0; i < count; ++i) bytes += slices[i]->length;
  task.transferred.fetch_add(bytes, std::memory_order_relaxed);
  if (TransferCounters* c = task.batch->counters) countMoved(*c, slices, count);
  const auto n = static_cast<uint32_t>(count);
  if (task.slices_left.fetch_sub(n, std::memory_order_acq_rel) == n) settleTask(task);
}

void failTask(Task& task, const Status& status) {
  countFailure(*task.batch, status);
  recordFailure(task, status);
  task.slices_left.store(0, std::memory_order_relaxed);
  settleTask(task);
}

TransferStatus overallStatus(Batch& b) {
  TransferStatus out;
  size_t n = b.size.load(std::memory_order_acquire);
  if (n == 0) return out;  // INITIAL
  bool pending = false;
  TransferStatusEnum worst = COMPLETED;
  for (size_t i = 0; i < n; ++i) {
    Task& t = b.tasks[i];
    auto s = static_cast<TransferStatusEnum>(t.state.load(std::memory_order_acquire));
    out.transferred_bytes += t.transferred.load(std::memory_order_relaxed);
    if (s == PENDING || s == INITIAL)
      pending = true;
    else if (s != COMPLETED && worst == COMPLETED)
      worst = s;
  }
  out.s = worst != COMPLETED ? worst : (pending ? PENDING : COMPLETED);
  return out;
}

const char* ToString(TransferStatusEnum s) {
  switch (s) {
    case INITIAL: return "INITIAL";
    case PENDING: return "PENDING";
    case INVALID: return "INVALID";
    case CANCELED: return "CANCELED";
    case COMPLETED: return "COMPLETED";
    case TIMEOUT: return "TIMEOUT";
    case FAILED: return "FAILED";
  }
  return "?";
}

}  // namespace ferry
