// EngineImpl: the state behind ferry::TransferEngine. Public methods mirror the API; the
// compatibility layers (TE C++, Python) call them directly.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control/rpc_client.h"
#include "control/rpc_server.h"
#include "core/batch.h"
#include "core/descriptor.h"
#include "core/memory_registry.h"
#include "core/selector.h"
#include "metadata/metadata_server.h"
#include "metadata/metadata_store.h"
#include "ferry/config.h"
#include "ferry/transfer_engine.h"
#include "transport/transport.h"

namespace ferry {

class EngineImpl : public TransportContext {
 public:
  explicit EngineImpl(std::shared_ptr<Config> config);
  ~EngineImpl() override;

  Status initStatus() const { return init_status_; }
  const std::string& segmentName() const { return name_; }
  const std::string& rpcHost() const { return rpc_host_; }
  uint16_t rpcPort() const { return rpc_server_.port(); }

  // TransportContext
  const Config& config() const override { return *config_; }
  MemoryRegistry& registry() override { return registry_; }
  RpcServer& rpcServer() override { return rpc_server_; }
  FileTable& files() override { return files_; }
  const std::string& machineId() const override { return machine_id_; }
  void onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) override;

  Status allocateLocalMemory(void** addr, size_t size, const MemoryOptions& options);
  Status freeLocalMemory(void* addr);
  Status registerLocalMemory(void* addr, size_t size, const MemoryOptions& options);
  Status unregisterLocalMemory(void* addr, size_t size);

  Status exposeFile(const std::string& name, const std::string& path, Permission perm, uint64_t size);
  Status unexposeFile(const std::string& name);

  Status openSegment(SegmentID& handle, const std::string& name);
  Status closeSegment(SegmentID handle);
  Status getSegmentInfo(SegmentID handle, SegmentInfo& info);
  Status exportLocalSegment(std::string& shared_handle);
  Status importRemoteSegment(SegmentID& handle, const std::string& shared_handle);

  BatchID allocateBatch(size_t batch_size);
  Status freeBatch(BatchID id);
  Status submitTransfer(BatchID id, const std::vector<Request>& requests,
                        const Notification* notifi);
  Status getTransferStatus(BatchID id, size_t task_id, TransferStatus& status);
  Status getTransferStatus(BatchID id, std::vector<TransferStatus>& list);
  Status getTransferStatus(BatchID id, TransferStatus& overall);
  Status waitTransfer(BatchID id, TransferStatus& overall, std::chrono::milliseconds timeout);

  Status sendNotification(SegmentID target, const Notification& notifi);
  Status receiveNotification(std::vector<Notification>& out);
  /// Probes a segment's RPC server ("host:port" or an opened name). Ferry extension.
  Status probe(const std::string& segment_name);

  /// Name of the transport first in line for an opened segment ("" if unknown).
  std::string transportName(SegmentID id);
  /// The selector's choices for an opened segment, as JSON (ferry-info --selection).
  Status describeSelection(SegmentID id, std::string& json);
  /// The files an opened memory segment exposes (its cached descriptor; ours: live).
  Status exposedFiles(SegmentID id, std::vector<FileDesc>& out);
  /// This engine's descriptor as published.
  SegmentDescriptor localDescriptor();

 private:
  struct Route;
  struct SegmentEntry {
    SegmentID id = 0;
    std::string name;
    std::string base_name;  // the segment whose descriptor is read (name without "#file")
    std::string file_name;  // a peer's exposed file ("" for memory and private file segments)
    int refs = 0;
    bool via_store = false;  // found through the metadata store (refresh there too)
    bool is_self = false;    // our own segment; fixed for the entry's life
    bool is_file = false;    // a file segment; fixed for the entry's life
    // The peer answered with a registry version other than desc's: refresh before next use.
    std::atomic<bool> stale{false};
    std::mutex mu;
    // Immutable once published (with the cached descriptor inside); a refresh swaps in a
    // new one, so the data path shares it (a refcount) instead of copying it per submit.
    std::shared_ptr<const PeerEndpoint> peer;       // guarded by mu
    std::shared_ptr<Route> route;  // guarded by mu; default candidates, rebuilt with peer
    // The cached descriptor (peer->desc); null for our own segment. Caller holds mu.
    const SegmentDescriptor* desc() const { return peer->desc.get(); }
    std::shared_ptr<const PeerEndpoint> endpoint() {
      std::lock_guard lock(mu);
      return peer;
    }
  };

