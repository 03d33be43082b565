// A registered buffer as both sides see it, and the kinds of memory a location names. Part
// of the data model shared by core and transports (src/model: no logic above it).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "ferry/types.h"

namespace ferry {

/// Per-transport attributes: transport name -> that transport's JSON text. Core carries
/// them opaquely and publishes them in the segment descriptor under the transport's name
/// (shm file and offset, RDMA rkeys, CUDA IPC handles); only the transport that wrote an
/// entry reads it, and it treats a peer's entry as an untrusted claim.
using TransportAttrs = std::map<std::string, std::string, std::less<>>;

struct BufferDesc {
  uint64_t base = 0;
  uint64_t length = 0;
  Location location = "cpu:0";
  Permission perm = kGlobalReadWrite;
  TransportAttrs attrs;  // written by Transport::registerMemory, published with the buffer
  bool operator==(const BufferDesc&) const = default;
  /// Whether [addr, addr + len) lies in this buffer, addr itself inside it (overflow-safe).
  bool contains(uint64_t addr, uint64_t len) const {
    return addr >= base && addr - base < length && len <= length - (addr - base);
  }
};

/// What kind of memory a location names; transports declare the kinds they may touch
/// (TransportCaps) and the selector never hands a buffer to one that cannot.
enum MemoryKind : uint8_t {
  kHostMemory = 1,    // "cpu", "cpu:N" (and "*", resolved to cpu:0 at registration)
  kCudaMemory = 2,    // "cuda:N"
  kFileData = 4,      // a file segment's bytes
  kOtherDevice = 8,   // any other device ("npu:0", ...): no transport here touches it
};
/// A set of MemoryKind bits.
using MemoryKinds = uint8_t;

/// The kind of memory at `location`.
MemoryKind memoryKindOf(std::string_view location);
/// "host", "cuda", "file", "device".
const char* memoryKindName(MemoryKind kind);

/// "[0x1000, +4096)" for messages.
std::string rangeText(uint64_t addr, uint64_t length);

}  // namespace ferry
