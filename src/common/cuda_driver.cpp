#include "common/cuda_driver.h"

#include "common/auth.h"
#include "common/named_providers.h"

#include <dlfcn.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#if FERRY_HAVE_CUDA_H
#include <cuda.h>
#endif

namespace ferry::cuda {

namespace {

#if FERRY_HAVE_CUDA_H
// Driver symbols, resolved once per library (the wrappers below use the loaded one).
struct Symbols {
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*driver_version)(int*) = nullptr;
  CUresult (*device_count)(int*) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*device_name)(char*, int, CUdevice) = nullptr;
  CUresult (*device_uuid)(CUuuid*, CUdevice) = nullptr;
  CUresult (*pointer_attributes)(unsigned int, CUpointer_attribute*, void**, CUdeviceptr) = nullptr;
  CUresult (*error_name)(CUresult, const char**) = nullptr;
  CUresult (*primary_retain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*primary_release)(CUdevice) = nullptr;
  CUresult (*ctx_push)(CUcontext) = nullptr;
  CUresult (*ctx_pop)(CUcontext*) = nullptr;
  CUresult (*ctx_current)(CUcontext*) = nullptr;
  CUresult (*mem_alloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*mem_free)(CUdeviceptr) = nullptr;
  CUresult (*copy)(CUdeviceptr, CUdeviceptr, size_t) = nullptr;
  CUresult (*stream_create)(CUstream*, unsigned int) = nullptr;
  CUresult (*stream_destroy)(CUstream) = nullptr;
  CUresult (*copy_async)(CUdeviceptr, CUdeviceptr, size_t, CUstream) = nullptr;
  CUresult (*stream_synchronize)(CUstream) = nullptr;
  CUresult (*event_create)(CUevent*, unsigned int) = nullptr;
  CUresult (*event_record)(CUevent, CUstream) = nullptr;
  CUresult (*event_query)(CUevent) = nullptr;
  CUresult (*event_synchronize)(CUevent) = nullptr;
  CUresult (*event_destroy)(CUevent) = nullptr;
  CUresult (*launch_host_func)(CUstream, CUhostFn, void*) = nullptr;
  CUresult (*wait_value32)(CUstream, CUdeviceptr, cuuint32_t, unsigned int) = nullptr;
  CUresult (*is_capturing)(CUstream, CUstreamCaptureStatus*) = nullptr;
  CUresult (*host_alloc)(void**, size_t, unsigned int) = nullptr;
  CUresult (*host_device_pointer)(CUdeviceptr*, void*, unsigned int) = nullptr;
  CUresult (*host_free)(void*) = nullptr;
  CUresult (*host_register)(void*, size_t, unsigned int) = nullptr;
  CUresult (*host_unregister)(void*) = nullptr;
  CUresult (*ipc_get)(CUipcMemHandle*, CUdeviceptr) = nullptr;
  CUresult (*ipc_open)(CUdeviceptr*, CUipcMemHandle, unsigned int) = nullptr;
  CUresult (*ipc_close)(CUdeviceptr) = nullptr;
};
// One library per process: the driver cannot be loaded twice meaningfully.
Symbols sym;

