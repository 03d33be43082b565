#include "compat/managed_allocator.h"

#include <algorithm>

namespace ferry {

ManagedAllocator::ManagedAllocator(PoolAlloc alloc, PoolFree release, size_t pool_size,
                                   size_t granule)
    : alloc_(std::move(alloc)), release_(std::move(release)), pool_size_(pool_size),
      granule_(granule) {}

ManagedAllocator::~ManagedAllocator() {
  for (auto& [base, p] : pools_) release_(reinterpret_cast<void*>(base), p.size);
}

void ManagedAllocator::insertFree(uint64_t addr, size_t size) {
  free_by_addr_[addr] = size;
  free_by_size_.insert({size, addr});
}

void ManagedAllocator::eraseFree(uint64_t addr, size_t size) {
  free_by_addr_.erase(addr);
  free_by_size_.erase({size, addr});
}

std::map<uint64_t, ManagedAllocator::Pool>::iterator ManagedAllocator::poolOf(uint64_t addr) {
  auto it = pools_.upper_bound(addr);
  if (it == pools_.begin()) return pools_.end();
  --it;
  return addr - it->first < it->second.size ? it : pools_.end();
}

Status ManagedAllocator::allocate(size_t length, uint64_t& addr) {
  if (length == 0) return Status::InvalidArgument("cannot allocate 0 bytes");
  if (length > (size_t(1) << 46)) return Status::InvalidArgument("allocation too large");
  size_t rounded = (length + granule_ - 1) / granule_ * granule_;
  std::unique_lock lock(mu_);
  auto fit = free_by_size_.lower_bound({rounded, 0});
  while (fit == free_by_size_.end()) {
    // Grow: a new pool, large enough for this request (2 MiB multiples). Allocated without
    // the lock: registering it may wait for the metadata store.
    size_t size = std::max(pool_size_, (rounded + (2u << 20) - 1) / (2u << 20) * (2u << 20));
    lock.unlock();
    void* base = nullptr;
    FERRY_RETURN_IF_ERROR(alloc_(size, &base));
    lock.lock();
    pools_[reinterpret_cast<uint64_t>(base)] = Pool{size};
    insertFree(reinterpret_cast<uint64_t>(base), size);
    fit = free_by_size_.lower_bound({rounded, 0});
  }
  auto [size, start] = *fit;
  eraseFree(start, size);
  if (size > rounded) insertFree(start + rounded, size - rounded);
  live_[start] = {rounded, length};
  poolOf(start)->second.used += rounded;
  in_use_ += rounded;
  addr = start;
  return Status::OK();
}

Status ManagedAllocator::free(uint64_t addr, size_t length) {
  std::unique_lock lock(mu_);
  auto it = live_.find(addr);
  if (it == live_.end())
    return Status::InvalidArgument("address was not returned by allocate_managed_buffer "
                                   "(or was already freed)");
  auto [rounded, asked] = it->second;
  if (length != asked && length != rounded)
    return Status::InvalidArgument("length " + std::to_string(length) +
                                   " does not match the allocation (" + std::to_string(asked) +
                                   " bytes)");
  live_.erase(it);
  in_use_ -= rounded;
  auto pool = poolOf(addr);
  pool->second.used -= rounded;
  uint64_t start = addr;
  size_t size = rounded;
  // Coalesce with free neighbours inside the same pool.
  auto next = free_by_addr_.find(start + size);
  if (next != free_by_addr_.end() && poolOf(next->first) == pool) {
    size_t n = next->second;
    eraseFree(next->first, n);
    size += n;
  }
  auto prev = free_by_addr_.lower_bound(start);
  if (prev != free_by_addr_.begin()) {
    --prev;
    if (prev->first + prev->second == start && poolOf(prev->first) == pool) {
      uint64_t p = prev->first;
      size_t n = prev->second;
      eraseFree(p, n);
      start = p;
      size += n;
    }
  }
  if (pool->second.used == 0 && pools_.size() > 1) {
    // Entirely free and not the only pool: give it back (unlocked, as allocate grows).
    auto [base, p] = *pool;
    pools_.erase(pool);
    lock.unlock();
    release_(reinterpret_cast<void*>(base), p.size);
    return Status::OK();
  }
  insertFree(start, size);
  return Status::OK();
}

size_t ManagedAllocator::poolCount() const {
  std::lock_guard lock(mu_);
  return pools_.size();
}

size_t ManagedAllocator::bytesInUse() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

}  // namespace ferry
