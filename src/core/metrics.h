// Engine metrics: the transfer counters slices update while metrics are on (config
// `metrics/enable`, or a `metrics/port` for /metrics), a periodic log line (MC_TE_METRIC,
// MC_TE_METRIC_INTERVAL_SECONDS), and the Prometheus families /metrics shows, labelled with
// the engine's name. Labels stay bounded: transports, operations, states, status codes and
// size classes, never addresses or segment names.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/transfer_counters.h"

namespace prometheus {
struct MetricFamily;
}

namespace ferry {

/// What the engine reports besides the transfer counters, read at each scrape.
struct EngineGauges {
  std::vector<std::string> transports;         // the selector's, by index
  std::vector<uint64_t> peer_states;           // per transport: endpoints, connections, mappings
  std::vector<uint64_t> connections;           // per transport: connections it holds open
  uint64_t open_segments = 0;
  uint64_t rpc_connections = 0;                // inbound, to our RPC server
  uint64_t notification_pending_bytes = 0;     // unread here plus queued to go out
  uint64_t notifications_received = 0, notifications_refused = 0;
  uint64_t notifications_sent = 0, notifications_failed = 0;
  uint64_t descriptor_refreshes = 0;
};

class Metrics {
 public:
  ~Metrics() { stop(); }
  /// Counts from now on (before batches are made, which take the counters' address).
  void enable();
  /// Starts the log line every `interval` for segment `name`.
  void start(const std::string& name, std::chrono::seconds interval);
  void stop();
  /// The counters completions update; null while metrics are off (nothing is paid).
  TransferCounters* counters() { return counters_.get(); }
  /// Slices whose bytes failed their end-to-end checksum: counted whether or not metrics
  /// are on (rare, and what an operator must see).
  std::atomic<uint64_t>* checksumMismatches() { return &checksum_mismatches_; }
  uint64_t checksumMismatchCount() const { return checksum_mismatches_.load(std::memory_order_relaxed); }
  /// Bytes moved in total (0 while off).
  uint64_t bytesMoved() const;

  /// Appends this engine's families, every series labelled engine=`engine`.
  void collect(const std::string& engine, const EngineGauges& gauges,
               std::vector<prometheus::MetricFamily>& out) const;

 private:
  void loop(std::string name, std::chrono::seconds interval);

  std::unique_ptr<TransferCounters> counters_;
  std::atomic<uint64_t> checksum_mismatches_{0};
  std::mutex mu_;  // a leaf: guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ferry
