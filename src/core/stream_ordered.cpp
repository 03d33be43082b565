#include "core/stream_ordered.h"

#include <unistd.h>

#include <unordered_map>

#include "common/log.h"

namespace ferry {

namespace {

constexpr size_t kSlots = 4096;  // stream-ordered calls pending at once, per process

// The words streams wait on: one pinned, device-visible block for the process, made by the
// first engine that needs it and never freed (a stream may wait on it past any engine).
// Each slot's value only grows, so a wait for an old value stays satisfied when the slot is
// reused.
struct Flags {
  std::mutex mu;  // a leaf
  volatile uint32_t* words = nullptr;
  uint32_t last[kSlots] = {};
  std::vector<size_t> free;
};
Flags& flags() {
  static Flags* f = new Flags;
  return *f;
}

void releaseSlot(size_t slot, uint32_t value) {
  __atomic_store_n(&flags().words[slot], value, __ATOMIC_RELEASE);  // the stream goes on
  std::lock_guard lock(flags().mu);
  flags().free.push_back(slot);
}

}  // namespace

struct StreamOrdered::Call {
  uint64_t id = 0;
  std::weak_ptr<Core> owner;
  std::vector<Request> requests;
  std::vector<std::string> hints;  // the requests' transport_hint point here: the caller's are gone
  size_t slot = 0;
  uint32_t value = 0;
  BatchID batch = 0;
};

namespace {
// Calls whose host function has not run yet, by the id it is given.
struct Pending {
  std::mutex mu;  // a leaf
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::shared_ptr<StreamOrdered::Call>> calls;
};
Pending& pending() {
  static Pending* p = new Pending;
  return *p;
}
std::shared_ptr<StreamOrdered::Call> takePending(uint64_t id) {
  std::lock_guard lock(pending().mu);
  auto it = pending().calls.find(id);
  if (it == pending().calls.end()) return nullptr;
  auto call = std::move(it->second);
  pending().calls.erase(it);
  return call;
}
}  // namespace

struct StreamOrdered::Core {
  Core(Submitter& s, BatchTable& b, MemoryRegistry& r, cuda::Gpu& g, OnFailure f)
      : submitter(s), batches(b), registry(r), gpu(g), on_failure(f) {}

  // From the host function: false when we are stopping (the caller releases the stream).
  bool enqueue(std::shared_ptr<Call> call) {
    std::lock_guard lock(mu);
    if (stopping) return false;
    ready.push_back(std::move(call));
    cv.notify_all();
    return true;
  }

  void submitLoop() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !ready.empty(); });
      if (ready.empty()) break;
      auto call = std::move(ready.front());
      ready.pop_front();
      lock.unlock();
      call->batch = batches.allocate(call->requests.size());
      Status st = call->batch ? submitter.submit(call->batch, call->requests, nullptr)
                              : Status::InternalError("no batch for a stream-ordered transfer");
      lock.lock();
      if (st.ok()) {
        inflight.push_back(std::move(call));
        cv.notify_all();
      } else {
        lock.unlock();
        finish(*call, st);
        lock.lock();
      }
    }
    submit_done = true;
    cv.notify_all();
  }

  void completeLoop() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return submit_done || !inflight.empty(); });
      if (inflight.empty()) break;
      auto call = std::move(inflight.front());
      inflight.pop_front();
      lock.unlock();
      TransferStatus ts;
      // Every task ends by its deadline (transfer_timeout_ms): this wait is bounded by it.
      Status st = batches.wait(call->batch, ts, std::chrono::hours(24));
      if (st.ok() && ts.s != COMPLETED)
        st = Status::InternalError("batch ended " + std::string(ts.s == TIMEOUT ? "TIMEOUT" : ts.s == CANCELED ? "CANCELED" : "FAILED"));
      finish(*call, st);
      lock.lock();
    }
  }

  void finish(Call& call, const Status& st) {
    if (call.batch) batches.free(call.batch).IgnoreError();
    if (!st.ok()) {
      bool stopping_now;
      {
        std::lock_guard lock(mu);
        stopping_now = stopping;
        if (last_error.ok()) last_error = st;
      }
      FERRY_LOG(ERROR) << "a stream-ordered transfer of " << call.requests.size()
                       << " request(s) failed after it was scheduled: " << st.ToString();
      if (on_failure == OnFailure::kExit && !stopping_now) {
        FERRY_LOG(ERROR) << "exiting: the stream cannot be told (cuda/stream_error=exit; 'release' lets it go on)";
        ::_exit(1);
      }
    }
    releaseSlot(call.slot, call.value);
  }

  Submitter& submitter;
  BatchTable& batches;
  MemoryRegistry& registry;
  cuda::Gpu& gpu;
  const OnFailure on_failure;
  std::mutex mu;  // guards what follows; a leaf
  std::condition_variable cv;
  std::deque<std::shared_ptr<Call>> ready, inflight;
  bool started = false, stopping = false, submit_done = false;
  Status last_error;
  std::thread submit_thread, complete_thread;
};

