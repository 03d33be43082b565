// Registered memory of one engine: non-overlapping ranges in an ordered map, so an address
// lookup is O(log n). Remote accesses pin their region; unregistering waits for the pins to
// drain, so a peer's in-flight write never lands in memory the owner has taken back.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "ferry/status.h"
#include "model/buffer.h"

namespace ferry {

class MemoryRegistry {
 public:
  struct Region {
    BufferDesc desc;
    MemoryKind kind = kHostMemory;  // of desc.location
    uint64_t seq = 0;  // registration order
    std::atomic<int> pins{0};
  };

  /// Keeps a region alive and marked in use while a remote access touches it.
  class Pin {
   public:
    Pin() = default;
    explicit Pin(std::shared_ptr<Region> r) : region_(std::move(r)) {}
    Pin(Pin&&) noexcept = default;
    Pin& operator=(Pin&& o) noexcept {
      release();
      region_ = std::move(o.region_);
      return *this;
    }
    ~Pin() { release(); }
    const Region* region() const { return region_.get(); }

   private:
    void release() {
      if (region_) region_->pins.fetch_sub(1, std::memory_order_release);
      region_.reset();
    }
    std::shared_ptr<Region> region_;
  };

  /// AlreadyExists if [base, base+length) overlaps a registered range.
  Status add(const BufferDesc& desc);
  /// Removes the range starting at base (length 0 matches any length); waits for pins.
  Status remove(uint64_t base, uint64_t length, BufferDesc* removed = nullptr);
  /// OK when [addr, addr+length) lies inside one registered range (any permission); then
  /// fills the optional outputs with that range's location and memory kind.
  Status checkLocal(uint64_t addr, uint64_t length, Location* location = nullptr,
                    MemoryKind* kind = nullptr) const;
  /// Finds the region for a peer's access and checks its permission; pins it on success.
  Status pinForRemote(uint64_t addr, uint64_t length, bool write, Pin& out) const;

  /// True when [addr, addr+length) shares a byte with a registered range.
  bool overlaps(uint64_t addr, uint64_t length) const;

  /// Registered buffers in registration order, and (optional) the version they are at.
  std::vector<BufferDesc> snapshot(uint64_t* version = nullptr) const;
  /// Bumped on every add/remove; published in the segment descriptor.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  /// The counter itself, for the RPC server to stamp into responses without a call.
  const std::atomic<uint64_t>& versionCounter() const { return version_; }
  /// Bumps the version for a change outside the registry that peers must see too (the
  /// descriptor lists exposed files as well).
  void bumpVersion();
  size_t size() const;

 private:
  // Region containing addr, or nullptr. Caller holds mu_.
  std::shared_ptr<Region> findLocked(uint64_t addr) const;

  // A leaf lock: nothing else is taken under it. The version moves under it too, so a
  // snapshot and its version agree.
  mutable std::shared_mutex mu_;
  std::map<uint64_t, std::shared_ptr<Region>> regions_;  // by base
  std::atomic<uint64_t> version_{1};
  uint64_t next_seq_ = 0;  // guarded by mu_
};

}  // namespace ferry
