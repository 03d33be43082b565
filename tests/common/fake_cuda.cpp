#include "fake_cuda.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "common/cuda_driver.h"

namespace ferry::test {
namespace {

// The CUresult values the fake returns (cuda.h's numbers).
constexpr int kSuccess = 0, kInvalidValue = 1, kNotInitialized = 3, kInvalidDevice = 101,
              kInvalidContext = 201, kInvalidHandle = 400, kIllegalAddress = 700, kHostAlreadyRegistered = 712;

struct Allocation {
  uint64_t size = 0;
  int ordinal = 0;
  uint64_t buffer_id = 0;
  uint8_t* shadow = nullptr;  // where the bytes are
  std::string name;           // the backing file ("" once unlinked)
  bool imported = false;      // opened from another process's handle
  int exporter_pid = 0;
  uint64_t exporter_buffer_id = 0;
};

struct EventState {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t recorded = 0, completed = 0;
  int error = kSuccess;
};

struct StreamState {
  struct Op {
    uint64_t dst = 0, src = 0, n = 0;
    EventState* event = nullptr;  // a record marker instead of a copy
    uint64_t seq = 0;
    void (*host_fn)(void*) = nullptr;  // a host function instead
    void* user = nullptr;
    const volatile uint32_t* wait_word = nullptr;  // a wait until *wait_word >= wait_value instead
    uint32_t wait_value = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Op> ops;
  bool stop = false;
  int error = kSuccess;  // sticky: the first fault of the stream
  std::thread worker;
};

struct State {
  std::mutex mu;  // allocations, counters
  std::map<uint64_t, Allocation> device;  // by base address: own and imported
  std::atomic<int> devices{2};
  std::atomic<int> delay_us{0};
  std::atomic<int> close_delay_us{0};  // ipc_close holds the mapping this long before it goes
  std::atomic<int64_t> refuse_copy_in{-1};  // copy_async calls until one is refused (-1: none)
  uint64_t next_buffer_id = 1;
  int next_name = 0;
  // Part of every backing file's name: a process that dies without freeing (a death test's
  // child, a killed peer) leaves its files, and a later process may get its pid.
  uint64_t name_nonce = std::random_device{}() * 0x9e3779b97f4a7c15ull ^ std::random_device{}();
  std::set<int> retained;
  std::map<uint64_t, size_t> pinned;  // host_register'ed ranges
  FakeCudaStats stats;
  std::atomic<uint64_t> async_copies{0};
  std::atomic<bool> capturing{false};
  void* default_stream = nullptr;  // stream 0 (the legacy default stream), made on first use
};
State& S() {
  static State* s = new State;  // never destroyed: stream threads may outlive static teardown
  return *s;
}
int device_tags[16];
thread_local std::vector<cuda::Context> ctx_stack;

int currentOrdinal() {
  if (ctx_stack.empty()) return -1;
  return static_cast<int>(static_cast<int*>(ctx_stack.back()) - device_tags);
}

uint64_t pageRound(uint64_t n) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// The bytes behind [address, +n): device memory's shadow, or the host address itself.
int translate(uint64_t address, uint64_t n, uint8_t** out) {
  std::lock_guard lock(S().mu);
  auto it = S().device.upper_bound(address);
  if (it != S().device.begin()) {
    --it;
    if (address >= it->first && address < it->first + it->second.size) {
      if (n > it->first + it->second.size - address) return kInvalidValue;
      *out = it->second.shadow + (address - it->first);
      return kSuccess;
    }
  }
  auto next = S().device.upper_bound(address);
  if (next != S().device.end() && address + n > next->first) return kInvalidValue;  // runs into device memory
  *out = reinterpret_cast<uint8_t*>(address);
  return kSuccess;
}

int copyNow(uint64_t dst, uint64_t src, uint64_t n) {
  uint8_t *d = nullptr, *s = nullptr;
  if (int r = translate(dst, n, &d)) return r;
  if (int r = translate(src, n, &s)) return r;
  std::memmove(d, s, n);
  return kSuccess;
}

// Reserves an inaccessible range for device addresses and maps the backing file elsewhere.
int mapAllocation(int fd, uint64_t size, Allocation& a, uint64_t& base) {
  const uint64_t span = pageRound(size);
  void* reserve = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) return kInvalidValue;
  void* shadow = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shadow == MAP_FAILED) {
    ::munmap(reserve, span);
    return kInvalidValue;
  }
  a.size = size;
  a.shadow = static_cast<uint8_t*>(shadow);
  base = reinterpret_cast<uint64_t>(reserve);
  return kSuccess;
}

void unmapAllocation(uint64_t base, const Allocation& a) {
  const uint64_t span = pageRound(a.size);
  ::munmap(a.shadow, span);
  ::munmap(reinterpret_cast<void*>(base), span);
}

void streamLoop(StreamState* st) {
  std::mt19937 rng(std::random_device{}());
  std::unique_lock lock(st->mu);
  while (true) {
    st->cv.wait(lock, [&] { return st->stop || !st->ops.empty(); });
    if (st->ops.empty()) return;  // stopping, nothing left
    StreamState::Op op = st->ops.front();
    st->ops.pop_front();
    lock.unlock();
    if (op.host_fn) {
      op.host_fn(op.user);
    } else if (op.wait_word) {
      // A stream being destroyed stops waiting (the real one would be an error to destroy).
      while (static_cast<int32_t>(__atomic_load_n(op.wait_word, __ATOMIC_ACQUIRE) - op.wait_value) < 0) {
        {
          std::lock_guard stop_lock(st->mu);
          if (st->stop) break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    } else if (op.event) {
      std::lock_guard el(op.event->mu);
      op.event->completed = std::max(op.event->completed, op.seq);
      op.event->error = st->error;
      op.event->cv.notify_all();
    } else if (st->error == kSuccess) {
      if (int d = S().delay_us.load()) std::this_thread::sleep_for(std::chrono::microseconds(rng() % (d + 1)));
      if (copyNow(op.dst, op.src, op.n) != kSuccess) st->error = kIllegalAddress;
      S().async_copies.fetch_add(1);
    }
    lock.lock();
  }
}

// ---- the table ----

int fInit() { return kSuccess; }
int fDriverVersion(int* v) {
  *v = 13000;
  return kSuccess;
}
int fDeviceCount(int* n) {
  *n = S().devices.load();
  return kSuccess;
}
int fDeviceName(int i, char* out, int len) {
  if (i < 0 || i >= S().devices.load()) return kInvalidDevice;
  std::snprintf(out, static_cast<size_t>(len), "Fake GPU %d", i);
  return kSuccess;
}
int fDeviceUuid(int i, uint8_t out[16]) {
  if (i < 0 || i >= S().devices.load()) return kInvalidDevice;
  std::memset(out, 0xf0 + i, 16);
  return kSuccess;
}
int fPointerInfo(uint64_t p, cuda::PointerInfo* out) {
  *out = {};
  std::lock_guard lock(S().mu);
  auto it = S().device.upper_bound(p);
  if (it == S().device.begin()) return kSuccess;
  --it;
  if (p >= it->first + it->second.size) return kSuccess;
  *out = {true, it->second.ordinal, it->first, it->second.size, it->second.buffer_id, !it->second.imported};
  return kSuccess;
}
const char* fErrorName(int r) {
  switch (r) {
    case kSuccess: return "CUDA_SUCCESS";
    case kInvalidValue: return "CUDA_ERROR_INVALID_VALUE";
    case kNotInitialized: return "CUDA_ERROR_NOT_INITIALIZED";
    case kInvalidDevice: return "CUDA_ERROR_INVALID_DEVICE";
    case kInvalidContext: return "CUDA_ERROR_INVALID_CONTEXT";
    case cuda::kAlreadyMapped: return "CUDA_ERROR_ALREADY_MAPPED";
    case kInvalidHandle: return "CUDA_ERROR_INVALID_HANDLE";
    case cuda::kNotReady: return "CUDA_ERROR_NOT_READY";
    case kIllegalAddress: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    default: return "CUDA_ERROR_UNKNOWN";
  }
}
int fPrimaryRetain(int i, cuda::Context* out) {
  if (i < 0 || i >= S().devices.load()) return kInvalidDevice;
  std::lock_guard lock(S().mu);
  if (S().retained.insert(i).second) ++S().stats.contexts_retained;
  *out = &device_tags[i];
  return kSuccess;
}
int fPrimaryRelease(int i) { return i < 0 || i >= S().devices.load() ? kInvalidDevice : kSuccess; }
int fCtxPush(cuda::Context c) {
  if (!c) return kInvalidContext;
  ctx_stack.push_back(c);
  std::lock_guard lock(S().mu);
  ++S().stats.context_pushes;
  return kSuccess;
}
int fCtxPop() {
  if (ctx_stack.empty()) return kInvalidContext;
  ctx_stack.pop_back();
  return kSuccess;
}
int fCtxCurrent(cuda::Context* out) {
  *out = ctx_stack.empty() ? nullptr : ctx_stack.back();
  return kSuccess;
}
int fMemAlloc(uint64_t* out, size_t size) {
  const int ordinal = currentOrdinal();
  if (ordinal < 0) return kInvalidContext;
  if (size == 0) return kInvalidValue;
  char name[64];
  {
    std::lock_guard lock(S().mu);
    std::snprintf(name, sizeof name, "/ffc-%d-%016llx-%d", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(S().name_nonce), S().next_name++);
  }
  int fd = ::shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return kInvalidValue;
  Allocation a;
  uint64_t base = 0;
  int r = ::ftruncate(fd, static_cast<off_t>(pageRound(size))) == 0 ? mapAllocation(fd, size, a, base) : kInvalidValue;
  ::close(fd);
  if (r != kSuccess) {
    ::shm_unlink(name);
    return r;
  }
  a.ordinal = ordinal;
  a.name = name;
  std::lock_guard lock(S().mu);
  a.buffer_id = S().next_buffer_id++;
  S().device[base] = a;
  ++S().stats.live_allocations;
  *out = base;
  return kSuccess;
}
int fMemFree(uint64_t p) {
  if (currentOrdinal() < 0) return kInvalidContext;
  Allocation a;
  {
    std::lock_guard lock(S().mu);
    auto it = S().device.find(p);
    if (it == S().device.end() || it->second.imported) return kInvalidValue;
    a = it->second;
    S().device.erase(it);
    --S().stats.live_allocations;
  }
  ::shm_unlink(a.name.c_str());
  unmapAllocation(p, a);
  return kSuccess;
}
int fCopy(uint64_t dst, uint64_t src, size_t n) {
  if (currentOrdinal() < 0) return kInvalidContext;
  return copyNow(dst, src, n);
}
int fStreamCreate(cuda::Stream* out) {
  if (currentOrdinal() < 0) return kInvalidContext;
  auto* st = new StreamState;
  st->worker = std::thread(streamLoop, st);
  std::lock_guard lock(S().mu);
  ++S().stats.live_streams;
  *out = st;
  return kSuccess;
}
int fStreamDestroy(cuda::Stream s) {
  auto* st = static_cast<StreamState*>(s);
  {
    std::lock_guard lock(st->mu);
    st->stop = true;
    st->cv.notify_all();
  }
  st->worker.join();  // work already queued completes, as with the real call
  delete st;
  std::lock_guard lock(S().mu);
  --S().stats.live_streams;
  return kSuccess;
}
StreamState* streamOf(cuda::Stream s);

int fCopyAsync(uint64_t dst, uint64_t src, size_t n, cuda::Stream s) {
  if (currentOrdinal() < 0) return kInvalidContext;
  int64_t left = S().refuse_copy_in.load();
  while (left >= 0 && !S().refuse_copy_in.compare_exchange_weak(left, left - 1)) {
  }
  if (left == 0) return kInvalidValue;  // the injected refusal (setFakeCudaRefuseCopy)
  uint8_t* probe = nullptr;  // like the driver: ranges it can check are refused at once
  if (int r = translate(dst, n, &probe)) return r;
  if (int r = translate(src, n, &probe)) return r;
  auto* st = streamOf(s);
  std::lock_guard lock(st->mu);
  st->ops.push_back({dst, src, n, nullptr, 0});
  st->cv.notify_all();
  return kSuccess;
}
int fStreamSynchronize(cuda::Stream s) {
  EventState ev;
  {
    auto* st = streamOf(s);
    std::lock_guard lock(st->mu);
    ev.recorded = 1;
    st->ops.push_back({0, 0, 0, &ev, 1});
    st->cv.notify_all();
  }
  std::unique_lock el(ev.mu);
  ev.cv.wait(el, [&] { return ev.completed >= 1; });
  return ev.error;
}
int fEventCreate(cuda::Event* out) {
  if (currentOrdinal() < 0) return kInvalidContext;
  *out = new EventState;
  std::lock_guard lock(S().mu);
  ++S().stats.live_events;
  return kSuccess;
}
int fEventRecord(cuda::Event e, cuda::Stream s) {
  auto* ev = static_cast<EventState*>(e);
  auto* st = streamOf(s);
  uint64_t seq;
  {
    std::lock_guard el(ev->mu);
    seq = ++ev->recorded;
  }
  std::lock_guard lock(st->mu);
  st->ops.push_back({0, 0, 0, ev, seq});
  st->cv.notify_all();
  return kSuccess;
}
int fEventQuery(cuda::Event e) {
  auto* ev = static_cast<EventState*>(e);
  std::lock_guard el(ev->mu);
  if (ev->completed < ev->recorded) return cuda::kNotReady;
  return ev->error;
}
int fEventSynchronize(cuda::Event e) {
  auto* ev = static_cast<EventState*>(e);
  std::unique_lock el(ev->mu);
  ev->cv.wait(el, [&] { return ev->completed >= ev->recorded; });
  return ev->error;
}
int fEventDestroy(cuda::Event e) {
  delete static_cast<EventState*>(e);
  std::lock_guard lock(S().mu);
  --S().stats.live_events;
  return kSuccess;
}

StreamState* streamOf(cuda::Stream s) {
  if (s) return static_cast<StreamState*>(s);
  std::lock_guard lock(S().mu);
  if (!S().default_stream) {
    auto* st = new StreamState;  // lives as long as the process
    st->worker = std::thread(streamLoop, st);
    st->worker.detach();
    S().default_stream = st;
  }
  return static_cast<StreamState*>(S().default_stream);
}

int fLaunchHostFunc(cuda::Stream s, void (*fn)(void*), void* user) {
  if (currentOrdinal() < 0) return kInvalidContext;
  auto* st = streamOf(s);
  StreamState::Op op;
  op.host_fn = fn;
  op.user = user;
  std::lock_guard lock(st->mu);
  st->ops.push_back(op);
  st->cv.notify_all();
  return kSuccess;
}
int fWaitValue32(cuda::Stream s, uint64_t addr, uint32_t value) {
  if (currentOrdinal() < 0) return kInvalidContext;
  auto* st = streamOf(s);
  StreamState::Op op;
  op.wait_word = reinterpret_cast<const volatile uint32_t*>(addr);
  op.wait_value = value;
  std::lock_guard lock(st->mu);
  st->ops.push_back(op);
  st->cv.notify_all();
  return kSuccess;
}
int fIsCapturing(cuda::Stream, int* capturing) {
  *capturing = S().capturing.load();
  return kSuccess;
}
int fHostAllocMapped(size_t n, void** out) {
  if (currentOrdinal() < 0) return kInvalidContext;
  *out = std::aligned_alloc(4096, (n + 4095) / 4096 * 4096);
  if (*out) std::memset(*out, 0, n);
  return *out ? kSuccess : kInvalidValue;
}
int fHostDeviceAddress(void* host, uint64_t* out) {
  *out = reinterpret_cast<uint64_t>(host);  // the fake GPU sees host memory where it is
  return kSuccess;
}
int fHostFree(void* host) {
  std::free(host);
  return kSuccess;
}
int fHostRegister(void* host, size_t n) {
  if (currentOrdinal() < 0) return kInvalidContext;
  std::lock_guard lock(S().mu);
  if (!S().pinned.emplace(reinterpret_cast<uint64_t>(host), n).second) return kHostAlreadyRegistered;
  S().stats.live_pinned_bytes += n;
  return kSuccess;
}
int fHostUnregister(void* host) {
  if (currentOrdinal() < 0) return kInvalidContext;
  std::lock_guard lock(S().mu);
  auto it = S().pinned.find(reinterpret_cast<uint64_t>(host));
  if (it == S().pinned.end()) return kInvalidValue;
  S().stats.live_pinned_bytes -= it->second;
  S().pinned.erase(it);
  return kSuccess;
}

// The handle: magic, exporter pid, its buffer id, size, backing file name.
struct HandleBody {
  char magic[4];
  int32_t pid;
  uint64_t buffer_id;
  uint64_t size;
  char name[40];
};
static_assert(sizeof(HandleBody) <= cuda::kIpcHandleBytes);

int fIpcExport(uint64_t p, cuda::IpcHandle* out) {
  if (currentOrdinal() < 0) return kInvalidContext;
  std::lock_guard lock(S().mu);
  auto it = S().device.upper_bound(p);
  if (it == S().device.begin()) return kInvalidValue;
  --it;
  if (p >= it->first + it->second.size || it->second.imported) return kInvalidValue;
  HandleBody h{};
  std::memcpy(h.magic, "FFCI", 4);
  h.pid = static_cast<int32_t>(::getpid());
  h.buffer_id = it->second.buffer_id;
  h.size = it->second.size;
  std::snprintf(h.name, sizeof h.name, "%s", it->second.name.c_str());
  *out = {};
  std::memcpy(out->bytes, &h, sizeof h);
  return kSuccess;
}
int fIpcOpen(const cuda::IpcHandle& handle, uint64_t* out) {
  const int ordinal = currentOrdinal();
  if (ordinal < 0) return kInvalidContext;
  HandleBody h;
  std::memcpy(&h, handle.bytes, sizeof h);
  h.name[sizeof h.name - 1] = 0;
  if (std::memcmp(h.magic, "FFCI", 4) != 0) return kInvalidValue;
  if (h.pid == ::getpid()) return kInvalidContext;  // as the driver: not in the exporting process
  {
    std::lock_guard lock(S().mu);
    for (auto& [base, a] : S().device)
      if (a.imported && a.exporter_pid == h.pid && a.exporter_buffer_id == h.buffer_id) return cuda::kAlreadyMapped;
  }
  int fd = ::shm_open(h.name, O_RDWR, 0);
  if (fd < 0) return kInvalidHandle;  // freed by its owner
  struct stat sb;
  Allocation a;
  uint64_t base = 0;
  int r = ::fstat(fd, &sb) == 0 && static_cast<uint64_t>(sb.st_size) >= h.size ? mapAllocation(fd, h.size, a, base)
                                                                                : kInvalidHandle;
  ::close(fd);
  if (r != kSuccess) return r;
  a.ordinal = ordinal;
  a.imported = true;
  a.exporter_pid = h.pid;
  a.exporter_buffer_id = h.buffer_id;
  std::lock_guard lock(S().mu);
  a.buffer_id = S().next_buffer_id++;
  S().device[base] = a;
  ++S().stats.live_ipc_mappings;
  *out = base;
  return kSuccess;
}
int fIpcClose(uint64_t p) {
  if (currentOrdinal() < 0) return kInvalidContext;
  if (int d = S().close_delay_us.load()) std::this_thread::sleep_for(std::chrono::microseconds(d));
  Allocation a;
  {
    std::lock_guard lock(S().mu);
    auto it = S().device.find(p);
    if (it == S().device.end() || !it->second.imported) return kInvalidValue;
    a = it->second;
    S().device.erase(it);
    --S().stats.live_ipc_mappings;
  }
  unmapAllocation(p, a);
  return kSuccess;
}

cuda::DriverApi table() {
  cuda::DriverApi a;
  a.provider = "fake";
  a.init = fInit;
  a.driver_version = fDriverVersion;
  a.device_count = fDeviceCount;
  a.device_name = fDeviceName;
  a.device_uuid = fDeviceUuid;
  a.pointer_info = fPointerInfo;
  a.error_name = fErrorName;
  a.primary_ctx_retain = fPrimaryRetain;
  a.primary_ctx_release = fPrimaryRelease;
  a.ctx_push = fCtxPush;
  a.ctx_pop = fCtxPop;
  a.ctx_current = fCtxCurrent;
  a.mem_alloc = fMemAlloc;
  a.mem_free = fMemFree;
  a.copy = fCopy;
  a.stream_create = fStreamCreate;
  a.stream_destroy = fStreamDestroy;
  a.copy_async = fCopyAsync;
  a.stream_synchronize = fStreamSynchronize;
  a.event_create = fEventCreate;
  a.event_record = fEventRecord;
  a.event_query = fEventQuery;
  a.event_synchronize = fEventSynchronize;
  a.event_destroy = fEventDestroy;
  a.launch_host_func = fLaunchHostFunc;
  a.stream_wait_value32 = fWaitValue32;
  a.stream_is_capturing = fIsCapturing;
  a.host_alloc_mapped = fHostAllocMapped;
  a.host_device_address = fHostDeviceAddress;
  a.host_free = fHostFree;
  a.host_register = fHostRegister;
  a.host_unregister = fHostUnregister;
  a.ipc_export = fIpcExport;
  a.ipc_open = fIpcOpen;
  a.ipc_close = fIpcClose;
  return a;
}

}  // namespace

// Removes backing files of processes that are gone (see name_nonce).
void sweepDeadProcessFiles() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    int pid = 0;
    if (std::sscanf(name.c_str(), "ffc-%d-", &pid) != 1 || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) ::shm_unlink(("/" + name).c_str());
  }
}

