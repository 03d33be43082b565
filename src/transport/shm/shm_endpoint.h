// What this process holds of one same-machine peer instance for the shm transport: the
// proven channel to it (LocalPeer: its own descriptor, its beacon, its pid), the mappings of
// the shared files it handed us, and the shm attributes of its descriptor, parsed once per
// descriptor. Dropped with the last segment entry or queued copy that uses it, which unmaps
// the peer's files. mu_ is a leaf except that it is held across calls on the local channel
// (bounded by connect_timeout_ms; only submits to this peer wait); the engine is told of a
// changed peer after it is released, and no copy runs under it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/shm_file.h"
#include "transport/local_peer.h"
#include "transport/shm/shm_transport.h"

namespace ferry {

class ShmEndpoint : public Endpoint, public std::enable_shared_from_this<ShmEndpoint> {
 public:
  explicit ShmEndpoint(ShmTransport& transport)
      : transport_(transport), local_(*transport.ctx_, shm_wire::messages(), "shm") {}
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override { transport_.cancelQueued(this); }

  /// Cross-memory attach was refused for this peer: true the first time (say so once).
  bool markAttachDenied() { return !xma_denied_.exchange(true); }

 private:
  // The shm attributes of one buffer of the peer's own descriptor.
  struct SharedFile {
    std::string name;  // "" : not in a shared file
    uint64_t offset = 0;
  };
  // Re-reads the shm attributes when the peer's descriptor changed, and drops mappings of
  // files it no longer lists (freed memory stays alive while mapped). Caller holds mu_.
  void indexLocked(const std::shared_ptr<const SegmentDescriptor>& desc);
  // The peer's file mapped here (asked of the peer once), or null when it cannot be.
  std::shared_ptr<shm::Mapping> mappingLocked(const SegmentDescriptor& desc, const SharedFile& f, bool writable);
  // Attaches, checks the peer and resolves the slices under mu_, then dispatches them;
  // `reported`: a version the engine must hear of (onPeerEpoch), 0 for none.
  Status prepare(const PeerEndpoint& peer, Slice* const* slices, size_t count, uint64_t& reported);
  // Where a slice's target bytes are (in `mapping`, or by pid), every piece of it inside `b`
  // (the first piece's buffer); NotSupported when neither path can reach them or the pieces
  // lie in several buffers (tcp checks each on its own).
  Status resolve(const SegmentDescriptor& desc, const BufferDesc& b, const SharedFile& f,
                 const shm::Mapping* mapping, Slice* s, ShmTransport::Work& out);

  ShmTransport& transport_;
  std::mutex mu_;  // guards everything below (see above)
  LocalPeer local_;
  // The descriptor the fields below were read from (held: its address cannot be reused).
  std::shared_ptr<const SegmentDescriptor> indexed_;
  std::vector<SharedFile> files_;  // parallel to indexed_->buffers
  std::map<std::string, std::shared_ptr<shm::Mapping>> mappings_;  // by file name
  std::atomic<bool> xma_denied_{false};
};

}  // namespace ferry
