// Where peers' descriptors come from, and keeping cached ones current. Two sources behind
// one interface (cf. TENT's Peer/CentralSegmentRegistry): the peer's own RPC server (p2p,
// also for imported segments) and the metadata store. Staleness: a peer's answer carrying
// another registry version (wire epoch, beacon) marks its entries stale; the next use
// refreshes them first.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "control/rpc_client.h"
#include "core/segment_table.h"
#include "metadata/metadata_store.h"
#include "model/peer.h"

namespace ferry {

class DescriptorSource {
 public:
  virtual ~DescriptorSource() = default;
  /// Finds segment `name`: where it is (host, port in `peer`) and its descriptor.
  virtual Status locate(const std::string& name, PeerEndpoint& peer, SegmentDescriptor& desc) = 0;
  /// Reads the current descriptor of segment `name`, last seen at `peer`.
  virtual Status read(const std::string& name, const PeerEndpoint& peer, SegmentDescriptor& desc) = 0;
  /// Whether a segment found here may move (a restart on another port): follow its descriptor.
  virtual bool followsMoves() const = 0;
};

/// Asks the peer itself (the segment name is its host:port).
class PeerRpcSource : public DescriptorSource {
 public:
  explicit PeerRpcSource(RpcClient& rpc) : rpc_(rpc) {}
  Status locate(const std::string& name, PeerEndpoint& peer, SegmentDescriptor& desc) override;
  Status read(const std::string& name, const PeerEndpoint& peer, SegmentDescriptor& desc) override;
  bool followsMoves() const override { return false; }

 private:
  RpcClient& rpc_;
};

/// Looks segments up by name in the metadata store.
class StoreSource : public DescriptorSource {
 public:
  StoreSource(MetadataStore& store, std::string cluster) : store_(store), cluster_(std::move(cluster)) {}
  Status locate(const std::string& name, PeerEndpoint& peer, SegmentDescriptor& desc) override;
  Status read(const std::string& name, const PeerEndpoint& peer, SegmentDescriptor& desc) override;
  bool followsMoves() const override { return true; }

 private:
  // The descriptor stored under `name`: through the store's lookup (a watched local copy,
  // when it keeps one) to find a segment, straight from the store to refresh one.
  Status fetch(const std::string& name, bool for_lookup, SegmentDescriptor& desc);
  MetadataStore& store_;
  const std::string cluster_;
};

class PeerDirectory {
 public:
  /// `store` null: p2p only.
  PeerDirectory(RpcClient& rpc, MetadataStore* store, const std::string& cluster, SegmentTable& table);

  /// The source names are looked up in: the store if there is one, else the peers.
  DescriptorSource& names() { return store_ ? static_cast<DescriptorSource&>(*store_) : p2p_; }
  /// The peers themselves (imported segments refresh here whatever the store).
  DescriptorSource& peers() { return p2p_; }

  /// Re-reads an entry's descriptor and swaps it in (its address too, if it moved).
  Status refresh(SegmentEntry& seg);
  /// Descriptors re-read so far (a peer's registrations changed, or it moved or restarted).
  uint64_t refreshes() const { return refreshes_.load(std::memory_order_relaxed); }
  /// Marks stale every entry at host:port whose descriptor is not at `epoch`.
  void onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch);
  /// Probes a segment's RPC server: a registered name first (with a store), else host:port.
  Status probe(const std::string& segment_name);

 private:
  RpcClient& rpc_;
  PeerRpcSource p2p_;
  std::unique_ptr<StoreSource> store_;
  SegmentTable& table_;
  std::atomic<uint64_t> refreshes_{0};
};

}  // namespace ferry
