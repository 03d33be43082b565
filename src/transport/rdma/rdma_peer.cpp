#include "transport/rdma/rdma_peer.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/log.h"

namespace ferry {

using json = nlohmann::json;
using rdma::RdmaPath;
using rdma::RdmaWork;

namespace {
constexpr size_t kMaxPeerNics = 64;

bool plainName(const std::string& s) {
  return !s.empty() && s.size() <= rdma_wire::kMaxDeviceNameBytes &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
}

// The segment's rdma attributes: its NICs. Empty when absent or malformed.
std::vector<std::pair<std::string, int>> parseNics(const SegmentDescriptor& d) {
  std::vector<std::pair<std::string, int>> out;
  auto it = d.attrs.find("rdma");
  if (it == d.attrs.end()) return out;
  json j = json::parse(it->second, nullptr, false);
  if (!j.is_object() || !j.contains("devices") || !j["devices"].is_array() || j["devices"].size() > kMaxPeerNics)
    return out;
  for (const auto& n : j["devices"]) {
    if (!n.is_object() || !n.contains("name") || !n["name"].is_string()) return {};
    std::string name = n["name"].get<std::string>();
    int numa = -1;
    if (n.contains("numa") && n["numa"].is_number_integer()) numa = std::clamp(n["numa"].get<int>(), -1, 4096);
    if (!plainName(name)) return {};
    out.emplace_back(std::move(name), numa);
  }
  return out;
}

// A buffer's rkeys, one per peer NIC; empty when absent or malformed.
std::vector<int64_t> parseRkeys(const std::string& attrs, size_t nics) {
  json j = json::parse(attrs, nullptr, false);
  if (!j.is_object() || !j.contains("rkeys") || !j["rkeys"].is_array() || j["rkeys"].size() != nics) return {};
  std::vector<int64_t> keys;
  for (const auto& k : j["rkeys"]) {
    if (k.is_null()) {
      keys.push_back(-1);
    } else if (k.is_number_unsigned() && k.get<uint64_t>() <= UINT32_MAX) {
      keys.push_back(static_cast<int64_t>(k.get<uint64_t>()));
    } else {
      return {};
    }
  }
  return keys;
}
}  // namespace

bool peerHasRdmaNics(const SegmentDescriptor& d) { return !parseNics(d).empty(); }

RdmaPeer::~RdmaPeer() {
  // Our weak pointer is dead now: what the paths still hold completes as CANCELED.
  for (Pair& p : pairs_)
    if (p.path) p.path->fail(Status::Canceled("rdma: the peer endpoint is closed"));
}

std::vector<std::shared_ptr<RdmaPath>> RdmaPeer::paths() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<RdmaPath>> out;
  for (const Pair& p : pairs_)
    if (p.path) out.push_back(p.path);
  return out;
}

Status RdmaPeer::indexLocked(const PeerEndpoint& peer, std::vector<std::shared_ptr<RdmaPath>>& dropped) {
  if (indexed_ == peer.desc) return Status::OK();
  const SegmentDescriptor& d = *peer.desc;
  auto nics = parseNics(d);
  if (nics.empty()) return Status::NotSupported("'" + d.name + "' publishes no RDMA NICs");
  bool same = nics.size() == nics_.size();
  for (size_t i = 0; same && i < nics.size(); ++i) same = nics[i].first == nics_[i].name;
  if (!same) {
    for (Pair& p : pairs_)
      if (p.path) dropped.push_back(std::move(p.path));
    nics_.clear();
    for (auto& [name, numa] : nics) nics_.push_back({name, numa});
    pairs_.assign(t_.devices_.size() * nics_.size(), Pair{});
    ++generation_;  // handshakes in flight were for the old list
    cv_.notify_all();
  }
  rkeys_.assign(d.buffers.size(), {});
  for (size_t i = 0; i < d.buffers.size(); ++i) {
    const BufferDesc& b = d.buffers[i];
    auto it = b.attrs.find("rdma");
    if (it != b.attrs.end() && b.perm != kLocalReadWrite) rkeys_[i] = parseRkeys(it->second, nics_.size());
  }
  indexed_ = peer.desc;
  return Status::OK();
}

