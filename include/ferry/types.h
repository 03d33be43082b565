// Value types of the native API (spec/tent-cpp-api.md, "Type Reference").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {

/// Handle of an opened segment (openSegment / importRemoteSegment).
using SegmentID = uint64_t;
/// Handle of a batch (allocateBatch).
using BatchID = uint64_t;

/// Device affinity of memory: "cpu:0", "cuda:1", or "*" to detect.
using Location = std::string;
inline const std::string kWildcardLocation = "*";

/// Who may touch a registered buffer.
enum Permission {
  kLocalReadWrite,   // this process only: every remote access is refused
  kGlobalReadOnly,   // peers may read, not write
  kGlobalReadWrite,  // peers may read and write
};

/// Transports known to the API. Applications normally leave selection to the engine.
enum TransportType {
  RDMA = 0,
  MNNVL,
  SHM,
  NVLINK,
  GDS,
  IOURING,
  TCP,
  AscendDirect,
  UNSPEC
};

/// Options for allocateLocalMemory / registerLocalMemory.
struct MemoryOptions {
  Location location = kWildcardLocation;
  Permission perm = kGlobalReadWrite;
  TransportType type = UNSPEC;
  std::string shm_path = "";
  size_t shm_offset = 0;
  bool internal = false;
};

/// What a segment exposes: its kind and registered buffers.
struct SegmentInfo {
  enum Type { Memory, File };
  struct Buffer {
    uint64_t base, length;
    Location location;
  };
  Type type;
  std::vector<Buffer> buffers;
};

/// A small message between engines, delivered through receiveNotification.
struct Notification {
  std::string name;
  std::string msg;
};

/// Request priorities (Mooncake TENT's values): a lower number is served first.
inline constexpr int PRIO_HIGH = 0;
inline constexpr int PRIO_MEDIUM = 1;
inline constexpr int PRIO_LOW = 2;

/// One transfer: READ copies <target_id, target_offset> into source; WRITE the reverse.
/// For a memory segment, target_offset is the peer's virtual address inside one of its
/// registered buffers (SegmentInfo::Buffer::base + offset).
struct Request {
  enum OpCode { READ, WRITE };
  OpCode opcode;
  void* source;
  SegmentID target_id;
  uint64_t target_offset;
  size_t length;
  /// Ferry extension: pins the request onto one transport ("local", "shm", "tcp", ...);
  /// null or "" lets the selector choose. Read during submitTransfer only.
  const char* transport_hint = nullptr;
  /// PRIO_HIGH (the default, as in TENT), PRIO_MEDIUM or PRIO_LOW. Where a connection or
  /// copy worker has work of several classes queued, the higher class starts first; work
  /// already started is not preempted. Other values are clamped into this range.
  int priority = PRIO_HIGH;
  /// Absolute steady_clock time (ns since its epoch) by which the request should be done;
  /// 0: none. Slices not started by then are dropped unsent, and a task that settles after
  /// it ends TIMEOUT (bytes already in flight finish first: the buffer stays in use until
  /// the task settles).
  uint64_t deadline_ns = 0;
  /// Ferry extension: check the moved bytes end to end (XXH3-64 per slice): at the target
  /// before a write is acknowledged, at the initiator after a read. A mismatch fails the
  /// task (FAILED, Corrupted "checksum mismatch", never retried) and counts in
  /// checksumMismatches(). Config `checksum` (env FERRY_CHECKSUM=1) turns it on for every
  /// request. Only transports that can check it carry such a request (tcp, shm, local).
  bool checksum = false;
};

/// Ferry extension: many pages of a paged KV cache in one task (submitPagedTransfer). Page
/// `local_pages[i]` of each layer at the initiator pairs with page `remote_pages[i]` at the
/// target; page p of layer l lies at base + l * layer_stride + p * page_size. Runs of pages
/// adjacent at both ends move as one range. The index arrays are read during the call only.
struct PagedRequest {
  enum IndexType { INT32, INT64 };
  Request::OpCode opcode = Request::READ;
  void* local_base = nullptr;
  SegmentID target_id = 0;
  uint64_t remote_base = 0;  // the target's virtual address (or file offset) of layer 0, page 0
  size_t page_size = 0;
  const void* local_pages = nullptr;   // num_pages indices of index_type, each >= 0
  const void* remote_pages = nullptr;
  size_t num_pages = 0;
  IndexType index_type = INT64;
  size_t num_layers = 1;
  uint64_t local_layer_stride = 0;   // bytes between layers (needed when num_layers > 1)
  uint64_t remote_layer_stride = 0;
  const char* transport_hint = nullptr;  // as Request's
  int priority = PRIO_HIGH;
  uint64_t deadline_ns = 0;
  bool checksum = false;  // as Request's
};

enum TransferStatusEnum {
  INITIAL,    // not yet started
  PENDING,    // in progress
  INVALID,    // invalid parameters
  CANCELED,   // canceled
  COMPLETED,  // completed successfully
  TIMEOUT,    // timed out
  FAILED      // failed
};

struct TransferStatus {
  TransferStatusEnum s = INITIAL;
  size_t transferred_bytes = 0;  // lower bound of bytes moved
};

/// Printable name of a status value ("COMPLETED", ...).
const char* ToString(TransferStatusEnum s);

}  // namespace ferry
#pragma GCC visibility pop
