// A same-machine version beacon. Transports that move bytes without asking the peer (shm
// copies into its mappings, file opens its files) get no ack carrying the peer's registry
// version. Instead each such transport keeps a one-page shared-memory file holding this
// engine's live registry version (LocalBeacon), names it in its descriptor attributes, and
// peers read it before touching what the cached descriptor promises (PeerBeacon).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/shm_file.h"
#include "ferry/status.h"
#include "model/peer.h"

namespace ferry {

/// Our beacon: created at start, updated on every registration change, marked gone when
/// the transport stops (peers then stop at once), removed when destroyed.
class LocalBeacon {
 public:
  ~LocalBeacon();
  Status create(uint64_t version);
  void set(uint64_t version);
  void markGone();
  /// The shared-memory name peers open ("" before create()).
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::atomic<uint64_t>* page_ = nullptr;
};

/// A peer instance's beacon, mapped on first use. Lives in the transport's endpoint for that
/// peer and is used under the endpoint's lock (no lock of its own).
class PeerBeacon {
 public:

  /// OK when peer.desc is still current, or the peer publishes no beacon (`beacon_name`
  /// empty). Unavailable when the peer shut down or cannot be seen through shared memory,
  /// or when its registrations changed: then `on_change` is told, so the engine refreshes
  /// and resubmits. A just-refreshed descriptor passes if it is no older than
  /// peer.refreshed_over (a lagging metadata store must not hand back a buffer the peer has
  /// already removed).
  Status check(const PeerEndpoint& peer, const std::string& beacon_name,
               const std::function<void(uint64_t)>& on_change);

 private:
  std::unique_ptr<shm::Mapping> page_;
};

}  // namespace ferry
