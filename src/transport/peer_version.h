// Same-machine transports (shm, file) move bytes without asking the peer, so no ack carries
// its registry version back; they read it from the peer's control page (a shared-memory page
// the peer engine keeps current) before touching what its descriptor promises.
#pragma once

#include <memory>

#include "common/shm_file.h"
#include "transport/transport.h"

namespace ferry {

/// One peer instance's control page, mapped on first use. Lives in the transport's per-peer
/// state and is used under that state's lock (no lock or lookup of its own).
class PeerControlPage {
 public:
  /// OK when peer.desc is still current, or the peer has no control page. Unavailable when
  /// the peer shut down or cannot be seen through shared memory, or when its registrations
  /// changed — then ctx.onPeerEpoch() is told, so the engine refreshes and resubmits.
  Status check(TransportContext& ctx, const PeerEndpoint& peer);

 private:
  std::unique_ptr<shm::Mapping> page_;
};

}  // namespace ferry
