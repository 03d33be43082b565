// GPU memory of a same-machine peer, reached through CUDA IPC (the "nvlink" transport, as
// TENT names it: the copies go over NVLink where the GPUs have it, PCIe otherwise).
//
// Exporting: a GPU buffer registered read-write is exported with cuIpcGetMemHandle and the
// handle published under "nvlink" in our descriptor ({"h": handle, "a": allocation base, "id":
// buffer id, "u": device UUID}). Read-only and local-only buffers are not exported: a legacy
// IPC mapping is always writable, so their peers go through a transport whose target checks.
//
// Importing: the handle a peer hands out is a capability for its own memory only, but which
// handle belongs to which buffer, and the bounds, are claims. So, as shm does, the endpoint
// attaches to the peer through our shared local socket (LocalPeer: kernel-checked identity,
// the token handshake, the peer's own descriptor), takes handles only from that descriptor,
// opens each allocation once per process (IpcCache) on the peer's device (by UUID), and
// checks every slice against the mapped range's size as the driver reports it.
//
// Copies: per device a non-blocking stream; a submit's copies are enqueued and an event
// recorded after them; the device's completion thread waits for events in order and completes
// their slices — a write completes when its bytes are in the peer's GPU memory. Local host
// memory works too (the driver stages pageable memory); a peer's host memory is shm's or tcp's.
//
// Locks: NvlinkEndpoint::mu_ (held across local-channel calls, bounded, like shm's), then
// IpcCache's, are taken in that order; DeviceQueue::mu is a leaf (copies are enqueued under
// it so that their events are waited for in stream order). No slice completes under a lock.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/options.h"
#include "transport/endpoint_cache.h"
#include "transport/nvlink/ipc_cache.h"
#include "transport/transport.h"

namespace ferry {

class NvlinkEndpoint;

class NvlinkTransport : public Transport {
 public:
  NvlinkTransport() = default;
  ~NvlinkTransport() override { stop(); }
  static void declareOptions(OptionTable& table);

  const char* name() const override { return "nvlink"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  Status registerMemory(const BufferDesc& buffer, const MemoryOptions& options, std::string& attrs) override;
  std::string inspect() const override;
  size_t peerStateCount() const override { return endpoints_.liveCount(); }

 private:
  friend class NvlinkEndpoint;
  /// One copy: `dst` <- `src`, both addresses this process can name (host, GPU, mapped).
  struct Copy {
    Slice* slice = nullptr;
    uint64_t dst = 0, src = 0;
  };
  /// What keeps a submit's target memory and peer state alive until its copies are done.
  struct Holds {
    std::shared_ptr<NvlinkEndpoint> endpoint;
    std::vector<std::shared_ptr<const nvlink::IpcMapping>> mappings;
  };
  struct Pending {
    cuda::Event event = nullptr;
    std::vector<Slice*> slices;
    Holds holds;
  };
  // One device's stream, its events and the thread that completes them.
  struct DeviceQueue {
    int ordinal = 0;
    std::mutex mu;
    std::condition_variable cv;
    cuda::Stream stream = nullptr;
    std::vector<cuda::Event> spare;  // recorded events come back here
    std::deque<Pending> pending;
    bool stopping = false;
    std::thread completer;
  };

  // Enqueues copies on `ordinal`'s stream; their slices complete later (or now, failed).
  void dispatch(int ordinal, std::vector<Copy> copies, Holds holds);
  Status queueFor(int ordinal, DeviceQueue*& out);
  void completeLoop(DeviceQueue& q);
  // Completes q's submits in order until it stops and is empty.
  void drain(DeviceQueue& q);
  // Our ordinal of the device with `uuid` (hex), or -1.
  int ordinalOfUuid(const std::string& uuid);

  TransportContext* ctx_ = nullptr;
  uint64_t slice_size_ = 64 << 20;
  EndpointCache<NvlinkEndpoint> endpoints_;
  mutable std::mutex mu_;  // guards queues_ and uuids_; a leaf
  std::vector<std::unique_ptr<DeviceQueue>> queues_;  // by ordinal, made on first use
  std::vector<std::string> uuids_;                    // by ordinal (hex), read on first use
  bool stopped_ = false;
};

}  // namespace ferry
