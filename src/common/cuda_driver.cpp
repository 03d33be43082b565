#include "common/cuda_driver.h"

#include "common/named_providers.h"

#include <dlfcn.h>

#include <cstring>
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

}  // namespace ferry::cuda
