#include "core/batch_table.h"

#include "common/log.h"

namespace ferry {

namespace {
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

BatchID BatchTable::allocate(size_t batch_size) {
  if (batch_size == 0 || batch_size > max_batch_size_) {
    FERRY_LOG(WARN) << "allocateBatch(" << batch_size << ") refused: size must be 1.." << max_batch_size_
                    << " (batch/max_size)";
    return 0;
  }
  BatchID id;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
  }
  auto batch = std::make_shared<Batch>(id, batch_size);  // its tasks are allocated unlocked
  batch->counters = counters_;
  batch->checksum_mismatches = checksum_mismatches_;
  std::lock_guard lock(mu_);
  batches_[id] = std::move(batch);
  return id;
}

Status BatchTable::find(BatchID id, std::shared_ptr<Batch>& out) {
  std::lock_guard lock(mu_);
  auto it = batches_.find(id);
  if (it == batches_.end()) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  out = it->second;
  return Status::OK();
}

Status BatchTable::free(BatchID id) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  {
    std::unique_lock block(b->mu);
    size_t pending = b->pending.load(std::memory_order_acquire);
    if (pending > 0) {
      // Every task may already show its final state while the last completer is still
      // settling (state first, counter last); wait that out, refuse real work in flight.
      size_t n = b->size.load(std::memory_order_acquire);
      for (size_t i = 0; i < n; ++i) {
        auto s = b->tasks[i].state.load(std::memory_order_acquire);
        if (s == PENDING || s == INITIAL)
          return Status::Busy("batch " + std::to_string(id) + " still has " + std::to_string(pending) +
                              " task(s) in flight");
      }
      if (!b->cv.wait_for(block, std::chrono::seconds(1), [&] { return b->pending.load() == 0; }))
        return Status::Busy("batch " + std::to_string(id) + " is still settling");
    }
    b->freed = true;  // a submit racing with this free is refused, not run on a dead batch
  }
  std::shared_ptr<Batch> gone;  // released after the lock: its routes may hold endpoints
  std::lock_guard lock(mu_);
  auto it = batches_.find(id);
  if (it == batches_.end() || it->second != b)  // another thread freed it meanwhile
    return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  gone = std::move(it->second);
  batches_.erase(it);
  return Status::OK();
}

Status BatchTable::status(BatchID id, size_t task_id, TransferStatus& out) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  size_t n = b->size.load(std::memory_order_acquire);
  if (task_id >= n)
    return Status::InvalidArgument("task " + std::to_string(task_id) + " out of range: batch " +
                                   std::to_string(id) + " has " + std::to_string(n) + " task(s)");
  Task& t = b->tasks[task_id];
  out.s = static_cast<TransferStatusEnum>(t.state.load(std::memory_order_acquire));
  out.transferred_bytes = t.transferred.load(std::memory_order_relaxed);
  return Status::OK();
}

Status BatchTable::status(BatchID id, std::vector<TransferStatus>& out) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  size_t n = b->size.load(std::memory_order_acquire);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Task& t = b->tasks[i];
    out[i].s = static_cast<TransferStatusEnum>(t.state.load(std::memory_order_acquire));
    out[i].transferred_bytes = t.transferred.load(std::memory_order_relaxed);
  }
  return Status::OK();
}

Status BatchTable::status(BatchID id, TransferStatus& overall) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  overall = overallStatus(*b);
  return Status::OK();
}

Status BatchTable::wait(BatchID id, TransferStatus& overall, std::chrono::milliseconds timeout) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  // Lend this thread to the queued work it submitted (shm copies) before waiting: on a few
  // cores a sleeping waiter and busy workers lose to the waiter copying.
  const std::function<bool()> done = [&] { return b->pending.load(std::memory_order_acquire) == 0; };
  lendAndSpin(done, b->submitted_bytes.load(std::memory_order_relaxed) <= kSpinMaxBytes);
  {
    std::unique_lock lock(b->mu);
    if (!b->cv.wait_for(lock, timeout, done)) {
      overall = overallStatus(*b);
      return Status::Timeout("batch " + std::to_string(id) + " still pending after " +
                             std::to_string(timeout.count()) + " ms");
    }
  }
  overall = overallStatus(*b);
  return Status::OK();
}

void BatchTable::lendAndSpin(const std::function<bool()>& done, bool small) {
  for (Transport* t : transports_)
    if (!done()) t->progress(done);
  // A short spin first: a small transfer often completes within a round trip, and
  // sleeping would add a thread wake-up (~10 us here) to its latency. A large one outlasts
  // any spin, and the spinning core is one its copies need (-3 % of a 2-core machine's
  // cycles on 4 MiB batches): it sleeps at once.
  auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(small ? wait_spin_us_ : 0);
  while (!done() && std::chrono::steady_clock::now() < spin_until) cpuRelax();
}

Status BatchTable::cancel(BatchID id, const size_t* task) {
  std::shared_ptr<Batch> b;
  FERRY_RETURN_IF_ERROR(find(id, b));
  size_t first = 0, end = 0;
  {
    std::lock_guard lock(b->mu);  // submits reserve tasks under it: none is half made now
    end = b->size.load(std::memory_order_acquire);
    if (task) {
      if (*task >= end)
        return Status::InvalidArgument("task " + std::to_string(*task) + " out of range: batch " +
                                       std::to_string(id) + " has " + std::to_string(end) + " task(s)");
      first = *task;
      end = first + 1;
    }
    for (size_t i = first; i < end; ++i) b->tasks[i].canceled.store(true, std::memory_order_release);
  }
  // Transports drop canceled slices before they start them (admitSlice); what is already
  // moving finishes or fails by its deadline. Either way each settles: wait for that.
  const std::function<bool()> settled = [&] {
    for (size_t i = first; i < end; ++i) {
      auto s = b->tasks[i].state.load(std::memory_order_acquire);
      if (s == PENDING || s == INITIAL) return false;
    }
    return true;
  };
  lendAndSpin(settled, false);
  const auto limit = std::chrono::steady_clock::now() + transfer_timeout_ + std::chrono::seconds(5);
  {
    std::unique_lock lock(b->mu);
    // The batch's cv speaks only when all of it is done: a single task is polled.
    while (!settled()) {
      if (std::chrono::steady_clock::now() >= limit)
        return Status::Timeout("cancel of batch " + std::to_string(id) + ": tasks still in flight after " +
                               std::to_string(transfer_timeout_.count()) + " ms (transfer_timeout) and 5 s more");
      b->cv.wait_for(lock, std::chrono::milliseconds(1));
    }
  }
  if (uint32_t n = b->unfenced.load(std::memory_order_acquire))
    return Status::Unavailable("batch " + std::to_string(id) + " canceled, but " + std::to_string(n) +
                               " write slice(s) were cut off in flight on a lost connection: their bytes "
                               "may still land at the target");
  return Status::OK();
}

void BatchTable::clear() {
  std::unordered_map<BatchID, std::shared_ptr<Batch>> gone;
  std::lock_guard lock(mu_);
  gone.swap(batches_);
}

}  // namespace ferry