int sysInit() { return sym.init(0); }
int sysDriverVersion(int* v) { return sym.driver_version(v); }
int sysDeviceCount(int* n) { return sym.device_count(n); }
int sysDeviceName(int ordinal, char* out, int len) {
  CUdevice d;
  if (CUresult r = sym.device_get(&d, ordinal)) return r;
  return sym.device_name(out, len, d);
}
int sysDeviceUuid(int ordinal, uint8_t out[16]) {
  CUdevice d;
  if (CUresult r = sym.device_get(&d, ordinal)) return r;
  CUuuid u;
  if (CUresult r = sym.device_uuid(&u, d)) return r;
  std::memcpy(out, u.bytes, 16);
  return CUDA_SUCCESS;
}
// cuPointerGetAttributes (not cuPointerGetAttribute): for an address CUDA does not know it
// answers with empty attributes instead of an error, and it needs no context.
int sysPointerInfo(uint64_t address, PointerInfo* out) {
  unsigned int type = 0;
  int ordinal = -1;
  CUdeviceptr start = 0;
  size_t size = 0;
  unsigned long long buffer_id = 0;
  int legacy = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                 CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                                 CU_POINTER_ATTRIBUTE_BUFFER_ID, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE};
  void* data[] = {&type, &ordinal, &start, &size, &buffer_id, &legacy};
  if (CUresult r = sym.pointer_attributes(6, attrs, data, static_cast<CUdeviceptr>(address))) return r;
  *out = PointerInfo{};
  out->device = type == CU_MEMORYTYPE_DEVICE;
  if (out->device) {
    out->ordinal = ordinal;
    out->range_start = start;
    out->range_size = size;
    out->buffer_id = buffer_id;
    out->legacy_ipc = legacy != 0;
  }
  return CUDA_SUCCESS;
}
int sysPrimaryRetain(int ordinal, Context* out) {
  CUdevice d;
  if (CUresult r = sym.device_get(&d, ordinal)) return r;
  CUcontext c = nullptr;
  CUresult r = sym.primary_retain(&c, d);
  *out = c;
  return r;
}
int sysPrimaryRelease(int ordinal) {
  CUdevice d;
  if (CUresult r = sym.device_get(&d, ordinal)) return r;
  return sym.primary_release(d);
}
int sysCtxPush(Context c) { return sym.ctx_push(static_cast<CUcontext>(c)); }
int sysCtxPop() {
  CUcontext c;
  return sym.ctx_pop(&c);
}
int sysCtxCurrent(Context* out) {
  CUcontext c = nullptr;
  CUresult r = sym.ctx_current(&c);
  *out = c;
  return r;
}
int sysMemAlloc(uint64_t* out, size_t n) {
  CUdeviceptr p = 0;
  CUresult r = sym.mem_alloc(&p, n);
  *out = p;
  return r;
}
int sysMemFree(uint64_t p) { return sym.mem_free(p); }
int sysCopy(uint64_t dst, uint64_t src, size_t n) { return sym.copy(dst, src, n); }
int sysStreamCreate(Stream* out) {
  CUstream st = nullptr;
  CUresult r = sym.stream_create(&st, CU_STREAM_NON_BLOCKING);
  *out = st;
  return r;
}
int sysStreamDestroy(Stream st) { return sym.stream_destroy(static_cast<CUstream>(st)); }
int sysCopyAsync(uint64_t dst, uint64_t src, size_t n, Stream st) {
  return sym.copy_async(dst, src, n, static_cast<CUstream>(st));
}
int sysStreamSynchronize(Stream st) { return sym.stream_synchronize(static_cast<CUstream>(st)); }
int sysEventCreate(Event* out) {
  CUevent e = nullptr;
  CUresult r = sym.event_create(&e, CU_EVENT_DISABLE_TIMING);
  *out = e;
  return r;
}
int sysEventRecord(Event e, Stream st) { return sym.event_record(static_cast<CUevent>(e), static_cast<CUstream>(st)); }
int sysEventQuery(Event e) { return sym.event_query(static_cast<CUevent>(e)); }
int sysEventSynchronize(Event e) { return sym.event_synchronize(static_cast<CUevent>(e)); }
int sysEventDestroy(Event e) { return sym.event_destroy(static_cast<CUevent>(e)); }
int sysLaunchHostFunc(Stream st, void (*fn)(void*), void* user) {
  return sym.launch_host_func(static_cast<CUstream>(st), fn, user);
}
int sysWaitValue32(Stream st, uint64_t addr, uint32_t value) {
  return sym.wait_value32(static_cast<CUstream>(st), addr, value, CU_STREAM_WAIT_VALUE_GEQ);
}
int sysIsCapturing(Stream st, int* capturing) {
  CUstreamCaptureStatus s = CU_STREAM_CAPTURE_STATUS_NONE;
  CUresult r = sym.is_capturing(static_cast<CUstream>(st), &s);
  *capturing = s != CU_STREAM_CAPTURE_STATUS_NONE;
  return r;
}
int sysHostAllocMapped(size_t n, void** out) {
  return sym.host_alloc(out, n, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE);
}
int sysHostDeviceAddress(void* host, uint64_t* out) {
  CUdeviceptr p = 0;
  CUresult r = sym.host_device_pointer(&p, host, 0);
  *out = p;
  return r;
}
int sysHostFree(void* host) { return sym.host_free(host); }
int sysHostRegister(void* host, size_t n) { return sym.host_register(host, n, CU_MEMHOSTREGISTER_PORTABLE); }
int sysHostUnregister(void* host) { return sym.host_unregister(host); }
static_assert(sizeof(CUipcMemHandle) == kIpcHandleBytes);
int sysIpcExport(uint64_t p, IpcHandle* out) {
  CUipcMemHandle h;
  CUresult r = sym.ipc_get(&h, p);
  if (r == CUDA_SUCCESS) std::memcpy(out->bytes, h.reserved, kIpcHandleBytes);
  return r;
}
int sysIpcOpen(const IpcHandle& handle, uint64_t* out) {
  CUipcMemHandle h;
  std::memcpy(h.reserved, handle.bytes, kIpcHandleBytes);
  CUdeviceptr p = 0;
  CUresult r = sym.ipc_open(&p, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  *out = p;
  return r;
}
int sysIpcClose(uint64_t p) { return sym.ipc_close(p); }
const char* sysErrorName(int r) {
  const char* s = nullptr;
  if (sym.error_name(static_cast<CUresult>(r), &s) == CUDA_SUCCESS && s) return s;
  switch (r) {  // the stub library knows no names: the ones a probe meets
    case CUDA_ERROR_STUB_LIBRARY: return "CUDA_ERROR_STUB_LIBRARY (the toolkit's stub, not a driver)";
    case CUDA_ERROR_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    default: return "CUDA_ERROR_UNKNOWN";
  }
}

Status loadSystem(const std::string& library, std::shared_ptr<const DriverApi>& out) {
  static std::mutex mu;  // a leaf
  static std::string loaded;  // the library `sym` came from
  static std::shared_ptr<const DriverApi> table;
  std::lock_guard lock(mu);
  if (table) {
    if (library != loaded)
      return Status::NotSupported("the CUDA driver was already loaded from " + loaded + " in this process");
    out = table;
    return Status::OK();
  }
  void* lib = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = ::dlerror();
    return Status::NotSupported(library + " not loadable (no NVIDIA driver here?): " + (e ? e : "?"));
  }
  Symbols s;
  std::string missing;
  auto bind = [&](auto& fn, const char* name) {
    void* p = ::dlsym(lib, name);
    if (!p) missing += std::string(missing.empty() ? "" : ", ") + name;
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
  bind(s.init, "cuInit");
  bind(s.driver_version, "cuDriverGetVersion");
  bind(s.device_count, "cuDeviceGetCount");
  bind(s.device_get, "cuDeviceGet");
  bind(s.device_name, "cuDeviceGetName");
  bind(s.device_uuid, "cuDeviceGetUuid_v2");
  bind(s.pointer_attributes, "cuPointerGetAttributes");
  bind(s.error_name, "cuGetErrorName");
  bind(s.primary_retain, "cuDevicePrimaryCtxRetain");
  bind(s.primary_release, "cuDevicePrimaryCtxRelease_v2");
  bind(s.ctx_push, "cuCtxPushCurrent_v2");
  bind(s.ctx_pop, "cuCtxPopCurrent_v2");
  bind(s.ctx_current, "cuCtxGetCurrent");
  bind(s.mem_alloc, "cuMemAlloc_v2");
  bind(s.mem_free, "cuMemFree_v2");
  bind(s.copy, "cuMemcpy");
  bind(s.stream_create, "cuStreamCreate");
  bind(s.stream_destroy, "cuStreamDestroy_v2");
  bind(s.copy_async, "cuMemcpyAsync");
  bind(s.stream_synchronize, "cuStreamSynchronize");
  bind(s.event_create, "cuEventCreate");
  bind(s.event_record, "cuEventRecord");
  bind(s.event_query, "cuEventQuery");
  bind(s.event_synchronize, "cuEventSynchronize");
  bind(s.event_destroy, "cuEventDestroy_v2");
  bind(s.launch_host_func, "cuLaunchHostFunc");
  bind(s.wait_value32, "cuStreamWaitValue32_v2");
  bind(s.is_capturing, "cuStreamIsCapturing");
  bind(s.host_alloc, "cuMemHostAlloc");
  bind(s.host_device_pointer, "cuMemHostGetDevicePointer_v2");
  bind(s.host_free, "cuMemFreeHost");
  bind(s.host_register, "cuMemHostRegister_v2");
  bind(s.host_unregister, "cuMemHostUnregister");
  bind(s.ipc_get, "cuIpcGetMemHandle");
  bind(s.ipc_open, "cuIpcOpenMemHandle_v2");
  bind(s.ipc_close, "cuIpcCloseMemHandle");
  if (!missing.empty()) {
    ::dlclose(lib);
    return Status::NotSupported(library + " lacks " + missing + " (driver too old?)");
  }
  sym = s;
  auto api = std::make_shared<DriverApi>();
  api->provider = library;
  api->init = &sysInit;
  api->driver_version = &sysDriverVersion;
  api->device_count = &sysDeviceCount;
  api->device_name = &sysDeviceName;
  api->device_uuid = &sysDeviceUuid;
  api->pointer_info = &sysPointerInfo;
  api->error_name = &sysErrorName;
  api->primary_ctx_retain = &sysPrimaryRetain;
  api->primary_ctx_release = &sysPrimaryRelease;
  api->ctx_push = &sysCtxPush;
  api->ctx_pop = &sysCtxPop;
  api->ctx_current = &sysCtxCurrent;
  api->mem_alloc = &sysMemAlloc;
  api->mem_free = &sysMemFree;
  api->copy = &sysCopy;
  api->stream_create = &sysStreamCreate;
  api->stream_destroy = &sysStreamDestroy;
  api->copy_async = &sysCopyAsync;
  api->stream_synchronize = &sysStreamSynchronize;
  api->event_create = &sysEventCreate;
  api->event_record = &sysEventRecord;
  api->event_query = &sysEventQuery;
  api->event_synchronize = &sysEventSynchronize;
  api->event_destroy = &sysEventDestroy;
  api->launch_host_func = &sysLaunchHostFunc;
  api->stream_wait_value32 = &sysWaitValue32;
  api->stream_is_capturing = &sysIsCapturing;
  api->host_alloc_mapped = &sysHostAllocMapped;
  api->host_device_address = &sysHostDeviceAddress;
  api->host_free = &sysHostFree;
  api->host_register = &sysHostRegister;
  api->host_unregister = &sysHostUnregister;
  api->ipc_export = &sysIpcExport;
  api->ipc_open = &sysIpcOpen;
  api->ipc_close = &sysIpcClose;
  table = api;
  loaded = library;
  out = table;
  return Status::OK();
}
#else
Status loadSystem(const std::string&, std::shared_ptr<const DriverApi>&) {
  return Status::NotSupported("this Ferry was built without cuda.h (the CUDA toolkit's headers)");
}
#endif

NamedProviders<DriverApi>& providers() {
  static NamedProviders<DriverApi> p;
  return p;
}

}  // namespace