Status RdmaPeer::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.desc) return Status::NotSupported("rdma needs the peer's descriptor");
  if (check_version_.exchange(false, std::memory_order_acq_rel)) {
    // One-sided operations bring back no registry version (tcp's responses do): after a
    // refusal, ask for it. A newer one makes the engine refresh the descriptor and resubmit.
    uint64_t live = 0;
    if (t_.rpc_->call(peer.host, peer.port, wire::MsgType::kProbe, {}, nullptr, &live).ok() &&
        live != peer.desc->version && !(peer.just_refreshed && live <= peer.desc->version)) {
      t_.ctx_->onPeerEpoch(peer.host, peer.port, live);
      return Status::Unavailable("rdma: '" + peer.desc->name + "' changed its registrations (version " +
                                 std::to_string(peer.desc->version) + " -> " + std::to_string(live) + ")");
    }
  }
  Work work;
  std::vector<std::shared_ptr<RdmaPath>> dropped;
  Status st;
  {
    std::unique_lock lock(mu_);
    if (canceled_ || t_.stopping_.load(std::memory_order_acquire))
      return Status::Canceled("rdma: the peer endpoint was canceled");
    st = indexLocked(peer, dropped);
    // Resolve every slice; when one needs a path that is not up, make it (without our lock:
    // re-posts from completion threads must not wait for a handshake) and start over.
    RdmaTransport::LocalKeys local;
    while (st.ok()) {
      work.clear();
      size_t need = SIZE_MAX;
      for (size_t i = 0; i < count && st.ok() && need == SIZE_MAX; ++i)
        st = resolveLocked(slices[i], true, work, &need, local);
      if (!st.ok() || need == SIZE_MAX) break;
      connectUnlocked(lock, peer, need);
    }
  }
  for (auto& p : dropped) p->fail(Status::Unavailable("rdma: the peer's NICs changed"));
  if (!st.ok()) return st;  // nothing was posted: none taken
  for (Planned& p : work) p.path->post(std::move(p.items));
  return Status::OK();
}

Status RdmaPeer::resolveLocked(Slice* s, bool connect, Work& work, size_t* need_connect,
                               RdmaTransport::LocalKeys& local) {
  const SegmentDescriptor& d = *indexed_;
  const uint64_t addr = reinterpret_cast<uint64_t>(s->local);
  if (!local.covers(addr, s->length) && !t_.localKeys(addr, s->length, local))
    return Status::NotSupported("rdma: local range " + rangeText(addr, s->length) + " is not registered with the NICs");
  const std::vector<int64_t>& lkeys = local.lkeys;
  const int numa = local.numa;
  const BufferDesc* b = nullptr;
  FERRY_RETURN_IF_ERROR(d.findForAccess(s->remote, s->length, s->op == Request::WRITE, b));
  const std::vector<int64_t>& rkeys = rkeys_[static_cast<size_t>(b - d.buffers.data())];
  if (rkeys.empty())
    return Status::NotSupported("rdma: buffer " + rangeText(b->base, b->length) + " of '" + d.name +
                                "' has no RDMA keys");
  const size_t peers = nics_.size();
  const int64_t now = nowNs();
  // Tiers: NICs near the buffer to the rail-aligned peer NIC; those to any peer NIC; any pair.
  auto near = [&](size_t l) {
    int n = t_.devices_[l]->numaNode();
    return numa < 0 || n < 0 || n == numa;
  };
  // What this call already gave a path counts as its load (nothing is posted until all
  // slices are resolved).
  auto planned = [&](const std::shared_ptr<RdmaPath>& path) -> uint64_t {
    for (const Planned& p : work)
      if (path && p.path == path) return p.bytes;
    return 0;
  };
  for (int tier = 0; tier < 3; ++tier) {
    // The least-loaded usable pair of the tier; one not connected yet counts as empty.
    size_t best = SIZE_MAX;
    uint64_t best_load = UINT64_MAX;
    for (size_t l = 0; l < t_.devices_.size(); ++l) {
      if (lkeys[l] < 0 || (tier < 2 && !near(l))) continue;
      for (size_t p = 0; p < peers; ++p) {
        if (rkeys[p] < 0 || (tier == 0 && p != l % peers)) continue;
        Pair& pair = pairs_[l * peers + p];
        uint64_t load = planned(pair.path);
        if (pair.path && pair.path->usable()) {
          load += pair.path->load();
        } else if (!connect || pair.paused_until_ns > now || !t_.devices_[l]->usable()) {
          continue;
        }
        if (load < best_load) {
          best_load = load;
          best = l * peers + p;
        }
      }
    }
    if (best == SIZE_MAX) continue;
    Pair& pair = pairs_[best];
    if (!pair.path || !pair.path->usable()) {
      *need_connect = best;  // the caller makes it and resolves again
      return Status::OK();
    }
    const size_t l = best / peers, p = best % peers;
    auto it = std::find_if(work.begin(), work.end(), [&](const Planned& w) { return w.path == pair.path; });
    if (it == work.end()) it = work.insert(work.end(), Planned{pair.path, {}, 0});
    it->items.push_back({s, static_cast<uint32_t>(lkeys[l]), static_cast<uint32_t>(rkeys[p])});
    it->bytes += s->length;
    return Status::OK();
  }
  return Status::Unavailable("rdma: no usable path to '" + d.name + "'" +
                             (connect ? " (every NIC pair is paused after errors)" : " among those connected"));
}

