#include "transport/beacon.h"

#include <new>

namespace ferry {

LocalBeacon::~LocalBeacon() {
  if (page_) shm::destroy(name_, page_, 4096);
}

Status LocalBeacon::create(uint64_t version) {
  void* page = nullptr;
  FERRY_RETURN_IF_ERROR(shm::create(4096, name_, &page));
  page_ = new (page) std::atomic<uint64_t>(version);
  return Status::OK();
}

void LocalBeacon::set(uint64_t version) {
  if (page_) page_->store(version, std::memory_order_release);
}

void LocalBeacon::markGone() {
  if (page_) page_->store(shm::kEngineGone, std::memory_order_release);
}

Status PeerBeacon::check(const PeerEndpoint& peer, const std::string& beacon_name,
                         const std::function<void(uint64_t)>& on_change) {
  if (!peer.desc || beacon_name.empty()) return Status::OK();
  const SegmentDescriptor& desc = *peer.desc;
  if (!page_) {
    // The page lives as long as the peer engine: no page, no engine (or none we may see).
    auto m = std::make_unique<shm::Mapping>();
    Status st = m->open(beacon_name, false);
    if (!st.ok() || m->size() < sizeof(uint64_t))
      return Status::Unavailable("segment '" + desc.name + "' is not reachable through shared memory: " +
                                 (st.ok() ? "control page too small" : st.message()));
    page_ = std::move(m);
  }
  uint64_t live = reinterpret_cast<const std::atomic<uint64_t>*>(page_->base())->load(std::memory_order_acquire);
  if (live == shm::kEngineGone) {
    // The instance we hold a descriptor of is gone: whoever answers at its address now is
    // someone else (a restart), to be read afresh.
    on_change(kPeerGone);
    return Status::Unavailable("segment '" + desc.name + "' has shut down");
  }
  // Registrations changed since the descriptor was read: have it refreshed first, so a
  // removed or re-permissioned buffer or file is not touched (no target checks on this
  // path).
  bool current = live == desc.version || (peer.just_refreshed && desc.version >= peer.refreshed_over);
  if (!current) {
    on_change(live);
    return Status::Unavailable("segment '" + desc.name + "' changed (version " +
                               std::to_string(desc.version) + " -> " + std::to_string(live) + ")");
  }
  return Status::OK();
}

}  // namespace ferry
