// The segments this engine opened: one entry per name, reference-counted by openSegment /
// closeSegment. An entry holds the peer as last resolved (an immutable snapshot swapped on
// refresh), its endpoints (one per transport, made on first use and dropped when the peer
// restarts or the entry goes) and the routes built from them.
//
// Lock order: SegmentTable::mu_ -> SegmentEntry::mu. Neither is held across network I/O.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/route.h"
#include "core/selector.h"
#include "ferry/status.h"
#include "ferry/types.h"
#include "model/peer.h"

namespace ferry {

class DescriptorSource;

struct SegmentEntry {
  SegmentID id = 0;
  std::string name;
  std::string base_name;  // the segment whose descriptor is read (name without "#file")
  std::string file_name;  // a peer's exposed file ("" for memory and private file segments)
  bool is_self = false;   // our own segment; fixed for the entry's life
  bool is_file = false;   // a file segment; fixed for the entry's life
  // Where its descriptor is refreshed from (null for our own segment).
  DescriptorSource* source = nullptr;
  int refs = 0;  // guarded by the table's lock
  // The peer answered with a registry version other than desc's: refresh before next use.
  std::atomic<bool> stale{false};
  // The newest registry version the current instance reported (wire epoch, beacon); a
  // descriptor re-read for a retry must be at least this new.
  std::atomic<uint64_t> newest_reported{0};

  std::mutex mu;  // guards the fields below
  std::shared_ptr<const PeerEndpoint> peer;
  uint32_t reachable = 0;  // TransportSelector::reachable(*peer)
  uint32_t unusable = 0;   // TransportSelector::unusable(*peer, unusable_why)
  std::vector<std::string> unusable_why;
  std::vector<std::shared_ptr<Endpoint>> endpoints;  // by transport index; null until used
  std::vector<std::shared_ptr<Route>> routes;        // built so far, by candidate order
  // Downgrades toward this segment, said at most once per 10 s (its routes share it).
  const std::shared_ptr<log::RateLimit> downgrade_log = std::make_shared<log::RateLimit>(1, std::chrono::seconds(10));

  /// The cached descriptor (peer->desc); null for our own segment. Caller holds mu.
  const SegmentDescriptor* desc() const { return peer->desc.get(); }
  /// The current snapshot (takes mu).
  std::shared_ptr<const PeerEndpoint> snapshot() {
    std::lock_guard lock(mu);
    return peer;
  }
};

class SegmentTable {
 public:
  SegmentTable(const TransportSelector& selector, size_t max_failover)
      : selector_(selector), max_failover_(max_failover) {}

  /// Opens `name` (or takes another reference to it), with the peer as resolved. A newer
  /// descriptor replaces the cached one.
  Status open(const std::string& name, PeerEndpoint peer, const std::string& file_name,
              DescriptorSource* source, SegmentID& handle);
  /// Drops a reference; the entry (and its endpoints) go with the last. Returns the entry
  /// that went, if it did.
  Status close(SegmentID handle, std::shared_ptr<SegmentEntry>* closed = nullptr);
  std::shared_ptr<SegmentEntry> find(SegmentID id);
  /// Entries open now.
  size_t size();
  /// Runs `fn` on every entry, under the table's lock (fn may take an entry's lock).
  void forEach(const std::function<void(SegmentEntry&)>& fn);
  /// Drops every entry (engine shutdown: before the transports go).
  void clear();

  /// Swaps in a new peer snapshot (not an older view of the instance held: reads of a peer
  /// may finish out of order): reachability and routes are rebuilt; a new instance
  /// (restart) drops the old one's endpoints, returned for the caller to cancel once it has
  /// released seg.mu (canceling completes slices: callbacks run under no segment lock).
  /// Caller holds seg.mu.
  [[nodiscard]] std::vector<std::shared_ptr<Endpoint>> replacePeerLocked(SegmentEntry& seg,
                                                                          std::shared_ptr<const PeerEndpoint> peer);
  /// Cancels endpoints that replacePeerLocked retired (no lock held).
  static void cancel(std::vector<std::shared_ptr<Endpoint>> retired);
  /// The route for `order` toward the entry's peer, made (with its endpoints) on first use.
  /// Caller holds seg.mu.
  Status routeLocked(SegmentEntry& seg, const TransportSelector::Order& order, bool pinned,
                     std::shared_ptr<Route>& out);

 private:
  const TransportSelector& selector_;
  const size_t max_failover_;
  std::mutex mu_;  // guards the maps and refcounts; -> SegmentEntry::mu (docs/locking.md)
  std::unordered_map<SegmentID, std::shared_ptr<SegmentEntry>> segments_;
  std::unordered_map<std::string, SegmentID> ids_;  // by name
  SegmentID next_id_ = 1;
};

}  // namespace ferry
