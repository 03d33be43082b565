// ferry-bench --background_bytes: bulk transfers that keep a peer's connections busy while
// the main loop measures, to show what priority classes buy (a latency-class request's p99
// behind bulk work of a lower class, vs. of its own class).
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "ferry/transfer_engine.h"

namespace ferry::tools {

class BackgroundLoad {
 public:
  struct Options {
    SegmentID segment = 0;
    uint8_t* local = nullptr;  // a region of the registered local buffer, `region` bytes
    uint64_t remote = 0;       // the same size at the target
    size_t region = 0;
    size_t batch_bytes = 0;  // each bulk batch: this many bytes in 1 MiB requests over the region
    int priority = PRIO_LOW;
    const char* hint = nullptr;
  };
  /// Starts submitting bulk WRITE batches, one after the other, until stop().
  void start(TransferEngine& engine, const Options& options);
  /// Cancels the batch in flight and joins; what it moved stays counted. "" or the first error.
  std::string stop();
  uint64_t bytes() const { return bytes_.load(); }
  double seconds() const { return seconds_; }

 private:
  void run(TransferEngine& engine, Options options);

  TransferEngine* engine_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<BatchID> current_{0};
  double seconds_ = 0;
  std::string error_;
};

}  // namespace ferry::tools
