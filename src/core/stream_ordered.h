// Transfers ordered on a CUDA stream (Python's *_on_cuda, ext::submitOnStream): the transfer
// starts after the work already queued on the stream, work queued on it later runs after the
// transfer's bytes are in place, and the call returns without waiting for either.
//
// How: the requests are checked on the calling thread (errors are the caller's, at once).
// Then two things go on the stream: a host function, which the driver runs when the stream
// reaches it and which only hands the call to our submit thread (it makes no CUDA call and
// never blocks: a host function that waits for a transfer whose staging copies need the
// driver can deadlock the stream, which is what Mooncake's does); and a wait until a word of
// pinned, device-visible memory reaches the call's value. Our completion thread writes that
// value once the batch is done, which releases the stream. Nothing of the call is freed while
// the stream can still reach it, so a stream captured into a CUDA graph would replay freed
// state: capture is refused.
//
// A transfer that fails after the call returned cannot be reported to its caller: by default
// the process exits (the contract of Mooncake's API, cuda/stream_error=exit); with
// cuda/stream_error=release the stream is released anyway and the error kept for lastError().
//
// Locks: mu_ (queues) is a leaf; the process-wide call registry's lock is taken alone.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/cuda_driver.h"
#include "core/batch_table.h"
#include "core/submitter.h"
#include "model/memory_registry.h"

namespace ferry {

class StreamOrdered {
 public:
  enum class OnFailure { kExit, kRelease };
  StreamOrdered(Submitter& submitter, BatchTable& batches, MemoryRegistry& registry, cuda::Gpu& gpu,
                OnFailure on_failure);
  /// Waits for the transfers already submitted; releases the streams of those that were not.
  ~StreamOrdered();

  /// Checks `requests`, then orders them on `stream` (a CUstream; null: the legacy default
  /// stream of the first GPU buffer's device). OK once both are queued on the stream.
  Status submit(const std::vector<Request>& requests, void* stream);
  /// The first failure of a transfer that ran (cuda/stream_error=release), or OK.
  Status lastError();

  struct Call;
  struct Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace ferry