void registerDriverProvider(const std::string& name, DriverFactory factory) {
  if (name != "system") providers().set(name, std::move(factory));
}

Status loadDriver(const std::string& name, std::shared_ptr<const DriverApi>& out, const std::string& library) {
  out.reset();
  if (name == "system") return loadSystem(library.empty() ? "libcuda.so.1" : library, out);
  return providers().make(name, "CUDA driver", out);
}

std::string deviceUuid(const DriverApi& api, int ordinal) {
  uint8_t uuid[16];
  return api.device_uuid(ordinal, uuid) == 0 ? auth::hex(uuid, sizeof uuid) : std::string();
}

Status fromResult(const DriverApi& api, int result, const std::string& what) {
  if (result == 0) return Status::OK();
  return Status::Unavailable(what + ": " + api.error_name(result) + " (" + std::to_string(result) + ")");
}

Availability probe(const DriverApi& api) {
  Availability a;
  a.status = fromResult(api, api.init(), "cuInit");
  if (!a.status.ok()) return a;
  api.driver_version(&a.driver_version);
  int n = 0;
  a.status = fromResult(api, api.device_count(&n), "cuDeviceGetCount");
  if (!a.status.ok()) return a;
  if (n <= 0) {
    a.status = Status::NotSupported("the CUDA driver sees no device");
    return a;
  }
  for (int i = 0; i < n; ++i) {
    char name[256] = {};
    a.devices.push_back(api.device_name(i, name, sizeof name - 1) == 0 ? name : "?");
  }
  return a;
}

