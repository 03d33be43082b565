#include "core/local_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ferry {

namespace {
// Host memory no transport asked to place: private anonymous pages.
class PrivatePages : public Allocation {
 public:
  ~PrivatePages() override {
    if (addr) ::munmap(addr, size);
  }
};

// Device memory from the CUDA driver (allocateLocalMemory "cuda:N").
class DeviceMemory : public Allocation {
 public:
  DeviceMemory(cuda::Gpu& gpu, int ordinal) : gpu_(gpu), ordinal_(ordinal) {}
  ~DeviceMemory() override {
    Status st = gpu_.free(ordinal_, reinterpret_cast<uint64_t>(addr));
    if (!st.ok()) FERRY_LOG(WARN) << "freeing cuda:" << ordinal_ << " memory: " << st.ToString();
  }

 private:
  cuda::Gpu& gpu_;
  const int ordinal_;
};

bool isAnyLocation(const Location& l) { return l.empty() || l == kWildcardLocation; }
}  // namespace

Status LocalMemory::locate(uint64_t base, uint64_t size, const Location& asked, Location& out) {
  const MemoryKind kind = memoryKindOf(asked);
  out = isAnyLocation(asked) ? Location("cpu:0") : asked;
  if (kind != kHostMemory && kind != kCudaMemory) return Status::OK();
  Status cuda = gpu_.available();
  if (!cuda.ok()) {
    if (kind == kCudaMemory) return Status::NotSupported("'" + asked + "' memory needs CUDA: " + cuda.message());
    return Status::OK();
  }
  const cuda::PointerInfo info = gpu_.pointerInfo(base);
  if (!info.device) {
    if (kind == kCudaMemory)
      return Status::InvalidArgument(rangeText(base, size) + " is not CUDA device memory (location '" + asked + "')");
    return Status::OK();
  }
  const Location found = "cuda:" + std::to_string(info.ordinal);
  if (base + size > info.range_start + info.range_size)
    return Status::InvalidArgument(rangeText(base, size) + " runs past the end of its " + found + " allocation " +
                                   rangeText(info.range_start, info.range_size));
  if (kind == kHostMemory && !isAnyLocation(asked))
    return Status::InvalidArgument(rangeText(base, size) + " is " + found + " device memory, not '" + asked + "'");
  if (kind == kCudaMemory && asked != "cuda" && asked != found)
    return Status::InvalidArgument(rangeText(base, size) + " is on " + found + ", not '" + asked + "'");
  out = found;
  return Status::OK();
}

Status LocalMemory::allocate(void** addr, size_t size, const MemoryOptions& options) {
  if (!addr) return Status::InvalidArgument("addr is null");
  if (size == 0) return Status::InvalidArgument("cannot allocate 0 bytes");
  MemoryOptions o = options;
  if (isAnyLocation(o.location)) o.location = "cpu:0";
  std::unique_ptr<Allocation> a;
  // A caller mapping its own shared-memory file (shm_path) asked for no transport's help.
  for (Transport* t : transports_) {
    if (!o.shm_path.empty()) break;
    Status st = t->allocate(size, o.location, a);
    if (st.ok()) break;
    a.reset();
    if (!st.IsNotSupported())
      FERRY_LOG(WARN) << t->name() << " could not allocate " << size << " bytes (" << st.ToString()
                      << "); trying the next way";
  }
  if (!a && memoryKindOf(o.location) == kCudaMemory) {
    const int ordinal = cuda::cudaOrdinalOf(o.location);
    if (ordinal < 0) return Status::InvalidArgument("'" + o.location + "': say which device, as cuda:N");
    if (Status st = gpu_.available(); !st.ok())
      return Status::NotSupported("cannot allocate '" + o.location + "' memory: " + st.message());
    uint64_t p = 0;
    FERRY_RETURN_IF_ERROR(gpu_.allocate(ordinal, size, p));
    a = std::make_unique<DeviceMemory>(gpu_, ordinal);
    a->addr = reinterpret_cast<void*>(p);
    a->size = size;
  }
  if (!a) {
    if (memoryKindOf(o.location) != kHostMemory)
      return Status::NotSupported("no transport of this engine allocates '" + o.location + "' memory");
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return Status::InternalError("cannot allocate " + std::to_string(size) + " bytes: " + strerror(errno));
    a = std::make_unique<PrivatePages>();
    a->addr = p;
    a->size = size;
  }
  FERRY_RETURN_IF_ERROR(registerMemory(a->addr, size, o));  // `a` frees it on failure
  *addr = a->addr;
  std::lock_guard lock(mu_);
  allocations_[reinterpret_cast<uintptr_t>(a->addr)] = std::move(a);
  return Status::OK();
}

Status LocalMemory::free(void* addr) {
  std::unique_ptr<Allocation> a;
  {
    std::lock_guard lock(mu_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(addr));
    if (it == allocations_.end())
      return Status::InvalidArgument("address was not returned by allocateLocalMemory");
    a = std::move(it->second);
    allocations_.erase(it);
  }
  return unregisterMemory(addr, a->size);  // then `a` frees it
}

Status LocalMemory::registerMemory(void* addr, size_t size, const MemoryOptions& options) {
  if (!addr) return Status::InvalidArgument("cannot register a null address");
  if (size == 0) return Status::InvalidArgument("cannot register 0 bytes");
  BufferDesc d;
  d.base = reinterpret_cast<uint64_t>(addr);
  d.length = size;
  FERRY_RETURN_IF_ERROR(locate(d.base, d.length, options.location, d.location));
  d.perm = options.perm;
  if (d.perm < kLocalReadWrite || d.perm > kGlobalReadWrite)
    return Status::InvalidArgument("unknown permission " + std::to_string(int(d.perm)));
  // An overlap is refused (by add, naming the other range) before any transport pins or
  // keys the range.
  if (registry_.overlaps(d.base, d.length)) return registry_.add(d);
  // Transports first, so the buffer is published with every attribute at once: a peer
  // that reads the descriptor in between never sees it half described.
  size_t done = 0;
  Status st;
  while (done < transports_.size()) {
    std::string attrs;
    st = transports_[done]->registerMemory(d, options, attrs);
    if (!st.ok()) break;
    if (!attrs.empty()) d.attrs[transports_[done]->name()] = std::move(attrs);
    ++done;
  }
  if (st.ok()) st = registry_.add(d);
  if (!st.ok()) {
    for (size_t j = 0; j < done; ++j) transports_[j]->unregisterMemory(d).IgnoreError();
    return st;
  }
  changed_();
  return Status::OK();
}

Status LocalMemory::unregisterMemory(void* addr, size_t size) {
  BufferDesc d;
  FERRY_RETURN_IF_ERROR(registry_.remove(reinterpret_cast<uint64_t>(addr), size, &d));
  for (Transport* t : transports_) t->unregisterMemory(d).IgnoreError();
  changed_();
  return Status::OK();
}

void LocalMemory::releaseAll() {
  std::unordered_map<uintptr_t, std::unique_ptr<Allocation>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(allocations_);
  }
}

}  // namespace ferry
