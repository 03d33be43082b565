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

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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

/// Driver objects, opaque to Ferry (CUcontext, CUstream, CUevent).
using Context = void*;
using Stream = void*;
using Event = void*;

/// A legacy CUDA IPC handle (CUipcMemHandle), as the exporting process hands it out.
constexpr size_t kIpcHandleBytes = 64;
struct IpcHandle {
  uint8_t bytes[kIpcHandleBytes] = {};
};

/// Results the callers act on (the rest are errors to report).
constexpr int kNotReady = 600;        // CUDA_ERROR_NOT_READY: an event or stream still busy
constexpr int kAlreadyMapped = 208;   // CUDA_ERROR_ALREADY_MAPPED: an IPC range is open here

/// Each call returns a CUresult (0: success); error_name turns one into text. Calls marked
/// "(context)" act in the calling thread's current context (see Gpu::inContext).
struct DriverApi {
  std::string provider;  // where it came from, for messages
  int (*init)() = nullptr;
  int (*driver_version)(int* version) = nullptr;
  int (*device_count)(int* count) = nullptr;
  int (*device_name)(int ordinal, char* out, int len) = nullptr;
  int (*device_uuid)(int ordinal, uint8_t out[16]) = nullptr;
  int (*pointer_info)(uint64_t address, PointerInfo* out) = nullptr;
  const char* (*error_name)(int result) = nullptr;
  // Contexts: the device's primary context (the one the CUDA runtime and PyTorch use).
  int (*primary_ctx_retain)(int ordinal, Context* out) = nullptr;
  int (*primary_ctx_release)(int ordinal) = nullptr;
  int (*ctx_push)(Context ctx) = nullptr;
  int (*ctx_pop)() = nullptr;
  int (*ctx_current)(Context* out) = nullptr;  // null when the thread has none
  // Memory (context).
  int (*mem_alloc)(uint64_t* out, size_t size) = nullptr;
  int (*mem_free)(uint64_t address) = nullptr;
  int (*copy)(uint64_t dst, uint64_t src, size_t n) = nullptr;  // unified addresses, synchronous
  // Streams and events (context).
  int (*stream_create)(Stream* out) = nullptr;  // non-blocking: no implicit sync with stream 0
  int (*stream_destroy)(Stream stream) = nullptr;
  int (*copy_async)(uint64_t dst, uint64_t src, size_t n, Stream stream) = nullptr;
  int (*stream_synchronize)(Stream stream) = nullptr;
  int (*event_create)(Event* out) = nullptr;  // timing disabled
  int (*event_record)(Event event, Stream stream) = nullptr;
  int (*event_query)(Event event) = nullptr;  // 0 done, kNotReady, or the error of the work
  int (*event_synchronize)(Event event) = nullptr;
  int (*event_destroy)(Event event) = nullptr;
  // Stream-ordered work (context): a host function the driver runs when the stream reaches
  // it (it must make no CUDA call), a wait until a 32-bit word in device-visible memory is
  // >= value, and whether the stream is being captured into a graph.
  int (*launch_host_func)(Stream stream, void (*fn)(void*), void* user) = nullptr;
  int (*stream_wait_value32)(Stream stream, uint64_t device_address, uint32_t value) = nullptr;
  int (*stream_is_capturing)(Stream stream, int* capturing) = nullptr;
  // Pinned host memory the GPU can read (context): its device address, and its release.
  int (*host_alloc_mapped)(size_t size, void** out) = nullptr;
  int (*host_device_address)(void* host, uint64_t* out) = nullptr;
  int (*host_free)(void* host) = nullptr;
  // Page-locks existing host memory for DMA (portable: every context), and the reverse.
  int (*host_register)(void* host, size_t size) = nullptr;
  int (*host_unregister)(void* host) = nullptr;
  // Legacy CUDA IPC (context): export an allocation, map a peer's, unmap it.
  int (*ipc_export)(uint64_t allocation, IpcHandle* out) = nullptr;
  int (*ipc_open)(const IpcHandle& handle, uint64_t* out) = nullptr;
  int (*ipc_close)(uint64_t mapped) = nullptr;
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

/// Device `ordinal`'s UUID as 32 hex digits ("" when the driver will not say).
std::string deviceUuid(const DriverApi& api, int ordinal);

/// "<what>: CUDA_ERROR_NAME (code)" as an Unavailable status; OK for 0.
Status fromResult(const DriverApi& api, int result, const std::string& what);

/// Pieces of copyOutPieces / copyInPieces: a staging buffer of kPieceBytes * kMaxPieceSlots
/// (1 MiB) lets four pieces be in flight between the stream and the GPU.
inline constexpr size_t kPieceBytes = 256 << 10;
inline constexpr size_t kMaxPieceSlots = 4;
inline constexpr size_t kPieceStagingBytes = kPieceBytes * kMaxPieceSlots;

/// The driver as an engine uses it. Nothing is loaded or initialised before the first call
/// that needs CUDA, and the answer is kept: a host-only program never pays cuInit, and with
/// the system driver a machine without an NVIDIA GPU (/proc/driver/nvidia/gpus) never even
/// loads libcuda. Primary contexts are retained per device on first use, made current only
/// around the calls that need one, and released by the destructor. Thread-safe.
class Gpu {
 public:
  struct Options {
    bool enable = true;               // false: CUDA is never touched ("disabled by config")
    std::string provider = "system";  // a registered provider's name (tests: a fake)
    std::string library;              // the system provider's library; "" = libcuda.so.1
  };
  explicit Gpu(Options options);
  ~Gpu();
  Gpu(const Gpu&) = delete;
  Gpu& operator=(const Gpu&) = delete;

