// The seam between Ferry and the CUDA driver API: a table of the driver calls Ferry makes, in
// Ferry's own types, filled at run time from libcuda.so.1 (dlopen; cuda_driver.cpp is the one
// file that includes cuda.h). The same build runs where there is no driver or no GPU: loading
// or probing says why, and nothing else changes. Tests register other providers by name (a
// fake over host memory). It lives in common/ because core (classifying a registered
// pointer), the GPU transport and tcp's GPU staging all need it.
//
// Probing a pointer never creates a CUDA context (Mooncake shipped that bug several times:
// hundreds of MiB on GPU 0 per process): only cuInit and cuPointerGetAttributes are used,
// which answer for host pointers without one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::cuda {

/// What the driver says of an address.
struct PointerInfo {
  bool device = false;        // device memory (else host, pinned or not, or unknown to CUDA)
  int ordinal = -1;           // the device holding it (per process: CUDA_VISIBLE_DEVICES)
  uint64_t range_start = 0;   // the allocation it lies in
  uint64_t range_size = 0;
  uint64_t buffer_id = 0;     // process-unique id of that allocation (a free + realloc changes it)
  bool legacy_ipc = false;    // exportable with cuIpcGetMemHandle
};

/// Each call returns a CUresult (0: success); error_name turns one into text.
struct DriverApi {
  std::string provider;  // where it came from, for messages
  int (*init)() = nullptr;
  int (*driver_version)(int* version) = nullptr;
  int (*device_count)(int* count) = nullptr;
  int (*device_name)(int ordinal, char* out, int len) = nullptr;
  int (*device_uuid)(int ordinal, uint8_t out[16]) = nullptr;
  int (*pointer_info)(uint64_t address, PointerInfo* out) = nullptr;
  const char* (*error_name)(int result) = nullptr;
};

using DriverFactory = std::function<Status(std::shared_ptr<const DriverApi>& out)>;

/// Makes `name` available to loadDriver (tests); an empty factory removes it. "system" is
/// built in and cannot be replaced.
void registerDriverProvider(const std::string& name, DriverFactory factory);

/// The table of provider `name`. "system" opens `library` (default libcuda.so.1; once per
/// path, kept loaded): NotSupported with the reason when it or a symbol is missing, or when
/// this build had no cuda.h. NotFound for an unknown provider.
Status loadDriver(const std::string& name, std::shared_ptr<const DriverApi>& out,
                  const std::string& library = "");

/// CUDA as this process can use it: `status` OK with the devices, or why not (cuInit's
/// error, such as the toolkit's stub library or no device, or no device at all).
struct Availability {
  Status status;
  int driver_version = 0;
  std::vector<std::string> devices;  // names, by ordinal
};
Availability probe(const DriverApi& api);

/// "<what>: CUDA_ERROR_NAME (code)" as an Unavailable status; OK for 0.
Status fromResult(const DriverApi& api, int result, const std::string& what);

}  // namespace ferry::cuda
