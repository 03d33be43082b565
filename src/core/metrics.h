// Engine metrics: bytes moved (completed slices), counted only when metrics/enable is on,
// and a periodic log line (MC_TE_METRIC, MC_TE_METRIC_INTERVAL_SECONDS).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace ferry {

class Metrics {
 public:
  ~Metrics() { stop(); }
  /// Starts the log line every `interval` for segment `name`.
  void start(const std::string& name, std::chrono::seconds interval);
  /// Counts from now on (before start(), so the counter exists when batches are made).
  void enable() { enabled_ = true; }
  void stop();
  /// The counter completions add to (null when metrics are off: nothing is paid).
  std::atomic<uint64_t>* bytesMoved() { return enabled_ ? &bytes_moved_ : nullptr; }
  /// Slices whose bytes failed their end-to-end checksum: counted whether or not metrics
  /// are on (rare, and what an operator must see).
  std::atomic<uint64_t>* checksumMismatches() { return &checksum_mismatches_; }
  uint64_t checksumMismatchCount() const { return checksum_mismatches_.load(std::memory_order_relaxed); }

 private:
  void loop(std::string name, std::chrono::seconds interval);

  bool enabled_ = false;
  std::atomic<uint64_t> bytes_moved_{0};
  std::atomic<uint64_t> checksum_mismatches_{0};
  std::mutex mu_;  // a leaf: guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ferry