namespace {
// Whether the NVIDIA kernel driver lists a GPU: checked before loading libcuda, so that a
// machine without one never maps the user-space driver into the process.
bool nvidiaGpuListed() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/driver/nvidia/gpus", ec);
  return !ec && it != std::filesystem::directory_iterator();
}
}  // namespace

Gpu::Gpu(Options options) : options_(std::move(options)) {}

Gpu::~Gpu() {
  if (!api_) return;
  for (size_t i = 0; i < contexts_.size(); ++i) {
    if (!contexts_[i]) continue;
    if (!idle_streams_[i].empty() && api_->ctx_push(contexts_[i]) == 0) {
      for (const CopyStream& cs : idle_streams_[i]) {
        for (Event e : cs.events)
          if (e) api_->event_destroy(e);
        api_->stream_destroy(cs.stream);
      }
      api_->ctx_pop();
    }
    api_->primary_ctx_release(static_cast<int>(i));
  }
}

Status Gpu::available() {
  if (usable_.load(std::memory_order_acquire)) return Status::OK();  // the data path's case: no lock
  std::lock_guard lock(mu_);
  if (probed_) return status_;
  probed_ = true;
  if (!options_.enable) {
    status_ = Status::NotSupported("CUDA is disabled by config (cuda/enable=false)");
  } else if (options_.provider == "system" && options_.library.empty() && !nvidiaGpuListed()) {
    status_ = Status::NotSupported("no NVIDIA GPU on this machine (/proc/driver/nvidia/gpus lists none)");
  } else {
    std::shared_ptr<const DriverApi> api;
    status_ = loadDriver(options_.provider, api, options_.library);
    if (status_.ok()) {
      Availability a = probe(*api);
      status_ = a.status.ok() ? Status::OK() : Status::NotSupported(a.status.message());
      devices_ = static_cast<int>(a.devices.size());
    }
    if (status_.ok()) {
      api_ = std::move(api);
      contexts_.assign(static_cast<size_t>(devices_), nullptr);
      idle_streams_.assign(static_cast<size_t>(devices_), {});
      usable_.store(true, std::memory_order_release);
    }
  }
  return status_;
}

