// POSIX shared-memory files (/dev/shm) that back memory a same-machine peer can map.
// Names are "/ferry.<pid>.<n>" so that files a crashed process left behind can be told
// apart and removed by the next engine that starts (sweepStaleShmFiles).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ferry/status.h"

namespace ferry::shm {

/// Value an engine leaves in its control page when it shuts down.
constexpr uint64_t kEngineGone = UINT64_MAX;

/// Creates a new file of `size` bytes and maps it shared, read-write. `name` is what a peer
/// passes to Mapping::open.
Status create(size_t size, std::string& name, void** addr);
/// Unmaps [addr, addr+size) and removes the name (peers' mappings stay valid).
void destroy(const std::string& name, void* addr, size_t size);
/// Removes /dev/shm/ferry.<pid>.* files whose process is gone. Returns how many.
int sweepStaleShmFiles();

/// A peer's shared-memory file mapped into this process.
class Mapping {
 public:
  Mapping() = default;
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// Maps the whole file; read-only unless `writable`.
  Status open(const std::string& name, bool writable);
  uint8_t* base() const { return static_cast<uint8_t*>(base_); }
  size_t size() const { return size_; }
  bool writable() const { return writable_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
};

}  // namespace ferry::shm
