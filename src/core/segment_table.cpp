#include "core/segment_table.h"

#include "common/log.h"

namespace ferry {

namespace {
constexpr size_t kMaxCachedRoutes = 32;  // orders seen per segment; more are built per request
}

Status SegmentTable::open(const std::string& name, PeerEndpoint peer, const std::string& file_name,
                          DescriptorSource* source, SegmentID& handle) {
  if (peer.desc) {
    peer.machine_id = peer.desc->machine_id;
    if (!file_name.empty())
      if (const FileDesc* f = peer.desc->findFile(file_name)) peer.file = std::make_shared<const FileDesc>(*f);
  }
  auto snapshot = std::make_shared<const PeerEndpoint>(std::move(peer));
  if (selector_.reachable(*snapshot) == 0)
    return Status::Unavailable("no transport can reach segment '" + name + "'");
  std::vector<std::shared_ptr<Endpoint>> retired;
  std::unique_lock lock(mu_);
  if (auto it = ids_.find(name); it != ids_.end()) {
    auto& seg = segments_[it->second];
    ++seg->refs;
    if (snapshot->desc) {  // a fresher view of the peer than the cached one
      std::lock_guard slock(seg->mu);
      retired = replacePeerLocked(*seg, std::move(snapshot));
    }
    handle = seg->id;
    lock.unlock();
    cancel(std::move(retired));
    return Status::OK();
  }
  auto seg = std::make_shared<SegmentEntry>();
  seg->id = next_id_++;
  seg->name = name;
  seg->refs = 1;
  seg->source = source;
  seg->is_self = snapshot->is_self;
  seg->is_file = snapshot->file != nullptr;
  seg->file_name = file_name;
  seg->base_name = file_name.empty() ? name : name.substr(0, name.size() - file_name.size() - 1);
  seg->endpoints.resize(selector_.transports().size());
  {
    std::lock_guard slock(seg->mu);
    retired = replacePeerLocked(*seg, std::move(snapshot));  // none: a new entry has no endpoints
  }
  segments_[seg->id] = seg;
  ids_[name] = seg->id;
  handle = seg->id;
  return Status::OK();
}

Status SegmentTable::close(SegmentID handle, std::shared_ptr<SegmentEntry>* closed) {
  std::shared_ptr<SegmentEntry> gone;  // destroyed after the lock: it may hold endpoints
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(handle);
    if (it == segments_.end()) return Status::NotFound("unknown segment handle " + std::to_string(handle));
    if (--it->second->refs == 0) {
      gone = it->second;
      ids_.erase(gone->name);
      segments_.erase(it);
    }
  }
  if (closed) *closed = gone;
  return Status::OK();
}

size_t SegmentTable::size() {
  std::lock_guard lock(mu_);
  return segments_.size();
}

std::shared_ptr<SegmentEntry> SegmentTable::find(SegmentID id) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(id);
  return it == segments_.end() ? nullptr : it->second;
}

void SegmentTable::forEach(const std::function<void(SegmentEntry&)>& fn) {
  std::lock_guard lock(mu_);
  for (auto& [id, seg] : segments_) fn(*seg);
}

void SegmentTable::clear() {
  std::unordered_map<SegmentID, std::shared_ptr<SegmentEntry>> gone;
  {
    std::lock_guard lock(mu_);
    gone.swap(segments_);
    ids_.clear();
  }
}

std::vector<std::shared_ptr<Endpoint>> SegmentTable::replacePeerLocked(SegmentEntry& seg,
                                                                       std::shared_ptr<const PeerEndpoint> peer) {
  // Reads of one peer may finish out of order (a reopen, refreshes under churn): an older
  // view of the instance held must not replace the newer, or a submit routes on a version
  // the peer already left behind.
  const SegmentDescriptor* held = seg.peer ? seg.peer->desc.get() : nullptr;
  if (held && peer->desc && held->instance_id == peer->desc->instance_id && peer->desc->version < held->version)
    return {};
  const bool restarted = seg.peer && seg.peer->desc && peer->desc &&
                         seg.peer->desc->instance_id != peer->desc->instance_id;
  seg.peer = std::move(peer);
  seg.reachable = selector_.reachable(*seg.peer);
  seg.unusable = selector_.unusable(*seg.peer, seg.unusable_why);
  seg.routes.clear();  // routes carry the old snapshot
  std::vector<std::shared_ptr<Endpoint>> retired;
  if (restarted) {
    seg.newest_reported.store(0, std::memory_order_release);  // versions start over
    // What the old instance held here (connections, mappings) is of no use now, and slices
    // still queued for it point at memory that is gone: the caller cancels them.
    for (auto& e : seg.endpoints)
      if (e) retired.push_back(std::move(e));
    seg.endpoints.assign(seg.endpoints.size(), nullptr);
  }
  return retired;
}

void SegmentTable::cancel(std::vector<std::shared_ptr<Endpoint>> retired) {
  for (auto& e : retired) e->cancel();
}

Status SegmentTable::routeLocked(SegmentEntry& seg, const TransportSelector::Order& order, bool pinned,
                                 std::shared_ptr<Route>& out) {
  for (const auto& r : seg.routes) {
    if (r->pinned != pinned || r->candidates.size() != order.size()) continue;
    bool same = true;
    for (size_t k = 0; k < order.size() && same; ++k)
      same = r->candidates[k].transport == selector_.transports()[order[k]];
    if (same) {
      out = r;
      return Status::OK();
    }
  }
  auto route = std::make_shared<Route>();
  route->peer = seg.peer;
  route->pinned = pinned;
  route->strict = selector_.strict();
  route->downgrade_log = seg.downgrade_log;
  for (uint8_t i : order) {
    Transport* t = selector_.transports()[i];
    if (!seg.endpoints[i]) FERRY_RETURN_IF_ERROR(t->connect(*seg.peer, seg.endpoints[i]));
    route->candidates.push_back({t, seg.endpoints[i]});
    route->transport_index.push_back(i);
  }
  route->finish(route->strict ? 0 : max_failover_);
  if (seg.routes.size() < kMaxCachedRoutes) seg.routes.push_back(route);
  out = std::move(route);
  return Status::OK();
}

}  // namespace ferry
