#include "transport/peer_version.h"

#include <atomic>

namespace ferry {

Status PeerControlPage::check(TransportContext& ctx, const PeerEndpoint& peer) {
  if (!peer.desc || peer.desc->shm_control.empty()) return Status::OK();
  const SegmentDescriptor& desc = *peer.desc;
  if (!page_) {
    // The page lives as long as the peer engine: no page, no engine (or none we may see).
    auto m = std::make_unique<shm::Mapping>();
    Status st = m->open(desc.shm_control, false);
    if (!st.ok() || m->size() < sizeof(uint64_t))
      return Status::Unavailable("segment '" + desc.name + "' is not reachable through shared memory: " +
                                 (st.ok() ? "control page too small" : st.message()));
    page_ = std::move(m);
  }
  uint64_t live = reinterpret_cast<const std::atomic<uint64_t>*>(page_->base())->load(std::memory_order_acquire);
  if (live == shm::kEngineGone) return Status::Unavailable("segment '" + desc.name + "' has shut down");
  // Registrations changed since the descriptor was read: have it refreshed first, so a
  // removed or re-permissioned buffer or file is not touched (no target checks on this
  // path). A descriptor the engine re-read for this very submit is accepted even if the
  // registry moved again since: under constant churn equality would never hold.
  if (live != desc.version && !peer.just_refreshed) {
    ctx.onPeerEpoch(peer.host, peer.port, live);
    return Status::Unavailable("segment '" + desc.name + "' changed (version " +
                               std::to_string(desc.version) + " -> " + std::to_string(live) + ")");
  }
  return Status::OK();
}

}  // namespace ferry
