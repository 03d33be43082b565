// The classic Transfer Engine C++ API (the left column of spec/tent-cpp-api.md's mapping
// table), as a thin layer over ferry::TransferEngine, so code written against
// mooncake::TransferEngine compiles and runs unchanged. Conventions follow the classic
// API: int results are 0 on success and negative on failure; Status where it returned one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ferry/status.h"
#include "ferry/types.h"

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {
class TransferEngine;
}

namespace mooncake {

using Status = ::ferry::Status;
using SegmentHandle = uint64_t;
using SegmentID = uint64_t;
using BatchID = uint64_t;
const static BatchID INVALID_BATCH_ID = UINT64_MAX;
const static SegmentID LOCAL_SEGMENT_ID = 0;
inline const std::string kWildcardLocation = "*";

struct TransferRequest {
  enum OpCode { READ, WRITE };
  OpCode opcode;
  void* source;
  SegmentID target_id;
  uint64_t target_offset;
  size_t length;
  int advise_retry_cnt = 0;
};

enum TransferStatusEnum { WAITING, PENDING, INVALID, CANCELED, COMPLETED, TIMEOUT, FAILED };

struct TransferStatus {
  TransferStatusEnum s = WAITING;
  size_t transferred_bytes = 0;
};

struct BufferEntry {
  void* addr;
  size_t length;
};

/// Only the notification type of the classic metadata class; its internals are not exposed.
class TransferMetadata {
 public:
  struct NotifyDesc {
    std::string name;
    std::string notify_msg;
  };
};

/// Opaque: transports are chosen by the engine. installTransport returns a non-null handle
/// so callers that check it keep working.
class Transport;

class TransferEngine {
 public:
  explicit TransferEngine(bool auto_discover = false);
  TransferEngine(bool auto_discover, const std::vector<std::string>& filter);
  ~TransferEngine();
  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  /// metadata_conn_string: "P2PHANDSHAKE"/"p2p" (no server) or a server (not built yet:
  /// fails with -1 and a log line). local_server_name is the segment name; with p2p a
  /// "host:port" name also sets where the RPC server listens.
  int init(const std::string& metadata_conn_string, const std::string& local_server_name,
           const std::string& ip_or_host_name = "", uint64_t rpc_port = 12345);
  int freeEngine();

  /// Accepted for compatibility; selection stays automatic. Never null.
  Transport* installTransport(const std::string& proto, void** args);
  int uninstallTransport(const std::string& proto);

  /// Returns a handle, or (SegmentHandle)-1 on failure.
  SegmentHandle openSegment(const std::string& segment_name);
  int closeSegment(SegmentHandle handle);
  int removeLocalSegment(const std::string& segment_name);
  Status CheckSegmentStatus(SegmentID sid);
  int syncSegmentCache(const std::string& segment_name = "");

  int registerLocalMemory(void* addr, size_t length,
                          const std::string& location = kWildcardLocation,
                          bool remote_accessible = true, bool update_metadata = true);
  int unregisterLocalMemory(void* addr, bool update_metadata = true);
  int registerLocalMemoryBatch(const std::vector<BufferEntry>& buffer_list,
                               const std::string& location);
  int unregisterLocalMemoryBatch(const std::vector<void*>& addr_list);
  /// True when [addr, addr+length) overlaps registered memory.
  bool checkOverlap(void* addr, uint64_t length);

  /// INVALID_BATCH_ID on failure.
  BatchID allocateBatchID(size_t batch_size);
  Status freeBatchID(BatchID batch_id);
  Status submitTransfer(BatchID batch_id, const std::vector<TransferRequest>& entries);
  Status submitTransferWithNotify(BatchID batch_id, const std::vector<TransferRequest>& entries,
                                  TransferMetadata::NotifyDesc notify_msg);
  Status getTransferStatus(BatchID batch_id, size_t task_id, TransferStatus& status);
  Status getBatchTransferStatus(BatchID batch_id, TransferStatus& status);

  int sendNotifyByID(SegmentID target_id, TransferMetadata::NotifyDesc notify_msg);
  int sendNotifyByName(std::string remote_agent, TransferMetadata::NotifyDesc notify_msg);
  /// Appends pending notifications; returns 0.
  int getNotifies(std::vector<TransferMetadata::NotifyDesc>& notifies);

  /// "ip:port" of the RPC server.
  std::string getLocalIpAndPort();
  int getRpcPort();
  /// JSON: CPUs/NUMA nodes, network interfaces, RDMA devices, GPUs.
  std::string getLocalTopology();

  void setAutoDiscover(bool auto_discover) { auto_discover_ = auto_discover; }
  void setWhitelistFilters(std::vector<std::string>&& filters) { filters_ = std::move(filters); }
  int numContexts() const { return 0; }

  /// The native engine underneath (null before init).
  ::ferry::TransferEngine* native() { return engine_.get(); }

 private:
  // LOCAL_SEGMENT_ID (0) in requests means this engine; mapped to its native handle.
  ::ferry::SegmentID localHandle();
  std::vector<::ferry::Request> toNative(const std::vector<TransferRequest>& entries);

  std::unique_ptr<::ferry::TransferEngine> engine_;
  std::once_flag self_once_;
  ::ferry::SegmentID self_handle_ = 0;
  bool auto_discover_;
  std::vector<std::string> filters_;
};

}  // namespace mooncake
#pragma GCC visibility pop
