// Same-machine transports (shm, file) move bytes without asking the peer, so no ack carries
// its registry version back; they read it from the peer's control page (a shared-memory page
// the peer engine keeps current) before touching what its descriptor promises.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/shm_file.h"
#include "transport/transport.h"

namespace ferry {

class PeerVersionCheck {
 public:
  /// OK when peer.desc is still current, or the peer has no control page. Unavailable when
  /// the peer shut down or cannot be seen through shared memory, or when its registrations
  /// changed — then ctx.onPeerEpoch() is told, so the engine refreshes and resubmits.
  Status check(TransportContext& ctx, const PeerEndpoint& peer);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<shm::Mapping>> pages_;  // by peer instance id
};

}  // namespace ferry
