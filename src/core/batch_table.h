// The batches this engine handed out: allocate, free, find, status and waiting. A waiting
// thread first lends itself to the transports (progress) and spins briefly before it sleeps.
//
// Lock order: BatchTable::mu_ -> Batch::mu. mu_ is never held while waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ferry/types.h"
#include "model/slice.h"
#include "transport/transport.h"

namespace ferry {

class BatchTable {
 public:
  BatchTable(size_t max_batch_size, int wait_spin_us, int64_t transfer_timeout_ms,
             std::vector<Transport*> transports, TransferCounters* counters,
             std::atomic<uint64_t>* checksum_mismatches)
      : max_batch_size_(max_batch_size),
        wait_spin_us_(wait_spin_us),
        transfer_timeout_(transfer_timeout_ms),
        transports_(std::move(transports)),
        counters_(counters),
        checksum_mismatches_(checksum_mismatches) {}

  /// 0 on failure (size 0 or over batch/max_size), with a log line.
  BatchID allocate(size_t batch_size);
  /// Busy while a task is in flight (or its last completer is still settling).
  Status free(BatchID id);
  /// The batch, or InvalidArgument naming the id.
  Status find(BatchID id, std::shared_ptr<Batch>& out);
  /// The engine's transfer counters, or null while metrics are off.
  TransferCounters* counters() const { return counters_; }

  Status status(BatchID id, size_t task_id, TransferStatus& out);
  Status status(BatchID id, std::vector<TransferStatus>& out);
  Status status(BatchID id, TransferStatus& overall);
  Status wait(BatchID id, TransferStatus& overall, std::chrono::milliseconds timeout);
  /// Cancels the batch's tasks submitted so far (`task`: that one only) and waits until
  /// each has settled; see TransferEngine::cancelTransfer.
  Status cancel(BatchID id, const size_t* task);
  /// Drops every batch (engine shutdown: their routes hold endpoints).
  void clear();

 private:
  const size_t max_batch_size_;
  const int wait_spin_us_;
  // Every slice settles by its transfer deadline (its transport gives up then): a cancel
  // waits that long, and a little more for the giving up to run.
  const std::chrono::milliseconds transfer_timeout_;
  static constexpr uint64_t kSpinMaxBytes = 256 * 1024;  // batches this small spin before sleeping
  const std::vector<Transport*> transports_;
  TransferCounters* const counters_;  // the engine's, or null while metrics are off
  std::atomic<uint64_t>* const checksum_mismatches_;  // the engine's counter
  // Lends the calling thread to the transports (their queued work of this thread), then
  // spins when `small`, for waiters.
  void lendAndSpin(const std::function<bool()>& done, bool small);
  std::mutex mu_;  // guards batches_ and next_id_; a leaf, never held with a Batch::mu
  std::unordered_map<BatchID, std::shared_ptr<Batch>> batches_;
  BatchID next_id_ = 1;
};

}  // namespace ferry