void RdmaPeer::connectUnlocked(std::unique_lock<std::mutex>& lock, const PeerEndpoint& peer, size_t need) {
  if (pairs_[need].connecting) {  // someone else is making it: wait for their outcome
    const uint64_t gen = generation_;
    cv_.wait(lock, [&] { return generation_ != gen || !pairs_[need].connecting; });
    return;
  }
  // First contact with a NIC pair: make every rail-aligned path that is missing too, so a
  // path error later finds another one up (re-posts never handshake).
  const size_t peers = nics_.size();
  std::vector<size_t> todo = {need};
  for (size_t l = 0; l < t_.devices_.size(); ++l) {
    const size_t k = l * peers + l % peers;
    const Pair& p = pairs_[k];
    if (k != need && !p.connecting && (!p.path || !p.path->usable()) && p.paused_until_ns <= nowNs() &&
        t_.devices_[l]->usable())
      todo.push_back(k);
  }
  struct Attempt {
    size_t pair;
    std::string nic;
    std::shared_ptr<RdmaPath> path;
    Status st;
  };
  std::vector<Attempt> attempts;
  for (size_t k : todo) {
    pairs_[k].connecting = true;
    attempts.push_back({k, nics_[k % peers].name, nullptr, {}});
  }
  const uint64_t gen = generation_;
  lock.unlock();
  for (Attempt& a : attempts) a.st = handshake(peer, a.pair / peers, a.pair % peers, a.nic, a.path);
  lock.lock();
  for (Attempt& a : attempts) {
    if (generation_ != gen) {  // the peer's NICs changed meanwhile: these paths lead nowhere
      if (a.path) a.path->fail(Status::Canceled("rdma: the peer's NICs changed"));
      continue;
    }
    Pair& pair = pairs_[a.pair];
    pair.connecting = false;
    const std::string what = t_.devices_[a.pair / peers]->name() + " -> " + peer.desc->name + ":" + a.nic;
    if (a.st.ok()) {
      pair.path = std::move(a.path);
      pair.connected_at_ns = nowNs();
    } else {
      pauseLocked(pair, what, a.st);
    }
  }
  cv_.notify_all();
}

Status RdmaPeer::handshake(const PeerEndpoint& peer, size_t local, size_t remote, const std::string& nic,
                           std::shared_ptr<RdmaPath>& out) {
  rdma::RdmaDevice& dev = *t_.devices_[local];
  FERRY_RETURN_IF_ERROR(t_.makeRoom(local, t_.options_.path.qps));
  auto path = std::make_shared<RdmaPath>(dev, local, remote, t_.options_.path, weak_from_this());
  rdma_wire::ConnectInfo req;
  Status st = path->prepare(req);
  if (st.ok()) {
    req.initiator_instance = t_.ctx_->instanceId();
    req.target_instance = peer.desc->instance_id;
    req.initiator_device = dev.name();
    req.target_device = nic;
    std::string body;
    st = t_.rpc_->call(peer.host, peer.port, rdma_wire::kRdmaConnect, rdma_wire::encode(req), &body);
    rdma_wire::ConnectInfo reply;
    if (st.ok()) st = rdma_wire::decode(body, reply);
    if (st.ok() && (reply.target_instance != req.target_instance || reply.initiator_device != req.initiator_device ||
                    reply.target_device != req.target_device))
      st = Status::Corrupted("rdma connect: the answer is for another path");
    if (st.ok()) st = path->complete(reply);
  }
  if (!st.ok()) {
    path->abandon();
    return st;
  }
  FERRY_LOG(INFO) << "rdma path " << dev.name() << " -> " << peer.desc->name << ":" << nic << " up: "
                  << t_.options_.path.qps << " queue pairs, mtu " << rdma::mtuBytes(path->mtu());
  out = std::move(path);
  return Status::OK();
}

