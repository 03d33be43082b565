#include "core/metrics.h"

#include <string>

#include "common/log.h"

namespace ferry {

void Metrics::start(const std::string& name, std::chrono::seconds interval) {
  enabled_ = true;
  thread_ = std::thread([this, name, interval] { loop(name, interval); });
}

void Metrics::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Metrics::loop(std::string name, std::chrono::seconds interval) {
  uint64_t last = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval, [&] { return stopping_; })) {
    uint64_t now = bytes_moved_.load(std::memory_order_relaxed);
    double mbps = static_cast<double>(now - last) / 1e6 / static_cast<double>(interval.count());
    const uint64_t mismatches = checksumMismatchCount();
    FERRY_LOG(INFO) << "metrics '" << name << "': " << mbps << " MB/s over the last " << interval.count()
                    << " s, " << now << " bytes in total"
                    << (mismatches ? ", " + std::to_string(mismatches) + " checksum mismatches" : std::string());
    last = now;
  }
}

}  // namespace ferry
