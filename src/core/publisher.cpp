#include "core/publisher.h"

#include <algorithm>

#include "common/log.h"

namespace ferry {

Status Publisher::start() {
  SegmentDescriptor d = describe_();
  Status st = store_.put(key_, d.toJson());
  if (!st.ok())
    return Status(st.code(), "cannot publish segment '" + name_ + "' to " + store_.describe() + ": " + st.message());
  attempted_ = wanted_ = d.version;
  thread_ = std::thread([this] { loop(); });
  return Status::OK();
}

void Publisher::publish(uint64_t version) {
  std::unique_lock lock(mu_);
  if (!thread_.joinable() || stopping_) return;
  wanted_ = std::max(wanted_, version);
  cv_.notify_all();
  cv_.wait(lock, [&] { return attempted_ >= version || stopping_; });
}

void Publisher::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  thread_.join();
  Status st = store_.remove(key_);
  if (!st.ok()) FERRY_LOG(WARN) << "could not remove segment '" << name_ << "': " << st.ToString();
}

void Publisher::loop() {
  using Clock = std::chrono::steady_clock;
  const auto keepalive_every = std::chrono::milliseconds(store_.keepAliveIntervalMs());
  auto next_keepalive = Clock::now() + keepalive_every;
  auto backoff = std::chrono::milliseconds(100);
  auto retry_at = Clock::time_point::max();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto wake = std::min(retry_ ? retry_at : Clock::time_point::max(),
                         keepalive_every.count() > 0 ? next_keepalive : Clock::time_point::max());
    cv_.wait_until(lock, wake, [&] { return stopping_ || wanted_ > attempted_; });
    if (stopping_) break;
    const auto now = Clock::now();
    bool keepalive = keepalive_every.count() > 0 && now >= next_keepalive;
    bool put = wanted_ > attempted_ || (retry_ && now >= retry_at);
    const uint64_t asked = wanted_;
    lock.unlock();
    if (keepalive) {
      next_keepalive = now + keepalive_every;
      Status st = store_.keepAlive();
      if (!st.ok()) {
        FERRY_LOG(WARN) << "keep-alive of segment '" << name_ << "' failed: " << st.ToString();
        put = true;  // a lost lease took the entry with it
      }
    }
    Status st;
    if (put) {
      // The snapshot is taken now, after `asked`: it is at least that new.
      st = store_.put(key_, describe_().toJson());
      if (st.ok() && retry_) FERRY_LOG(INFO) << "segment '" << name_ << "' published to " << store_.describe();
      if (!st.ok()) FERRY_LOG(WARN) << "publishing segment '" << name_ << "' failed (will retry): " << st.ToString();
    }
    lock.lock();
    if (put) {
      attempted_ = std::max(attempted_, asked);
      retry_ = !st.ok();
      backoff = st.ok() ? std::chrono::milliseconds(100) : std::min(backoff * 2, std::chrono::milliseconds(5000));
      retry_at = retry_ ? Clock::now() + backoff : Clock::time_point::max();
      cv_.notify_all();
    }
  }
}

}  // namespace ferry
