#include "bench_load.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ferry::tools {

void BackgroundLoad::start(TransferEngine& engine, const Options& options) {
  engine_ = &engine;
  thread_ = std::thread([this, &engine, options] { run(engine, options); });
}

void BackgroundLoad::run(TransferEngine& engine, Options o) {
  constexpr size_t kBlock = 1 << 20;
  std::vector<Request> reqs;
  for (size_t done = 0; done < o.batch_bytes; done += kBlock) {
    const size_t at = done % o.region;
    const size_t len = std::min({kBlock, o.batch_bytes - done, o.region - at});
    Request r{Request::WRITE, o.local + at, o.segment, o.remote + at, len, o.hint};
    r.priority = o.priority;
    reqs.push_back(r);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (!stopping_) {
    BatchID b = engine.allocateBatch(reqs.size());
    current_ = b;
    Status st = b ? engine.submitTransfer(b, reqs) : Status::InternalError("allocateBatch failed");
    TransferStatus ts;
    if (st.ok()) st = engine.waitTransfer(b, ts, std::chrono::seconds(120));
    current_ = 0;
    if (st.ok()) bytes_ += ts.transferred_bytes;  // a canceled batch counts what it moved
    if (st.ok() && ts.s != COMPLETED && !stopping_) st = Status::InternalError(std::string("bulk batch ended ") + ToString(ts.s));
    if (b) engine.freeBatch(b).IgnoreError();
    if (!st.ok()) {
      error_ = "background load: " + st.ToString();
      break;
    }
  }
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string BackgroundLoad::stop() {
  if (!thread_.joinable()) return error_;
  stopping_ = true;
  // A bulk batch may be a second of work: cancel it rather than wait for it. Batch ids are
  // never reused, so canceling one that just ended only gets an "unknown batch" answer.
  if (BatchID b = current_.load()) engine_->cancelTransfer(b).IgnoreError();
  thread_.join();
  return error_;
}

}  // namespace ferry::tools
