// Shared-memory transport for peers on the same machine (same machine id). A buffer the
// peer backs with a shared-memory file (allocateLocalMemory does) is mapped once and copied
// to and from directly: read-only buffers are mapped read-only, local-only ones never. Other
// registered memory is reached with cross-memory attach (process_vm_readv/writev) where the
// kernel allows it; when it does not, the slice fails with NotSupported and the selector
// moves it to the next transport (tcp), with one log line per peer.
//
// Small submits are copied by the submitting thread; larger ones are spread over copy
// workers (transports/shm/copy_threads), one slice at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/shm_file.h"
#include "transport/peer_version.h"
#include "transport/transport.h"

namespace ferry {

class ShmTransport : public Transport {
 public:
  ShmTransport();
  ~ShmTransport() override;

  const char* name() const override { return "shm"; }
  TransportCaps caps() const override { return {false, true, false}; }
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  bool progress() override;

 private:
  // What this process holds of one peer instance.
  struct PeerState {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<shm::Mapping>> mappings;  // by shm name
    const SegmentDescriptor* pruned_for = nullptr;  // descriptor the mappings were checked against
    PeerControlPage control;                         // the peer's live registry version
    std::atomic<bool> xma_denied{false};
  };
  struct Work {
    Slice* slice = nullptr;
    uint8_t* mapped = nullptr;              // target bytes in a mapping, or null: use pid
    std::shared_ptr<shm::Mapping> mapping;  // keeps `mapped` valid
    PeerState* peer = nullptr;              // peers_ keeps it for the transport's life
    int64_t pid = 0;
  };

  std::shared_ptr<PeerState> peerState(const SegmentDescriptor& desc);
  // The peer's file behind buffer b mapped here (once), or null when it cannot be mapped.
  std::shared_ptr<shm::Mapping> mappingFor(PeerState& ps, const SegmentDescriptor& desc,
                                           const BufferDesc& b);
  // Where a slice's target bytes are (in `mapping`, or by pid); NotSupported when neither
  // path can reach them.
  Status resolve(const SegmentDescriptor& desc, PeerState& ps, const BufferDesc& b,
                 const std::shared_ptr<shm::Mapping>& mapping, Slice* s, Work& out);
  void copy(Work& w);
  // Takes the next queued copy (false when none); caller holds mu_.
  bool takeLocked(Work& out);
  void workerLoop();

  TransportContext* ctx_ = nullptr;
  uint64_t slice_size_ = 1 << 20;
  uint64_t inline_bytes_ = 64 << 10;
  bool cross_memory_attach_ = true;
  size_t copy_threads_ = 1;

  std::mutex peers_mu_;
  std::map<std::string, std::shared_ptr<PeerState>> peers_;  // by instance id

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ferry