int Gpu::deviceCount() {
  if (!available().ok()) return 0;
  std::lock_guard lock(mu_);
  return devices_;
}

PointerInfo Gpu::pointerInfo(uint64_t address) {
  PointerInfo info;
  if (available().ok() && api_->pointer_info(address, &info) != 0) info = PointerInfo{};
  return info;
}

Status Gpu::contextOf(int ordinal, Context& out) {
  FERRY_RETURN_IF_ERROR(available());
  std::lock_guard lock(mu_);
  if (ordinal < 0 || ordinal >= devices_)
    return Status::InvalidArgument("no CUDA device " + std::to_string(ordinal) + " here (the driver sees " +
                                   std::to_string(devices_) + ")");
  Context& c = contexts_[static_cast<size_t>(ordinal)];
  if (!c) FERRY_RETURN_IF_ERROR(fromResult(*api_, api_->primary_ctx_retain(ordinal, &c), "cuDevicePrimaryCtxRetain"));
  out = c;
  return Status::OK();
}

Status Gpu::inContext(int ordinal, const std::function<Status()>& fn) {
  Context ctx = nullptr;
  FERRY_RETURN_IF_ERROR(contextOf(ordinal, ctx));
  FERRY_RETURN_IF_ERROR(fromResult(*api_, api_->ctx_push(ctx), "cuCtxPushCurrent"));
  Status st = fn();
  api_->ctx_pop();
  return st;
}

