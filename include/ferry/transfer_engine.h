// The native Ferry API (spec/tent-cpp-api.md). One TransferEngine is one segment: it owns
// an RPC server, the registered memory, the transports, and the batches it submits.
// Every method is safe to call from several threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ferry/config.h"
#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry {
// The engine's insides, declared before the exported region so they stay hidden.
class EngineImpl;
struct EngineAccess;
}  // namespace ferry

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {

class TransferEngine {
 public:
  /// Configuration from the environment (FERRY_CONF / MC_TENT_CONF and MC_*), else defaults.
  TransferEngine();
  /// Configuration from a JSON file (or inline JSON text starting with '{').
  explicit TransferEngine(const std::string config_path);
  /// Configuration built in code.
  explicit TransferEngine(std::shared_ptr<Config> config);
  ~TransferEngine();

  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  /// True when construction succeeded; otherwise initStatus() says why.
  bool available() const;
  /// Why construction failed (OK when available()). Ferry extension.
  Status initStatus() const;

  /// This engine's segment name (default "ip:port" of its RPC server).
  const std::string getSegmentName() const;
  /// Address the RPC server is reachable at.
  const std::string getRpcServerAddress() const;
  /// Port the RPC server really listens on.
  uint16_t getRpcServerPort() const;

  // ---- memory ----
  /// Allocates host memory (page aligned) and registers it.
  Status allocateLocalMemory(void** addr, size_t size,
                             Location location = kWildcardLocation);
  Status allocateLocalMemory(void** addr, size_t size, MemoryOptions& options);
  /// Unregisters and frees memory from allocateLocalMemory.
  Status freeLocalMemory(void* addr);

  /// Registers caller-owned memory. Ranges may not overlap a registered range.
  Status registerLocalMemory(void* addr, size_t size,
                             Permission permission = kGlobalReadWrite);
  /// Registers several ranges; on failure none of them stays registered.
  Status registerLocalMemory(std::vector<void*> addr_list, std::vector<size_t> size_list,
                             Permission permission = kGlobalReadWrite);
  Status registerLocalMemory(void* addr, size_t size, MemoryOptions& options);

  /// Unregisters the range starting at addr (size 0: whatever was registered there).
  Status unregisterLocalMemory(void* addr, size_t size = 0);
  Status unregisterLocalMemory(std::vector<void*> addr_list,
                               std::vector<size_t> size_list = {});

  // ---- files (Ferry extension) ----
  /// Exposes a local file to peers, who open it as the file segment "<our name>#<name>"
  /// and address it by file offset. `size` > 0 creates the file if needed and extends it to
  /// that size; 0 exposes it as it is. The exposed length is fixed; `permission` is
  /// kGlobalReadOnly or kGlobalReadWrite. Config `files/expose` does the same at start.
  Status exposeFile(const std::string& name, const std::string& path,
                    Permission permission = kGlobalReadWrite, uint64_t size = 0);
  /// Stops exposing a file; peers' later requests to it fail with NotFound.
  Status unexposeFile(const std::string& name);

  // ---- segments ----
  /// Opens a segment by name: "host:port" with p2p metadata, a registered name with a
  /// store, "SEGMENT#FILE" for a file another engine exposes, "file:///PATH" for a local
  /// file (opened read-write when this process may write it). Opening our own name gives a
  /// handle served by the local copy transport.
  Status openSegment(SegmentID& handle, const std::string& segment_name);
  Status closeSegment(SegmentID handle);
  /// Type and buffers of an opened segment (refreshed from the peer).
  Status getSegmentInfo(SegmentID handle, SegmentInfo& info);

  /// A self-contained string describing this segment; another engine passes it to
  /// importRemoteSegment to open us without any metadata service.
  Status exportLocalSegment(std::string& shared_handle);
  Status importRemoteSegment(SegmentID& handle, const std::string& shared_handle);

  // ---- batches ----
  /// A batch holding up to batch_size requests. Returns 0 on failure (never a valid id).
  BatchID allocateBatch(size_t batch_size);
  /// Refused with Busy while any task of the batch is still PENDING.
  Status freeBatch(BatchID batch_id);

  /// Submits requests asynchronously. All requests are validated first: if one is invalid,
  /// none is submitted. A request that fails once dispatched turns FAILED and the call
  /// returns that error.
  Status submitTransfer(BatchID batch_id, const std::vector<Request>& request_list);
  /// As above; `notifi` is delivered to each target segment after all these requests'
  /// data is in place there (not sent if one of them fails).
  Status submitTransfer(BatchID batch_id, const std::vector<Request>& request_list,
                        const Notification& notifi);

  /// Ferry extension: submits a paged transfer as ONE task of the batch (its status is one
  /// entry): every page range is checked first (nothing moves if one is bad), runs of pages
  /// adjacent at both ends are coalesced, and the runs go over one route. 0 pages: OK,
  /// nothing submitted. At most 2^24 pages (layers x pages) per call.
  Status submitPagedTransfer(BatchID batch_id, const PagedRequest& request);

  Status getTransferStatus(BatchID batch_id, size_t task_id, TransferStatus& status);
  Status getTransferStatus(BatchID batch_id, std::vector<TransferStatus>& status_list);
  /// Overall: FAILED/TIMEOUT/CANCELED if any task is, else PENDING if any is, else
  /// COMPLETED (INITIAL for an empty batch). transferred_bytes is the sum.
  Status getTransferStatus(BatchID batch_id, TransferStatus& overall_status);

  /// Blocks until every submitted task of the batch has finished or `timeout` passes
  /// (then Timeout); fills the overall status. Ferry extension: waits without polling.
  Status waitTransfer(BatchID batch_id, TransferStatus& overall_status,
                      std::chrono::milliseconds timeout);

  /// Cancels every task of the batch submitted so far: slices not yet started never start;
  /// those already moving are let finish (over TCP a write's ack means its bytes are in
  /// place). Returns once every such task has settled, so OK means no byte of the batch will
  /// land anywhere any more and its buffers may be reused. Tasks not complete by then end
  /// CANCELED; finished ones keep their state. Unavailable when a connection was cut with
  /// write bytes in flight (they may still land); Timeout when tasks did not settle within
  /// transfer_timeout (+5 s). Ferry extension (TENT has the per-task form below).
  Status cancelTransfer(BatchID batch_id);
  /// As above, for one task of the batch (TENT's signature).
  Status cancelTransfer(BatchID batch_id, size_t task_id);

  /// Ferry extension: the XXH3-64 checksum (seed 0, as libxxhash computes it) of
  /// [target_offset, +length) of a segment, computed where the bytes are: a peer hashes its
  /// own memory (a range it would let us read), our own segment is hashed here. Compare it
  /// with the checksum of what was sent to prove what landed. Host memory; 1 B .. 1 GiB.
  Status digest(SegmentID target_id, uint64_t target_offset, size_t length, uint64_t& checksum);

  // ---- notifications ----
  Status sendNotification(SegmentID target_id, const Notification& notifi);
  /// Moves every pending notification into notifi_list (appended).
  Status receiveNotification(std::vector<Notification>& notifi_list);

  // Tools, bindings and tests reach further through ferry/engine_ext.h, not through this class.

 private:
  friend struct EngineAccess;
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace ferry
#pragma GCC visibility pop