void installFakeCuda(int devices) {
  static std::once_flag swept;
  std::call_once(swept, sweepDeadProcessFiles);
  S().devices = std::min(devices, 16);
  cuda::registerDriverProvider("fake", [](std::shared_ptr<const cuda::DriverApi>& out) {
    out = std::make_shared<cuda::DriverApi>(table());
    return Status::OK();
  });
}

FakeCudaStats fakeCudaStats() {
  std::lock_guard lock(S().mu);
  FakeCudaStats s = S().stats;
  s.async_copies = S().async_copies.load();
  return s;
}

void setFakeCudaCopyDelay(int max_us) { S().delay_us = max_us; }
void setFakeCudaCloseDelay(int us) { S().close_delay_us = us; }
void setFakeCudaRefuseCopy(int64_t after) { S().refuse_copy_in = after; }
void setFakeCudaCapturing(bool capturing) { S().capturing = capturing; }

uint64_t fakeCudaAlloc(int ordinal, size_t size) {
  ctx_stack.push_back(&device_tags[ordinal]);
  uint64_t p = 0;
  if (fMemAlloc(&p, size) != kSuccess) p = 0;
  ctx_stack.pop_back();
  return p;
}

cuda::IpcHandle fakeCudaForeignHandle(uint64_t address) {
  cuda::IpcHandle handle;
  ctx_stack.push_back(&device_tags[0]);
  const int r = fIpcExport(address, &handle);
  ctx_stack.pop_back();
  if (r != kSuccess) return {};
  HandleBody h;
  std::memcpy(&h, handle.bytes, sizeof h);
  h.pid = static_cast<int32_t>(::getppid());  // as if the parent process had exported it
  std::memcpy(handle.bytes, &h, sizeof h);
  return handle;
}

void fakeCudaFree(uint64_t address) {
  ctx_stack.push_back(&device_tags[0]);
  fMemFree(address);
  ctx_stack.pop_back();
}

void fakeCudaRead(uint64_t address, void* out, size_t n) {
  uint8_t* p = nullptr;
  if (translate(address, n, &p) == kSuccess) std::memcpy(out, p, n);
}

void fakeCudaWrite(uint64_t address, const void* in, size_t n) {
  uint8_t* p = nullptr;
  if (translate(address, n, &p) == kSuccess) std::memcpy(p, in, n);
}

}  // namespace ferry::test