  /// OK when CUDA is usable here, else why not (NotSupported), the same answer every time.
  Status available();
  /// The driver table; only after available() said OK.
  const DriverApi& api() const { return *api_; }
  /// The same table, shared (for what must outlive this object, such as mapped peer memory).
  const std::shared_ptr<const DriverApi>& table() const { return api_; }
  /// Devices the driver sees (0 when unavailable).
  int deviceCount();
  /// What the driver says of `address`: host (device = false) when CUDA is unavailable.
  PointerInfo pointerInfo(uint64_t address);
  /// Runs `fn` with device `ordinal`'s primary context current on this thread.
  Status inContext(int ordinal, const std::function<Status()>& fn);
  /// Device memory on `ordinal` (cuMemAlloc: legacy-IPC capable), and its release.
  Status allocate(int ordinal, size_t size, uint64_t& out);
  Status free(int ordinal, uint64_t address);
  /// Copies `n` bytes between any two addresses, host or device, and waits. The copy runs
  /// on a non-blocking stream of ours: never on the legacy default stream, which would wait
  /// for (and hold up) the application's own GPU work.
  Status copy(void* dst, const void* src, size_t n);
  /// Device memory -> a byte stream, in pieces through `staging` (host memory, pinned for
  /// DMA speed; kMaxPieceSlots pieces of up to kPieceBytes): `emit` gets each piece in order
  /// while the driver copies the following ones out. `emit` is first called once the first
  /// piece is in host memory, so `emitted` false means nothing reached the stream. Returns
  /// the first failure (a copy's, or emit's, which stops it); staging is idle on return.
  Status copyOutPieces(const void* src, size_t n, uint8_t* staging, size_t staging_len,
                       const std::function<Status(const uint8_t*, size_t)>& emit, bool* emitted);
  /// A byte stream -> device memory, the same way: `fill` fills each piece in order while
  /// the driver copies earlier ones in; returns once every byte is in device memory. When a
  /// copy fails or cannot start (not device memory, no context), `fill` is still called until
  /// all `n` bytes were read (the stream stays framed) and the copy's error returned; an
  /// error of `fill` stops at once and is returned.
  Status copyInPieces(void* dst, size_t n, uint8_t* staging, size_t staging_len,
                      const std::function<Status(uint8_t*, size_t)>& fill);
  /// Page-locks [host, +n) so that copies to and from it run at DMA speed (staging buffers),
  /// in a context already in use (never making one: host-only use must not create a context
  /// on GPU 0); NotSupported where CUDA is not usable or no device is in use yet. unpin()
  /// undoes it.
  Status pin(void* host, size_t n);
  void unpin(void* host);

 private:
  Status contextOf(int ordinal, Context& out);
  // One of our non-blocking copy streams, with the events the pieces calls record on it
  // (made on first need and kept with the stream: no call creates or destroys any).
  struct CopyStream {
    Stream stream = nullptr;
    std::array<Event, kMaxPieceSlots> events{};
  };
  // Runs `fn` on an idle copy stream of `ordinal` (in its context), then waits for the
  // stream: `fn`'s driver result (or the wait's) becomes the Status.
  Status onCopyStream(int ordinal, const std::function<int(CopyStream&)>& fn, const char* what);
  // Makes the first `n` events of `cs` where missing; the driver's result.
  int slotEvents(CopyStream& cs, size_t n);

  const Options options_;
  std::mutex mu_;  // guards everything below; a leaf (no driver call that may call back)
  bool probed_ = false;
  std::atomic<bool> usable_{false};  // probed and OK: api_ and the device count are set for good
  Status status_;
  std::shared_ptr<const DriverApi> api_;
  int devices_ = 0;
  std::vector<Context> contexts_;  // retained primary contexts, by ordinal (null: not yet)
  std::vector<std::vector<CopyStream>> idle_streams_;  // by ordinal: one per concurrent copier
};

/// Whether an NVIDIA GPU is listed (/proc/driver/nvidia/gpus) and libcuda.so.1 loads, without
/// initialising CUDA (cheap enough for an import-time flag; a forked child can still use CUDA).
bool driverPresent();

/// Host memory for staging copies to and from GPU memory, grown on demand and pinned when
/// the driver allows (pageable otherwise: slower copies, same bytes). One user at a time.
class StagingBuffer {
 public:
  explicit StagingBuffer(Gpu* gpu) : gpu_(gpu) {}
  ~StagingBuffer() { release(); }
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;
  /// At least `n` bytes (pinned from the first call after a device came into use).
  uint8_t* reserve(size_t n);

 private:
  void release();
  Gpu* gpu_;
  std::vector<uint8_t> bytes_;
  bool pinned_ = false;
};

/// "cuda:N" -> N; -1 for a location that names no CUDA device or a malformed index.
int cudaOrdinalOf(const std::string& location);

}  // namespace ferry::cuda
