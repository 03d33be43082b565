// Ferry extensions beyond spec/tent-cpp-api.md, for tools, language bindings and tests:
// introspection of an engine and the few checks the bindings make before touching memory.
// Every call takes an engine that construction left available(); on one that is not, the
// Status calls return Unavailable and the others an empty answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/config.h"
#include "ferry/status.h"
#include "ferry/transfer_engine.h"
#include "ferry/types.h"

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry::ext {

/// OK when [addr, addr+length) lies inside one buffer registered with `engine`.
Status checkRegistered(TransferEngine& engine, const void* addr, size_t length);
/// Copies `length` bytes from `src` to `dst` of this process, host or GPU memory (the CUDA
/// driver moves them when either side is device memory; a plain memcpy otherwise). The
/// bindings' write_bytes_to_buffer / read_bytes_from_buffer, which may be handed GPU addresses.
Status copyLocal(TransferEngine& engine, void* dst, const void* src, size_t length);
/// OK when this engine can use CUDA (probing it now if nothing did yet), else why not.
Status cudaStatus(TransferEngine& engine);
/// Whether this machine has an NVIDIA GPU and libcuda.so.1 loads (no CUDA call is made):
/// what Python's SUPPORT_CUDA reports, at import.
bool cudaDriverPresent();
/// Submits `requests` ordered on CUDA stream `stream` (a CUstream / cudaStream_t; null: the
/// legacy default stream): they start after the work already queued on it, work queued on it
/// later waits for their bytes to be in place, and the call returns without waiting. Errors
/// in the requests are returned now; a failure after the call returned ends the process
/// (cuda/stream_error=exit, the default) or is kept for lastStreamError (=release). Refused
/// while the stream is captured into a CUDA graph.
Status submitOnStream(TransferEngine& engine, const std::vector<Request>& requests, void* stream);
/// The first stream-ordered transfer that failed after its call returned (release mode), or OK.
Status lastStreamError(TransferEngine& engine);
/// Whether [addr, addr+length) shares a byte with a registered buffer.
bool overlapsRegistered(TransferEngine& engine, const void* addr, size_t length);
/// The engine's configuration (as validated at start).
const Config& engineConfig(TransferEngine& engine);

/// Probes a segment's RPC server: a registered name (with a metadata store), or host:port.
Status probe(TransferEngine& engine, const std::string& segment_name);
/// The transport first in line for an opened segment ("" if none or unknown).
std::string transportName(TransferEngine& engine, SegmentID segment);
/// The selector's view of an opened segment as JSON: each transport's reach, memory kinds,
/// slice size and cost estimate, the default order and each policy's (ferry-info --selection).
Status describeSelection(TransferEngine& engine, SegmentID segment, std::string& json);

/// A file a segment exposes (open it as "<segment>#<name>").
struct ExposedFile {
  uint32_t id = 0;
  std::string name, path;
  uint64_t length = 0;
  bool read_only = false;
};
/// The files an opened memory segment exposes (a peer's as last read; ours live).
Status exposedFiles(TransferEngine& engine, SegmentID segment, std::vector<ExposedFile>& out);

/// Every configuration key and environment variable Ferry reads, as markdown tables (type,
/// default, bounds, help): what `ferry-info --options` prints and the README shows.
std::string optionsTable();

/// This engine's segment descriptor as peers read it (JSON).
std::string localDescriptorJson(TransferEngine& engine);
/// What each transport runs on (JSON by transport name: rdma's NICs with GID, MTU, NUMA
/// node and speed, or why it is inert): `ferry-info --transports`.
std::string inspectTransports(TransferEngine& engine);
/// Per-peer states the transports hold now (endpoints: connections, mappings, open files).
size_t peerStateCount(TransferEngine& engine);
/// Slices that failed their end-to-end checksum (Request::checksum) since the engine started:
/// found at the target of our writes or here after our reads.
uint64_t checksumMismatches(TransferEngine& engine);
/// The port this engine's Prometheus `/metrics` is served on (metrics/port; shared by the
/// process's engines that asked for the same one), 0 when off.
uint16_t metricsPort(TransferEngine& engine);

}  // namespace ferry::ext
#pragma GCC visibility pop
