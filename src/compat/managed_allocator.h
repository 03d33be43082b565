// Allocator over registered memory pools, behind the Python API's managed buffers.
// Best fit over free ranges kept by address and by size (O(log n) allocate and free),
// neighbours coalesced within a pool, a new pool when nothing fits, and pools beyond the
// first handed back once they are entirely free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "ferry/status.h"

namespace ferry {

class ManagedAllocator {
 public:
  /// Obtains a registered pool of `size` bytes / releases it.
  using PoolAlloc = std::function<Status(size_t size, void** base)>;
  using PoolFree = std::function<void(void* base, size_t size)>;

  ManagedAllocator(PoolAlloc alloc, PoolFree release, size_t pool_size = 64u << 20,
                   size_t granule = 256);
  ~ManagedAllocator();

  /// Rounds length up to the granule; the address is granule-aligned.
  Status allocate(size_t length, uint64_t& addr);
  /// `length` must be the length asked for at allocation (or its rounded size).
  Status free(uint64_t addr, size_t length);

  size_t poolCount() const;
  size_t bytesInUse() const;

 private:
  struct Pool {
    size_t size;
    size_t used = 0;
  };
  void insertFree(uint64_t addr, size_t size);
  void eraseFree(uint64_t addr, size_t size);
  // The pool holding addr (callers hold mu_).
  std::map<uint64_t, Pool>::iterator poolOf(uint64_t addr);

  PoolAlloc alloc_;
  PoolFree release_;
  const size_t pool_size_, granule_;
  // Guards the pools and free lists; a leaf: pools are allocated and released without it
  // (registration may wait for the metadata store).
  mutable std::mutex mu_;
  std::map<uint64_t, Pool> pools_;                         // by base
  std::map<uint64_t, size_t> free_by_addr_;                // free range start -> size
  std::set<std::pair<size_t, uint64_t>> free_by_size_;     // (size, start)
  std::map<uint64_t, std::pair<size_t, size_t>> live_;     // addr -> (rounded, asked)
  size_t in_use_ = 0;
};

}  // namespace ferry
