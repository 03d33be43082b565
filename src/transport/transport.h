// The one interface between the engine core and a transport (cf. UCX's uct_iface_ops,
// libfabric's fi_provider). A transport moves slices between this engine's registered
// memory and a peer segment. Core never names a concrete transport: it creates them from
// the registry (registry.h) and talks to them only through this header. Transports never
// include core; what they may use of the engine is TransportContext.
//
// Lifecycle: declareOptions (static, in the registry) -> start -> [allocate, registerMemory,
// connect, Endpoint::submit, progress]* -> stop. Per-peer state lives in Endpoint objects:
// the engine's segment entry owns them and drops them when the segment closes or the peer
// restarts (a new instance), so nothing a transport holds for a peer outlives its use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/cuda_driver.h"
#include "control/rpc_server.h"
#include "ferry/config.h"
#include "ferry/status.h"
#include "ferry/types.h"
#include "model/buffer.h"
#include "model/file_table.h"
#include "model/memory_registry.h"
#include "model/peer.h"
#include "model/slice.h"

namespace ferry {

/// What a transport can do, read by the selector and printed by `ferry-info --selection`.
struct TransportCaps {
  MemoryKinds local_kinds = kHostMemory;   // kinds of this engine's memory it may touch
  MemoryKinds remote_kinds = kHostMemory;  // kinds of a peer's memory (or file) it may touch
  bool reaches_self = false;               // can serve the engine's own segment
  bool reaches_same_machine = false;
  bool reaches_remote = false;             // other machines
  // Memory kinds (at both ends) whose bytes it checks end to end when a task asks
  // (Task::checksum); it honours Slice::flip_byte for them.
  MemoryKinds checksum_kinds = 0;
  // Carries slices of several pieces (Slice::ranges) of host memory at both ends: it walks
  // every slice with SliceRanges. A paged transfer's pages share slices only on a route
  // whose every candidate says so; the others get one slice per page.
  bool multi_range = false;
  // Cost model: moving n bytes costs about latency_us + n / (bandwidth_GBps * 1e3) us.
  // Among transports of the same preference group (registry.h) the cheaper one goes first.
  double latency_us = 0;
  double bandwidth_GBps = 1;
  double costUs(uint64_t bytes) const {
    return latency_us + static_cast<double>(bytes) / (bandwidth_GBps * 1e3);
  }
};

/// Memory a transport allocated (allocateLocalMemory); freed when destroyed.
class Allocation {
 public:
  virtual ~Allocation() = default;
  void* addr = nullptr;
  size_t size = 0;
};

/// One peer instance as one transport sees it: its connections, mappings, queue pairs.
/// Created by Transport::connect (cheap: nothing happens on the wire until the first
/// submit), owned by the engine's segment entry and by the routes of tasks in flight, and
/// destroyed with the last of them. The destructor releases everything the endpoint holds
/// (slices still in flight complete first, as CANCELED if need be). The engine destroys
/// every endpoint before the transport that made it, so an endpoint may refer to it.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  /// Takes the slices: OK means each will be completed through completeSlice() exactly once
  /// (possibly before this returns); an error means none was taken. `peer` is the current
  /// snapshot of the peer (its descriptor may be newer than at connect, same instance).
  virtual Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) = 0;
  /// Abandons what is in flight: those slices complete as CANCELED. The engine calls it when
  /// the peer instance is gone (restarted: its memory is not where the slices point).
  virtual void cancel() {}
};

using MessageHandler = RpcServer::Handler;

