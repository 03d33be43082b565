// What this process holds of one same-machine peer instance for the shm transport: its
// beacon, the mappings of its shared-memory files, and the shm attributes of its current
// descriptor, parsed once per descriptor. Dropped with the last segment entry or queued
// copy that uses it, which unmaps the peer's files. mu_ is a leaf: the engine is told of a
// changed peer after it is released, and no copy runs under it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/shm_file.h"
#include "transport/beacon.h"
#include "transport/shm/shm_transport.h"

namespace ferry {

class ShmEndpoint : public Endpoint, public std::enable_shared_from_this<ShmEndpoint> {
 public:
  explicit ShmEndpoint(ShmTransport& transport) : transport_(transport) {}
  ~ShmEndpoint() override;
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override { transport_.cancelQueued(this); }

  /// Cross-memory attach was refused for this peer: true the first time (say so once).
  bool markAttachDenied() { return !xma_denied_.exchange(true); }

 private:
  // The shm attributes of one buffer of the current descriptor.
  struct SharedFile {
    std::string name;  // "" : not in a shared-memory file
    uint64_t offset = 0;
  };
  // Re-reads the descriptor's shm attributes when it changed, and drops mappings of files
  // it no longer lists (freed memory stays alive while mapped). Caller holds mu_.
  void indexLocked(const std::shared_ptr<const SegmentDescriptor>& desc);
  // False once the peer process has exited (it may have been killed: its mappings are then
  // orphaned memory nobody reads). Caller holds mu_.
  bool peerAliveLocked() const;
  // The peer's file mapped here (once), or null when it cannot be mapped.
  std::shared_ptr<shm::Mapping> mappingLocked(const SegmentDescriptor& desc, const BufferDesc& b,
                                              const SharedFile& f);
  // Checks the peer and resolves the slices under mu_, then dispatches them; `reported`: a
  // version the engine must hear of (onPeerEpoch), 0 for none.
  Status prepare(const PeerEndpoint& peer, Slice* const* slices, size_t count, uint64_t& reported);
  // Where a slice's target bytes are (in `mapping`, or by pid); NotSupported when neither
  // path can reach them.
  Status resolve(const SegmentDescriptor& desc, const BufferDesc& b, const SharedFile& f,
                 const std::shared_ptr<shm::Mapping>& mapping, Slice* s, ShmTransport::Work& out);

  ShmTransport& transport_;
  std::mutex mu_;  // guards everything below; a leaf, never held across a copy
  PeerBeacon beacon_;
  // The descriptor the fields below were read from (held: its address cannot be reused).
  std::shared_ptr<const SegmentDescriptor> indexed_;
  std::vector<SharedFile> files_;  // parallel to indexed_->buffers
  int64_t pid_ = 0;
  // The peer process, to tell a killed one (its beacon never says "gone") from a live one;
  // -1 where pidfd_open is not available.
  int pidfd_ = -1;
  std::string beacon_name_;
  std::map<std::string, std::shared_ptr<shm::Mapping>> mappings_;  // by shm name
  std::atomic<bool> xma_denied_{false};
};

}  // namespace ferry