void RdmaPeer::pauseLocked(Pair& pair, const std::string& what, const Status& why) {
  const int64_t now = nowNs();
  const int64_t base = t_.options_.cooldown_ms * 1000000, max = t_.options_.cooldown_max_ms * 1000000;
  // A pair that stayed up longer than the longest pause starts over; one that fails again
  // soon after coming back waits twice as long each time (no reconnect storm on a flapping link).
  const bool healthy = pair.connected_at_ns && now - pair.connected_at_ns > max;
  pair.cooldown_ns = (pair.cooldown_ns == 0 || healthy) ? base : std::min(max, pair.cooldown_ns * 2);
  pair.paused_until_ns = now + pair.cooldown_ns;
  pair.connected_at_ns = 0;
  static log::RateLimit lines;
  if (lines.allow())
    FERRY_LOG(WARN) << "rdma path " << what << " failed (" << why.ToString() << "); not used for "
                    << pair.cooldown_ns / 1000000 << " ms" << lines.suppressedNote();
}

void RdmaPeer::targetRefused(RdmaPath&) { check_version_.store(true, std::memory_order_release); }

void RdmaPeer::pathFailed(RdmaPath& path, const Status& why) {
  // A refusal says nothing about the link, and a cancel is ours: neither pauses the pair.
  if (rdma::isRefusal(why) || why.code() == Status::Code::kCanceled) return;
  std::lock_guard lock(mu_);
  const size_t idx = path.localIndex() * nics_.size() + path.peerIndex();
  if (idx >= pairs_.size() || pairs_[idx].path.get() != &path) return;  // already replaced
  pauseLocked(pairs_[idx], path.device().name() + " -> " + (indexed_ ? indexed_->name : std::string("?")) + ":" +
                               nics_[path.peerIndex()].name, why);
}

void RdmaPeer::reroute(RdmaPath&, std::vector<Slice*> slices, const Status& why) {
  Work work;
  std::vector<std::pair<Slice*, Status>> failed;
  {
    std::lock_guard lock(mu_);
    const int64_t now = nowNs();
    RdmaTransport::LocalKeys local;
    for (Slice* s : slices) {
      Status st;
      if (canceled_ || t_.stopping_.load(std::memory_order_acquire)) {
        st = Status::Canceled("rdma: " + why.message());
      } else if (s->deadline_ns && s->deadline_ns < now) {
        st = Status::Timeout("rdma: past the deadline (" + why.message() + ")");
      } else if (s->resends >= t_.options_.max_resends) {
        st = Status::Unavailable("rdma: gave up after " + std::to_string(s->resends) + " re-posts: " + why.message());
      } else {
        ++s->resends;
        // Only paths already up: a handshake here would stall the completion thread.
        size_t unused = SIZE_MAX;
        st = indexed_ ? resolveLocked(s, false, work, &unused, local) : Status::Unavailable("rdma: no descriptor");
        if (!st.ok()) st = Status::Unavailable(st.message() + " (after: " + why.message() + ")");
      }
      if (!st.ok()) {
        s->resends = 0;  // the engine's failover may hand it to another transport
        failed.emplace_back(s, std::move(st));
      }
    }
  }
  for (Planned& p : work) p.path->post(std::move(p.items));
  for (auto& [s, st] : failed) completeSlice(s, st);
}

void RdmaPeer::cancel() {
  std::vector<std::shared_ptr<RdmaPath>> paths;
  {
    std::lock_guard lock(mu_);
    canceled_ = true;
    for (Pair& p : pairs_)
      if (p.path) paths.push_back(p.path);
  }
  for (auto& p : paths) p->fail(Status::Canceled("rdma: the peer endpoint was canceled"));
}

}  // namespace ferry
