// What the engine counts about the slices and tasks it moves, for /metrics: plain relaxed
// atomics in fixed arrays (indexed by transport, operation, state, status code), updated by
// whoever completes a slice; read and labelled by core's Metrics when scraped. Present only
// while metrics are on (a batch's pointer is null otherwise: nothing is paid).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry {

/// Latencies in fixed buckets (upper bounds in ns, then +Inf).
struct LatencyHistogram {
  static constexpr std::array<int64_t, 18> kBoundsNs = {
      10'000,      25'000,      50'000,      100'000,     250'000,       500'000,
      1'000'000,   2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,
      100'000'000, 250'000'000, 500'000'000, 1000'000'000, 2500'000'000, 10000'000'000};
  std::array<std::atomic<uint64_t>, kBoundsNs.size() + 1> buckets{};  // not cumulative
  std::atomic<uint64_t> sum_ns{0};

  void observe(int64_t ns) {
    if (ns < 0) ns = 0;
    size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
};

struct TransferCounters {
  static constexpr size_t kMaxTransports = 16;  // the selector's transports, by index
  static constexpr size_t kOps = 2;             // Request::READ, Request::WRITE
  static constexpr size_t kStates = 7;          // TransferStatusEnum
  static constexpr size_t kCodes = static_cast<size_t>(Status::Code::kInternalError) + 1;
  /// Task sizes: up to 4 KiB, 64 KiB, 1 MiB, 16 MiB, and larger.
  static constexpr std::array<uint64_t, 4> kSizeClassBounds = {4u << 10, 64u << 10, 1u << 20, 16u << 20};
  static constexpr size_t kSizeClasses = kSizeClassBounds.size() + 1;
  enum Stage : size_t { kQueued = 0, kOnTheWire = 1, kAwaitingAck = 2, kStages = 3 };
  /// Why a slice went over another transport than the first candidate.
  enum Downgrade : size_t { kFailedOver = 0, kRefusedAtSubmit = 1, kUnusableHere = 2, kDowngradeKinds = 3 };

  static size_t sizeClass(uint64_t bytes) {
    size_t c = 0;
    while (c < kSizeClassBounds.size() && bytes > kSizeClassBounds[c]) ++c;
    return c;
  }
  static size_t opIndex(Request::OpCode op) { return op == Request::WRITE ? 1 : 0; }

  std::atomic<uint64_t> bytes[kMaxTransports][kOps]{};
  std::atomic<uint64_t> slices[kMaxTransports][kOps]{};
  std::atomic<uint64_t> tasks[kOps][kStates]{};
  std::atomic<uint64_t> failed_slices[kCodes]{};  // by the status they failed with
  std::atomic<uint64_t> downgrades[kDowngradeKinds][kMaxTransports][kMaxTransports]{};
  LatencyHistogram task_latency[kOps][kSizeClasses];
  LatencyHistogram stages[kStages];

  void countDowngrade(Downgrade why, size_t from, size_t to, uint64_t slices = 1) {
    if (from < kMaxTransports && to < kMaxTransports)
      downgrades[why][from][to].fetch_add(slices, std::memory_order_relaxed);
  }
};

}  // namespace ferry