/// What a transport may use of its engine.
class TransportContext {
 public:
  virtual ~TransportContext() = default;
  virtual const Config& config() const = 0;
  /// This engine's registered memory (the target side pins what a peer touches).
  virtual MemoryRegistry& registry() = 0;
  /// Files this engine serves as file segments.
  virtual FileTable& files() = 0;
  /// This machine's id (same value in a same-machine peer's descriptor).
  virtual const std::string& machineId() const = 0;
  /// This engine instance's id (new on every start; in our descriptor).
  virtual const std::string& instanceId() const = 0;
  /// The directory same-machine peers share (same_machine/dir): our shared-memory files
  /// go there, and peers' local sockets are found there ("" when it is unusable here).
  virtual const std::string& localDir() const = 0;
  /// The cluster token ("" for none): connections to peers run the handshake with it.
  virtual const std::string& authToken() const = 0;
  /// Defines message `type` on the engine's RPC server and, for a request, serves it with
  /// `handler` (null for a response type). Refused when the type is taken.
  virtual Status defineMessage(wire::MsgType type, const wire::MessageSpec& spec,
                               MessageHandler handler) = 0;
  /// A peer at host:port answered with registry version `epoch` (it differs from the last
  /// one this connection saw). Descriptors of an older version are refreshed before use.
  virtual void onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) = 0;
  /// The engine's CUDA driver (probed on first use; says why when there is none).
  virtual cuda::Gpu& gpu() = 0;
};

// A wrapping transport (fault/: a decorator around another) overrides every call here,
// optional ones included, to forward it: a call it left at its default here would hide what
// the wrapped transport says (a connection count of 0, no reason it cannot serve a peer).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  virtual TransportCaps caps() const = 0;

  /// Starts threads and defines its messages (before the RPC server starts).
  virtual Status start(TransportContext& ctx) = 0;
  /// Stops: pending slices complete as CANCELED; no callback runs after it returns.
  virtual void stop() = 0;

  /// Whether it can reach `peer` at all (kinds are checked by the selector from caps()).
  virtual bool canReach(const PeerEndpoint& peer) const = 0;
  /// Why it cannot reach `peer` although the pair should be able to (the peer offers it and
  /// a device is missing here, say): a slower transport carries the requests instead, and
  /// the engine says so. Empty when it can reach the peer, or the pair cannot use it anyway.
  virtual std::string unusableFor(const PeerEndpoint& /*peer*/) const { return ""; }
  /// Largest slice this transport wants; the engine cuts requests to it.
  virtual uint64_t sliceSize() const = 0;
  /// The per-peer object slices to `peer` go through. May return a shared one (e.g. one per
  /// peer instance, whoever asks).
  virtual Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) = 0;

  /// Optional: allocates `size` bytes at `location` in a way this transport prefers (e.g.
  /// a shared-memory file a same-machine peer maps). NotSupported: ask the next one.
  virtual Status allocate(size_t /*size*/, const Location& /*location*/,
                          std::unique_ptr<Allocation>& /*out*/) {
    return Status::NotSupported("allocation");
  }
  /// Optional: local memory is registering (pinning, keys). `attrs` receives this
  /// transport's JSON for the buffer, published in the descriptor under its name ("" for
  /// none). An error fails the registration.
  virtual Status registerMemory(const BufferDesc& /*buffer*/, const MemoryOptions& /*options*/,
                                std::string& /*attrs*/) {
    return Status::OK();
  }
  virtual Status unregisterMemory(const BufferDesc&) { return Status::OK(); }
  /// Optional: JSON about the whole segment for peers (e.g. a control page), "" for none.
  virtual std::string describeLocal() const { return ""; }

  /// Optional: runs queued work that the calling thread submitted on this thread, until
  /// `done()` is true or none is left, and says whether it did any. A thread waiting for its
  /// batch lends itself this way (cf. UCX's progress) instead of sleeping while workers do
  /// the work on the same cores.
  virtual bool progress(const std::function<bool()>& /*done*/) { return false; }
  /// Optional: JSON about what it runs on now (devices, or why it is inert), for
  /// `ferry-info --transports`; "" for nothing to say.
  virtual std::string inspect() const { return ""; }
  /// Optional: how many per-peer states (endpoints, mappings, connections) it holds now,
  /// for introspection and the tests that prove they do not grow.
  virtual size_t peerStateCount() const { return 0; }
  /// Connections it holds open now (0 for those that have none).
  virtual size_t connectionCount() const { return 0; }
};

}  // namespace ferry