Status Gpu::allocate(int ordinal, size_t size, uint64_t& out) {
  return inContext(ordinal, [&] { return fromResult(*api_, api_->mem_alloc(&out, size), "cuMemAlloc"); });
}

Status Gpu::free(int ordinal, uint64_t address) {
  return inContext(ordinal, [&] { return fromResult(*api_, api_->mem_free(address), "cuMemFree"); });
}

Status Gpu::onCopyStream(int ordinal, const std::function<int(CopyStream&)>& fn, const char* what) {
  return inContext(ordinal, [&] {
    CopyStream cs;
    {
      std::lock_guard lock(mu_);
      auto& idle = idle_streams_[static_cast<size_t>(ordinal)];
      if (!idle.empty()) {
        cs = idle.back();
        idle.pop_back();
      }
    }
    if (!cs.stream) FERRY_RETURN_IF_ERROR(fromResult(*api_, api_->stream_create(&cs.stream), "cuStreamCreate"));
    int r = fn(cs);
    const int synced = api_->stream_synchronize(cs.stream);  // also after a failure: the stream is idle again
    if (r == 0) r = synced;
    std::lock_guard lock(mu_);
    idle_streams_[static_cast<size_t>(ordinal)].push_back(cs);
    return fromResult(*api_, r, what);
  });
}

int Gpu::slotEvents(CopyStream& cs, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!cs.events[i])
      if (int r = api_->event_create(&cs.events[i])) return r;
  return 0;
}

Status Gpu::copy(void* dst, const void* src, size_t n) {
  const auto d = reinterpret_cast<uint64_t>(dst), s = reinterpret_cast<uint64_t>(src);
  if (n == 0) return Status::OK();
  // The device whose context runs the copy: the destination's, else the source's.
  PointerInfo info = pointerInfo(d);
  if (!info.device) info = pointerInfo(s);
  if (!info.device) {
    std::memcpy(dst, src, n);
    return Status::OK();
  }
  return onCopyStream(info.ordinal, [&](CopyStream& cs) { return api_->copy_async(d, s, n, cs.stream); }, "cuMemcpyAsync");
}

Status Gpu::pin(void* host, size_t n) {
  FERRY_RETURN_IF_ERROR(available());
  int ordinal = -1;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < contexts_.size() && ordinal < 0; ++i)
      if (contexts_[i]) ordinal = static_cast<int>(i);
  }
  if (ordinal < 0) return Status::NotSupported("no CUDA device in use yet");
  return inContext(ordinal, [&] { return fromResult(*api_, api_->host_register(host, n), "cuMemHostRegister"); });
}

void Gpu::unpin(void* host) {
  if (!available().ok()) return;
  inContext(0, [&] { return fromResult(*api_, api_->host_unregister(host), "cuMemHostUnregister"); }).IgnoreError();
}

bool driverPresent() {
#if FERRY_HAVE_CUDA_H
  if (!nvidiaGpuListed()) return false;
  void* lib = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (lib) ::dlclose(lib);
  return lib != nullptr;
#else
  return false;
#endif
}

int cudaOrdinalOf(const std::string& location) {
  if (location.rfind("cuda:", 0) != 0 || location.size() == 5 || location.size() > 9) return -1;
  int n = 0;
  for (size_t i = 5; i < location.size(); ++i) {
    if (location[i] < '0' || location[i] > '9') return -1;
    n = n * 10 + (location[i] - '0');
  }
  return n;
}

}  // namespace ferry::cuda
