// This engine's memory: allocation (by the first transport that offers it for the location,
// e.g. shm's shared-memory files; else private pages for host memory, or the CUDA driver for
// "cuda:N"), registration in the registry with every transport's attributes, and the reverse.
// A registration's location is checked against what the CUDA driver says of the address (when
// there is one): "*" becomes "cuda:N" or "cpu:0", and a caller's location that disagrees is
// refused, so that no transport is ever handed device memory it would treat as host memory.
//
// Lock order: mu_ (allocations) is a leaf; the registry's lock is taken without it.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/cuda_driver.h"
#include "ferry/types.h"
#include "model/memory_registry.h"
#include "transport/transport.h"

namespace ferry {

class LocalMemory {
 public:
  /// `changed` runs after every registration change (the engine tells transports and peers).
  LocalMemory(MemoryRegistry& registry, cuda::Gpu& gpu, std::vector<Transport*> transports,
              std::function<void()> changed)
      : registry_(registry), gpu_(gpu), transports_(std::move(transports)), changed_(std::move(changed)) {}

  Status allocate(void** addr, size_t size, const MemoryOptions& options);
  Status free(void* addr);
  Status registerMemory(void* addr, size_t size, const MemoryOptions& options);
  Status unregisterMemory(void* addr, size_t size);
  /// Frees every allocation left (engine shutdown, after the transports stopped).
  void releaseAll();

 private:
  // Where [base, +size) is: `asked` checked against the driver ("*" resolved).
  Status locate(uint64_t base, uint64_t size, const Location& asked, Location& out);

  MemoryRegistry& registry_;
  cuda::Gpu& gpu_;
  const std::vector<Transport*> transports_;
  const std::function<void()> changed_;
  std::mutex mu_;  // guards allocations_; a leaf
  std::unordered_map<uintptr_t, std::unique_ptr<Allocation>> allocations_;
};

}  // namespace ferry
