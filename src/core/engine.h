// EngineImpl: the state behind ferry::TransferEngine, as parts that each own their state
// and lock (see docs/architecture.md and docs/locking.md):
//   LocalMemory    allocation and registration, fanned out to transports
//   FileSegments   exposed and private files
//   SegmentTable   opened segments, their endpoints and routes
//   PeerDirectory  where descriptors come from (peer or store), refresh and staleness
//   BatchTable     batches, status and waiting
//   Submitter      validate -> route -> slice -> dispatch -> resubmit
//   Notifications  inbox and per-peer outbound queues
//   Publisher      the single writer of our descriptor to the metadata store
//   Metrics        bytes moved and the periodic line
// The engine keeps the wiring: it starts them in order, answers the transports
// (TransportContext) and the control messages, and stops them in reverse.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/shm_file.h"
#include "control/rpc_client.h"
#include "control/rpc_server.h"
#include "core/batch_table.h"
#include "core/engine_options.h"
#include "core/file_segments.h"
#include "core/local_memory.h"
#include "core/metrics.h"
#include "core/metrics_endpoint.h"
#include "core/notifications.h"
#include "core/peer_directory.h"
#include "core/publisher.h"
#include "core/segment_table.h"
#include "core/selector.h"
#include "core/stream_ordered.h"
#include "core/submitter.h"
#include "ferry/config.h"
#include "ferry/transfer_engine.h"
#include "metadata/metadata_server.h"
#include "metadata/metadata_store.h"
#include "model/memory_registry.h"
#include "transport/transport.h"

namespace ferry {

class EngineImpl : public TransportContext {
 public:
  /// `config_status`: why the config could not be read, if it could not (start fails).
  EngineImpl(std::shared_ptr<Config> config, Status config_status);
  ~EngineImpl() override;

  Status initStatus() const { return init_status_; }
  const std::string& segmentName() const { return name_; }
  const std::string& rpcHost() const { return rpc_host_; }
  uint16_t rpcPort() const { return rpc_server_.port(); }

  // TransportContext
  const Config& config() const override { return *config_; }
  MemoryRegistry& registry() override { return registry_; }
  FileTable& files() override { return files_->table(); }
  const std::string& machineId() const override { return machine_id_; }
  const std::string& instanceId() const override { return instance_id_; }
  const std::string& localDir() const override { return local_dir_path_; }
  const std::string& authToken() const override { return options_.auth_token; }
  Status defineMessage(wire::MsgType type, const wire::MessageSpec& spec, MessageHandler handler) override;
  void onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) override {
    directory_->onPeerEpoch(host, port, epoch);
  }
  cuda::Gpu& gpu() override { return *gpu_; }

  // The parts the public API forwards to.
  LocalMemory& memory() { return *memory_; }
  FileSegments& fileSegments() { return *files_; }
  BatchTable& batches() { return *batches_; }
  Submitter& submitter() { return *submitter_; }
  StreamOrdered& streamOrdered() { return *stream_ordered_; }
  Notifications& notifications() { return *notifications_; }
  PeerDirectory& directory() { return *directory_; }

  // Segments by name (engine_segments.cpp).
  Status openSegment(SegmentID& handle, const std::string& name);
  Status closeSegment(SegmentID handle);
  Status getSegmentInfo(SegmentID handle, SegmentInfo& info);
  Status exportLocalSegment(std::string& shared_handle);
  Status importRemoteSegment(SegmentID& handle, const std::string& shared_handle);
  Status sendNotification(SegmentID target, const Notification& notifi);
  Status digest(SegmentID target, uint64_t offset, uint64_t length, uint64_t& out);

  // Introspection (Ferry extensions, ferry/engine_ext.h).
  /// Name of the transport first in line for an opened segment ("" if unknown).
  std::string transportName(SegmentID id);
  /// The selector's choices for an opened segment, as JSON (ferry-info --selection).
  Status describeSelection(SegmentID id, std::string& json);
  /// The files an opened memory segment exposes (its cached descriptor; ours: live).
  Status exposedFiles(SegmentID id, std::vector<FileDesc>& out);
  /// This engine's descriptor as published.
  SegmentDescriptor localDescriptor();
  /// Per-peer states the transports hold now (endpoints), summed.
  size_t peerStateCount() const;
  uint64_t checksumMismatches() const { return metrics_.checksumMismatchCount(); }
  /// The port /metrics is served on (0: off).
  uint16_t metricsPort() const;
  /// {"<transport>": its inspect() JSON, ...} for those that say something.
  std::string inspectTransports() const;

 private:
  Status init();
  // A peer's Digest: the range must be one it may read (as for a Read), in host memory.
  Status serveDigest(const wire::FrameHeader& h, ServerConnection& conn);
  // The digest of our own registered range (checked as `conn`-less local access).
  Status digestLocal(uint64_t addr, uint64_t length, uint64_t& out) const;
  // Claims the same-machine directory (lock, sweep) and creates our beacon there; when it is
  // unusable, same-machine transports stand aside (with one log line) and tcp serves.
  void openLocalDir();
  // Our registrations or exposed files changed: transports and the store learn the version.
  void localChanged();
  // What /metrics reports besides the transfer counters, read now.
  EngineGauges gauges() const;
  // Finds segment `name` (ours, in the store, or by host:port): fills `peer` (with its
  // descriptor, null for our own) and the source to refresh it from (null for our own).
  Status locate(const std::string& name, PeerEndpoint& peer, DescriptorSource*& source);
  Status openFileSegment(SegmentID& handle, const std::string& name);
  PeerEndpoint selfEndpoint(const std::string& segment_name) const;

  std::shared_ptr<Config> config_;
  Status init_status_;
  EngineOptions options_;
  std::string name_, rpc_host_, machine_id_, instance_id_;
  TransportAttrs local_attrs_;  // Transport::describeLocal, read once at start
  std::unique_ptr<shm::InstanceDir> local_dir_;  // our claim on same_machine/dir
  std::string local_dir_path_;                   // "" when we have none
  std::unique_ptr<shm::Beacon> beacon_;          // our live registry version, for local peers

  std::unique_ptr<cuda::Gpu> gpu_;  // before everything that may hold device memory or contexts
  MemoryRegistry registry_;
  RpcServer rpc_server_;
  std::unique_ptr<RpcClient> rpc_client_;
  std::unique_ptr<MetadataServer> embedded_store_;  // metadata/embedded_server
  std::unique_ptr<MetadataStore> store_;            // null with p2p
  std::vector<std::unique_ptr<Transport>> transports_;
  std::vector<Transport*> transport_list_;
  TransportSelector selector_;
  Metrics metrics_;
  std::unique_ptr<MetricsEndpoint::Member> metrics_endpoint_;  // /metrics (metrics/port)
  std::unique_ptr<FileSegments> files_;
  std::unique_ptr<SegmentTable> segments_;
  std::unique_ptr<PeerDirectory> directory_;
  std::unique_ptr<LocalMemory> memory_;
  std::unique_ptr<BatchTable> batches_;
  std::unique_ptr<Notifications> notifications_;
  std::unique_ptr<Submitter> submitter_;
  std::unique_ptr<StreamOrdered> stream_ordered_;
  std::unique_ptr<Publisher> publisher_;  // null with p2p
  std::atomic<bool> started_{false};      // parts wired; localChanged() may publish
};

}  // namespace ferry