namespace {
// Run by the driver when the stream reaches the call. No CUDA call, no waiting.
void onStreamReached(void* user) {
  auto call = takePending(reinterpret_cast<uintptr_t>(user));
  if (!call) return;  // abandoned when it was scheduled
  if (auto core = call->owner.lock(); core && core->enqueue(call)) return;
  releaseSlot(call->slot, call->value);  // the engine is gone or going: let the stream go
}
}  // namespace

StreamOrdered::StreamOrdered(Submitter& submitter, BatchTable& batches, MemoryRegistry& registry, cuda::Gpu& gpu,
                             OnFailure on_failure)
    : core_(std::make_shared<Core>(submitter, batches, registry, gpu, on_failure)) {}

StreamOrdered::~StreamOrdered() {
  {
    std::lock_guard lock(core_->mu);
    core_->stopping = true;
    core_->cv.notify_all();
  }
  if (core_->submit_thread.joinable()) core_->submit_thread.join();
  if (core_->complete_thread.joinable()) core_->complete_thread.join();
}

Status StreamOrdered::lastError() {
  std::lock_guard lock(core_->mu);
  return core_->last_error;
}

Status StreamOrdered::submit(const std::vector<Request>& requests, void* stream) {
  if (requests.empty()) return Status::OK();
  cuda::Gpu& gpu = core_->gpu;
  if (Status st = gpu.available(); !st.ok()) return Status::NotSupported("stream-ordered transfers need CUDA: " + st.message());
  FERRY_RETURN_IF_ERROR(core_->submitter.check(requests));
  // The context to act in: the first GPU buffer's device (stream 0 is that context's).
  int ordinal = 0;
  for (const Request& r : requests) {
    Location where;
    MemoryKind kind = kHostMemory;
    if (core_->registry.checkLocal(reinterpret_cast<uint64_t>(r.source), r.length, &where, &kind).ok() &&
        kind == kCudaMemory) {
      ordinal = cuda::cudaOrdinalOf(where);
      break;
    }
  }
  {
    std::lock_guard lock(core_->mu);
    if (core_->stopping) return Status::Canceled("the engine is stopping");
    if (!core_->started) {
      core_->started = true;
      core_->submit_thread = std::thread([c = core_.get()] { c->submitLoop(); });
      core_->complete_thread = std::thread([c = core_.get()] { c->completeLoop(); });
    }
  }
  const cuda::DriverApi& api = gpu.api();
  return gpu.inContext(ordinal, [&]() -> Status {
    int capturing = 0;
    FERRY_RETURN_IF_ERROR(cuda::fromResult(api, api.stream_is_capturing(stream, &capturing), "cuStreamIsCapturing"));
    if (capturing)
      return Status::NotSupported(
          "a stream-ordered transfer cannot be captured into a CUDA graph: its state is gone after it runs once");
    auto call = std::make_shared<Call>();
    call->owner = core_;
    call->requests = requests;
    call->hints.reserve(requests.size());
    for (Request& r : call->requests) {
      call->hints.emplace_back(r.transport_hint ? r.transport_hint : "");
      r.transport_hint = r.transport_hint ? call->hints.back().c_str() : nullptr;
    }
    {
      Flags& f = flags();
      std::lock_guard lock(f.mu);
      if (!f.words) {
        void* block = nullptr;
        FERRY_RETURN_IF_ERROR(cuda::fromResult(api, api.host_alloc_mapped(kSlots * sizeof(uint32_t), &block),
                                               "cuMemHostAlloc"));
        f.words = static_cast<volatile uint32_t*>(block);
        for (size_t i = kSlots; i > 0; --i) f.free.push_back(i - 1);
      }
      if (f.free.empty())
        return Status::Busy(std::to_string(kSlots) + " stream-ordered transfers are pending in this process");
      call->slot = f.free.back();
      f.free.pop_back();
      call->value = ++f.last[call->slot];
    }
    uint64_t word = 0;
    int r = api.host_device_address(const_cast<uint32_t*>(&flags().words[call->slot]), &word);
    {
      std::lock_guard lock(pending().mu);
      call->id = pending().next_id++;
      pending().calls[call->id] = call;
    }
    const uint64_t id = call->id;
    if (r == 0) r = api.launch_host_func(stream, &onStreamReached, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
    if (r == 0) r = api.stream_wait_value32(stream, word, call->value);
    if (r != 0) {
      // Nothing was ordered: the host function, if queued, finds no call and does nothing.
      if (takePending(id)) releaseSlot(call->slot, call->value);
      return cuda::fromResult(api, r, "ordering a transfer on the stream");
    }
    return Status::OK();
  });
}

}  // namespace ferry
