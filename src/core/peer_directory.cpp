#include "core/peer_directory.h"

#include "common/log.h"
#include "common/net.h"

namespace ferry {

using wire::MsgType;

Status PeerRpcSource::read(const std::string& name, const PeerEndpoint& peer, SegmentDescriptor& desc) {
  std::string body;
  Status st = rpc_.call(peer.host, peer.port, MsgType::kGetDescriptor, {}, &body);
  if (!st.ok()) return Status(st.code(), "cannot reach segment '" + name + "': " + st.message());
  return SegmentDescriptor::fromJson(body, desc);
}

Status PeerRpcSource::locate(const std::string& name, PeerEndpoint& peer, SegmentDescriptor& desc) {
  if (!net::parseHostPort(name, peer.host, peer.port).ok())
    return Status::InvalidArgument("cannot open segment '" + name +
                                   "': with p2p metadata a segment name is host:port");
  return read(name, peer, desc);
}

Status StoreSource::read(const std::string& name, const PeerEndpoint&, SegmentDescriptor& desc) {
  return fetch(name, false, desc);
}

Status StoreSource::fetch(const std::string& name, bool for_lookup, SegmentDescriptor& desc) {
  std::string text;
  const std::string key = segmentKey(cluster_, name);
  Status st = for_lookup ? store_.lookup(key, text) : store_.get(key, text);
  if (st.IsNotFound())
    return Status::NotFound("segment '" + name + "' is not registered in " + store_.describe());
  if (!st.ok()) return st;
  FERRY_RETURN_IF_ERROR(SegmentDescriptor::fromJson(text, desc));
  // An entry is a claim too: one that names another segment than its key is not used.
  if (desc.name != name)
    return Status::Corrupted("the store's entry for segment '" + name + "' describes '" + desc.name + "'");
  return Status::OK();
}

Status StoreSource::locate(const std::string& name, PeerEndpoint& peer, SegmentDescriptor& desc) {
  FERRY_RETURN_IF_ERROR(fetch(name, true, desc));
  peer.host = desc.rpc_host;
  peer.port = desc.rpc_port;
  return Status::OK();
}

PeerDirectory::PeerDirectory(RpcClient& rpc, MetadataStore* store, const std::string& cluster,
                             SegmentTable& table)
    : rpc_(rpc), p2p_(rpc), table_(table) {
  if (store) store_ = std::make_unique<StoreSource>(*store, cluster);
}

Status PeerDirectory::refresh(SegmentEntry& seg) {
  if (seg.is_self || !seg.source) return Status::OK();
  auto old = seg.snapshot();
  auto fresh = std::make_shared<SegmentDescriptor>();
  FERRY_RETURN_IF_ERROR(seg.source->read(seg.base_name, *old, *fresh));  // no lock held
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  auto peer = std::make_shared<PeerEndpoint>(*old);
  std::unique_lock lock(seg.mu);
  const PeerEndpoint& cur = *seg.peer;
  // Where the store says it lives now (a restart may have moved its port).
  if (seg.source->followsMoves() && (fresh->rpc_host != cur.host || fresh->rpc_port != cur.port)) {
    FERRY_LOG(INFO) << "segment '" << seg.name << "' moved to "
                    << net::joinHostPort(fresh->rpc_host, fresh->rpc_port);
    peer->host = fresh->rpc_host;
    peer->port = fresh->rpc_port;
  } else {
    peer->host = cur.host;
    peer->port = cur.port;
  }
  if (cur.desc && cur.desc->instance_id != fresh->instance_id)
    FERRY_LOG(INFO) << "segment '" << seg.name << "' restarted (instance " << cur.desc->instance_id
                    << " -> " << fresh->instance_id << ")";
  peer->machine_id = fresh->machine_id;
  peer->just_refreshed = false;
  peer->file = nullptr;
  if (!seg.file_name.empty())
    if (const FileDesc* f = fresh->findFile(seg.file_name)) peer->file = std::make_shared<const FileDesc>(*f);
  peer->desc = std::move(fresh);
  auto retired = table_.replacePeerLocked(seg, std::move(peer));
  lock.unlock();
  SegmentTable::cancel(std::move(retired));
  return Status::OK();
}

void PeerDirectory::onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) {
  table_.forEach([&](SegmentEntry& seg) {
    if (seg.is_self) return;
    std::lock_guard slock(seg.mu);
    if (seg.peer->host != host || seg.peer->port != port || !seg.desc()) return;
    if (epoch != kPeerGone) {  // "gone" is no version: a restart starts over
      uint64_t seen = seg.newest_reported.load(std::memory_order_acquire);
      while (epoch > seen && !seg.newest_reported.compare_exchange_weak(seen, epoch)) {
      }
    }
    if (seg.desc()->version != epoch) seg.stale.store(true, std::memory_order_release);
  });
}

Status PeerDirectory::probe(const std::string& segment_name) {
  std::string host;
  uint16_t port;
  Status addr = net::parseHostPort(segment_name, host, port);
  if (store_) {  // a registered name first, then a plain host:port
    PeerEndpoint peer;
    SegmentDescriptor desc;
    Status st = store_->locate(segment_name, peer, desc);
    if (st.ok()) return rpc_.call(peer.host, peer.port, MsgType::kProbe, {});
    if (!addr.ok()) return st;
  }
  FERRY_RETURN_IF_ERROR(addr);
  return rpc_.call(host, port, MsgType::kProbe, {});
}

}  // namespace ferry
