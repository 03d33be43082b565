// The one interface between the engine core and a transport (cf. UCX's uct_iface_ops).
// A transport moves slices between this engine's registered memory and a peer segment.
// Core never names a concrete transport; transports are created from the table in
// transport_registry.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/descriptor.h"
#include "core/file_table.h"
#include "core/memory_registry.h"
#include "ferry/config.h"
#include "ferry/status.h"

namespace ferry {

class RpcServer;

/// Where a peer segment lives, as the transports need it.
struct PeerEndpoint {
  std::string segment_name;
  std::string host;
  uint16_t port = 0;
  std::string machine_id;
  bool is_self = false;  // the segment is this engine
  // The peer's descriptor as last read (null for our own segment); replaced, never changed.
  std::shared_ptr<const SegmentDescriptor> desc;
  // Set on the engine's retry after re-reading desc because the peer changed: transports
  // that check the peer's live version accept desc as current for that submit.
  bool just_refreshed = false;
  // Set for a file segment: the file it is (ids and length as the owner published them).
  // Memory transports do not reach such a segment; target offsets are file offsets.
  std::shared_ptr<const FileDesc> file;
};

struct TransportCaps {
  bool reaches_self = false;        // can serve the engine's own segment
  bool reaches_same_machine = false;
  bool reaches_remote = false;      // other machines
};

/// What a transport may use of its engine.
class TransportContext {
 public:
  virtual ~TransportContext() = default;
  virtual const Config& config() const = 0;
  virtual MemoryRegistry& registry() = 0;
  virtual RpcServer& rpcServer() = 0;
  /// Files this engine serves as file segments.
  virtual FileTable& files() = 0;
  /// This machine's id (same value in a same-machine peer's descriptor).
  virtual const std::string& machineId() const = 0;
  /// A peer at host:port answered with registry version `epoch` (it differs from the last
  /// one this connection saw). Descriptors of an older version are refreshed before use.
  virtual void onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  virtual TransportCaps caps() const = 0;

  /// Starts threads and installs RPC handlers (before the RPC server starts).
  virtual Status start(TransportContext& ctx) = 0;
  /// Stops: pending slices complete as CANCELED; no callback runs after it returns.
  virtual void stop() = 0;

  virtual bool canReach(const PeerEndpoint& peer) const = 0;
  /// Largest slice this transport wants; the engine cuts requests to it.
  virtual uint64_t sliceSize() const = 0;

  /// Optional hooks when local memory (un)registers (e.g. pinning, keys).
  virtual Status registerMemory(const BufferDesc&) { return Status::OK(); }
  virtual Status unregisterMemory(const BufferDesc&) { return Status::OK(); }

  /// Takes the slices: OK means each will be completed through completeSlice() exactly
  /// once (possibly before this returns); an error means none was taken.
  virtual Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) = 0;

  /// Optional: abandon what is in flight to a peer.
  virtual Status cancel(const PeerEndpoint&) { return Status::NotSupported("cancel"); }

  /// Optional: runs queued work that the calling thread submitted on this thread, until
  /// `done()` is true or none is left, and says whether it did any. A thread waiting for its
  /// batch lends itself this way (cf. UCX's progress) instead of sleeping while workers do
  /// the work on the same cores.
  virtual bool progress(const std::function<bool()>& /*done*/) { return false; }
};

/// Every transport enabled in config (transports/<name>/enable), in preference order.
std::vector<std::unique_ptr<Transport>> createTransports(const Config& config);

}  // namespace ferry
