#include "model/memory_registry.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

namespace ferry {

std::shared_ptr<MemoryRegistry::Region> MemoryRegistry::findLocked(uint64_t addr) const {
  auto it = regions_.upper_bound(addr);
  if (it == regions_.begin()) return nullptr;
  --it;
  const BufferDesc& d = it->second->desc;
  if (addr - d.base < d.length) return it->second;
  return nullptr;
}

Status MemoryRegistry::add(const BufferDesc& desc) {
  if (desc.length == 0) return Status::InvalidArgument("cannot register a zero-length range");
  if (desc.base == 0) return Status::InvalidArgument("cannot register a null address");
  if (desc.base + desc.length < desc.base)
    return Status::InvalidArgument("range " + rangeText(desc.base, desc.length) +
                                   " wraps around the address space");
  std::unique_lock lock(mu_);
  auto next = regions_.lower_bound(desc.base);
  if (next != regions_.end() && next->first < desc.base + desc.length)
    return Status::AlreadyExists("range " + rangeText(desc.base, desc.length) +
                                 " overlaps registered " +
                                 rangeText(next->first, next->second->desc.length));
  if (next != regions_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second->desc.length > desc.base)
      return Status::AlreadyExists("range " + rangeText(desc.base, desc.length) +
                                   " overlaps registered " +
                                   rangeText(prev->first, prev->second->desc.length));
  }
  auto r = std::make_shared<Region>();
  r->desc = desc;
  r->kind = memoryKindOf(desc.location);
  r->seq = next_seq_++;
  regions_.emplace(desc.base, std::move(r));
  version_.fetch_add(1, std::memory_order_acq_rel);
  return Status::OK();
}

Status MemoryRegistry::remove(uint64_t base, uint64_t length, BufferDesc* removed) {
  std::shared_ptr<Region> r;
  {
    std::unique_lock lock(mu_);
    auto it = regions_.find(base);
    if (it == regions_.end())
      return Status::NotFound("no registered range starts at " + rangeText(base, length));
    if (length != 0 && it->second->desc.length != length)
      return Status::InvalidArgument("range at " + rangeText(base, length) +
                                     " was registered with length " +
                                     std::to_string(it->second->desc.length));
    r = it->second;
    regions_.erase(it);
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
  // Remote accesses in progress finish (or time out on their socket) before we return.
  while (r->pins.load(std::memory_order_acquire) > 0)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (removed) *removed = r->desc;
  return Status::OK();
}

Status MemoryRegistry::checkLocal(uint64_t addr, uint64_t length, Location* location,
                                  MemoryKind* kind) const {
  std::shared_lock lock(mu_);
  auto r = findLocked(addr);
  if (!r) return Status::InvalidArgument("local address " + rangeText(addr, length) +
                                         " is not in registered memory");
  if (length > r->desc.length - (addr - r->desc.base))
    return Status::InvalidArgument("local range " + rangeText(addr, length) +
                                   " runs past the end of registered " +
                                   rangeText(r->desc.base, r->desc.length));
  if (location) *location = r->desc.location;
  if (kind) *kind = r->kind;
  return Status::OK();
}

Status MemoryRegistry::pinForRemote(uint64_t addr, uint64_t length, bool write,
                                    Pin& out) const {
  std::shared_lock lock(mu_);
  auto r = findLocked(addr);
  if (!r) return Status::OutOfRange("address " + rangeText(addr, length) +
                                    " is not in a registered buffer");
  const BufferDesc& d = r->desc;
  if (length > d.length - (addr - d.base))
    return Status::OutOfRange("range " + rangeText(addr, length) + " runs past the end of " +
                              rangeText(d.base, d.length));
  if (d.perm == kLocalReadWrite)
    return Status::PermissionDenied("buffer " + rangeText(d.base, d.length) +
                                    " is local-only (kLocalReadWrite)");
  if (write && d.perm != kGlobalReadWrite)
    return Status::PermissionDenied("buffer " + rangeText(d.base, d.length) +
                                    " is read-only for peers (kGlobalReadOnly)");
  r->pins.fetch_add(1, std::memory_order_acq_rel);
  out = Pin(std::move(r));
  return Status::OK();
}

bool MemoryRegistry::overlaps(uint64_t addr, uint64_t length) const {
  if (length == 0) return false;
  std::shared_lock lock(mu_);
  auto next = regions_.lower_bound(addr);
  if (next != regions_.end() && next->first - addr < length) return true;
  if (next == regions_.begin()) return false;
  auto prev = std::prev(next);
  return addr - prev->first < prev->second->desc.length;
}

void MemoryRegistry::bumpVersion() {
  std::unique_lock lock(mu_);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

std::vector<BufferDesc> MemoryRegistry::snapshot(uint64_t* version) const {
  std::shared_lock lock(mu_);
  if (version) *version = version_.load(std::memory_order_acquire);
  std::vector<const Region*> ordered;
  ordered.reserve(regions_.size());
  for (auto& [base, r] : regions_) ordered.push_back(r.get());
  std::sort(ordered.begin(), ordered.end(),
            [](const Region* a, const Region* b) { return a->seq < b->seq; });
  std::vector<BufferDesc> out;
  out.reserve(ordered.size());
  for (const Region* r : ordered) out.push_back(r->desc);
  return out;
}

size_t MemoryRegistry::size() const {
  std::shared_lock lock(mu_);
  return regions_.size();
}

}  // namespace ferry