  Status init();
  void installControlHandlers();
  std::shared_ptr<SegmentEntry> findSegment(SegmentID id);
  std::shared_ptr<Batch> findBatch(BatchID id);
  // Swaps in a new descriptor (and endpoint, route) for the entry. Caller holds seg.mu.
  void setDescriptorLocked(SegmentEntry& seg, std::shared_ptr<const SegmentDescriptor> desc,
                           const std::string* host = nullptr, uint16_t port = 0);
  // The candidates for one request: hint, policy rule, or the segment's default route.
  Status routeFor(SegmentEntry& seg, const Request& req, std::shared_ptr<Route>& out);
  // Hands a run of slices to the route's candidates in order (submit-time failover).
  // Stops early when `stale` gets set (the caller refreshes and retries instead).
  Status submitRun(Route& route, std::vector<Slice*>& run, const std::atomic<bool>& stale);
  // After a run's submit failed because the peer changed or moved: re-reads its descriptor,
  // re-checks requests [reqs, reqs+count) and submits the run once more; `failed` is kept
  // when the descriptor cannot be read.
  Status resubmitAfterRefresh(SegmentEntry& seg, const Request* reqs, size_t count,
                              size_t first_index, Task* tasks, std::vector<Slice*>& run,
                              Status failed);
  void initSharedMemory();
  void updateShmControl();
  Status fetchDescriptor(const PeerEndpoint& peer, SegmentDescriptor& out);
  Status refreshDescriptor(SegmentEntry& seg);
  // Checks the target range of a request against the segment (refreshing once on a miss).
  Status validateTarget(SegmentEntry& seg, const Request& req);
  Status addSegment(const std::string& name, PeerEndpoint peer,
                    std::shared_ptr<const SegmentDescriptor> desc, SegmentID& handle,
                    bool via_store = false, const std::string& file_name = "");
  // Finds segment `name` (ours, in the store, or by host:port) and reads its descriptor
  // (null for our own).
  Status locateSegment(const std::string& name, PeerEndpoint& peer,
                       std::shared_ptr<SegmentDescriptor>& desc, bool& via_store);
  Status openFileSegment(SegmentID& handle, const std::string& name);
  // Checks a request against a file segment (ours: the live file; a peer's: its descriptor).
  Status checkFileTarget(const PeerEndpoint& peer, const Request& req);
  Status exposeConfiguredFiles();
  void deliverNotification(Notification n);
  // Publishes our descriptor to the metadata store; on failure the keeper retries.
  void publish();
  void keeperLoop();
  Status lookupInStore(const std::string& name, SegmentDescriptor& out);
  void postWork(std::function<void()> fn);
  void workerLoop();
  void metricsLoop(std::chrono::seconds interval);

  std::shared_ptr<Config> config_;
  Status init_status_;
  std::string name_, rpc_host_, machine_id_, instance_id_;
  int64_t transfer_timeout_ns_ = 0;
  size_t max_batch_size_ = 0;
  int wait_spin_us_ = 0;

  MemoryRegistry registry_;
  FileTable files_;
  RpcServer rpc_server_;
  std::unique_ptr<RpcClient> rpc_client_;
  std::vector<std::unique_ptr<Transport>> transports_;
  TransportSelector selector_;

  std::mutex alloc_mu_;
  struct Allocation {
    size_t size = 0;
    std::string shm_name;  // "" for private memory
  };
  std::unordered_map<uintptr_t, Allocation> allocations_;  // allocateLocalMemory'd ranges
  bool shm_alloc_ = false;  // allocate in shared-memory files (shm transport enabled)
  // A shared page holding the registry version, for shm peers (no acks there to carry it).
  std::string shm_control_name_;
  std::atomic<uint64_t>* shm_control_ = nullptr;

  std::mutex seg_mu_;
  std::unordered_map<SegmentID, std::shared_ptr<SegmentEntry>> segments_;
  std::unordered_map<std::string, SegmentID> segment_ids_;  // by name
  SegmentID next_segment_id_ = 1;

  std::mutex batch_mu_;
  std::unordered_map<BatchID, std::shared_ptr<Batch>> batches_;
  BatchID next_batch_id_ = 1;

  std::mutex notify_mu_;
  std::deque<Notification> notifications_;

  std::mutex work_mu_;
  std::condition_variable work_cv_;  // the worker only: work queued or stop
  std::condition_variable stop_cv_;  // keeper and metrics threads: stop
  std::deque<std::function<void()>> work_;
  bool work_stop_ = false;
  std::thread worker_;

  std::unique_ptr<MetadataServer> embedded_store_;  // metadata/embedded_server
  std::unique_ptr<MetadataStore> store_;            // null with p2p
  std::string cluster_;
  std::atomic<bool> publish_pending_{false};
  std::thread keeper_;

  std::atomic<uint64_t> bytes_moved_{0};  // completed slice bytes, for MC_TE_METRIC
  std::thread metrics_;
};

}  // namespace ferry
