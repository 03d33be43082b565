// Segments by name: resolving a name (ours, a store entry, host:port, SEG#FILE, file://),
// opening and closing, export/import, and what introspection shows of an opened segment.
// Glue between the parts; the state is theirs.
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/checksum.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/net.h"
#include "core/engine.h"

namespace ferry {

namespace {
constexpr char kExportPrefix[] = "ferry-segment:v1:";
constexpr char kFilePrefix[] = "file://";
}  // namespace

PeerEndpoint EngineImpl::selfEndpoint(const std::string& segment_name) const {
  PeerEndpoint peer;
  peer.segment_name = segment_name;
  peer.is_self = true;
  peer.host = rpc_host_;
  peer.port = rpc_server_.port();
  peer.machine_id = machine_id_;
  return peer;
}

Status EngineImpl::locate(const std::string& name, PeerEndpoint& peer, DescriptorSource*& source) {
  if (name == name_ || name == net::joinHostPort(rpc_host_, rpcPort())) {
    peer = selfEndpoint(name);
    source = nullptr;
    return Status::OK();
  }
  peer.segment_name = name;
  source = &directory_->names();
  auto desc = std::make_shared<SegmentDescriptor>();
  FERRY_RETURN_IF_ERROR(source->locate(name, peer, *desc));
  peer.desc = std::move(desc);
  return Status::OK();
}

Status EngineImpl::openSegment(SegmentID& handle, const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("segment name is empty");
  if (name.rfind(kFilePrefix, 0) == 0 || name.find('#') != std::string::npos) return openFileSegment(handle, name);
  PeerEndpoint peer;
  DescriptorSource* source = nullptr;
  FERRY_RETURN_IF_ERROR(locate(name, peer, source));
  return segments_->open(peer.is_self ? name_ : name, std::move(peer), "", source, handle);
}

// "file:///path": a local file this engine opens for itself. "SEGMENT#FILE": a file that
// segment exposes (ours included).
Status EngineImpl::openFileSegment(SegmentID& handle, const std::string& name) {
  if (name.rfind(kFilePrefix, 0) == 0) {
    PeerEndpoint peer = selfEndpoint(name);
    FERRY_RETURN_IF_ERROR(files_->openPrivate(name.substr(sizeof kFilePrefix - 1), peer.file));
    return segments_->open(name, std::move(peer), "", nullptr, handle);
  }
  size_t hash = name.rfind('#');
  std::string base = name.substr(0, hash), file = name.substr(hash + 1);
  if (base.empty() || file.empty())
    return Status::InvalidArgument("a file segment is named SEGMENT#FILE or file:///PATH, got '" + name + "'");
  PeerEndpoint peer;
  DescriptorSource* source = nullptr;
  FERRY_RETURN_IF_ERROR(locate(base, peer, source));
  if (peer.is_self) {
    FERRY_RETURN_IF_ERROR(files_->findExposed(file, peer.file));
    peer.segment_name = name_ + "#" + file;
    return segments_->open(peer.segment_name, std::move(peer), file, nullptr, handle);
  }
  if (!peer.desc->findFile(file)) return Status::NotFound("segment '" + base + "' exposes no file '" + file + "'");
  peer.segment_name = name;
  return segments_->open(name, std::move(peer), file, source, handle);
}

Status EngineImpl::closeSegment(SegmentID handle) {
  std::shared_ptr<SegmentEntry> closed;
  FERRY_RETURN_IF_ERROR(segments_->close(handle, &closed));
  if (closed && closed->is_self && closed->is_file && closed->file_name.empty())  // a private file
    files_->closePrivate(closed->snapshot()->file->id);
  return Status::OK();
}

Status EngineImpl::getSegmentInfo(SegmentID handle, SegmentInfo& info) {
  auto seg = segments_->find(handle);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(handle));
  if (!seg->is_self) {
    Status st = directory_->refresh(*seg);
    if (!st.ok())  // peer unreachable: answer from the cache, say so in the log
      FERRY_LOG(WARN) << "getSegmentInfo('" << seg->name << "') uses cached data: " << st.ToString();
  }
  SegmentInfo out;
  auto peer = seg->snapshot();
  if (seg->is_file) {
    // One buffer: the whole file, addressed by file offset.
    if (!peer->file)
      return Status::NotFound("segment '" + seg->base_name + "' no longer exposes file '" + seg->file_name + "'");
    uint64_t length = peer->file->length;
    if (peer->is_self) files_->liveLength(*peer->file, length).IgnoreError();  // else: as published
    out.type = SegmentInfo::File;
    out.buffers.push_back({0, length, "file"});
    info = std::move(out);
    return Status::OK();
  }
  std::vector<BufferDesc> bufs = seg->is_self ? registry_.snapshot() : peer->desc ? peer->desc->buffers
                                                                                   : std::vector<BufferDesc>{};
  out.type = SegmentInfo::Memory;
  for (auto& b : bufs) out.buffers.push_back({b.base, b.length, b.location});
  info = std::move(out);
  return Status::OK();
}

Status EngineImpl::exportLocalSegment(std::string& shared_handle) {
  shared_handle = kExportPrefix + base64Encode(localDescriptor().toJson());
  return Status::OK();
}

Status EngineImpl::importRemoteSegment(SegmentID& handle, const std::string& shared_handle) {
  if (shared_handle.rfind(kExportPrefix, 0) != 0)
    return Status::InvalidArgument("not a Ferry segment handle (expected prefix '" + std::string(kExportPrefix) + "')");
  std::string text;
  if (!base64Decode(std::string_view(shared_handle).substr(sizeof kExportPrefix - 1), text))
    return Status::InvalidArgument("segment handle is not valid base64");
  auto desc = std::make_shared<SegmentDescriptor>();
  Status st = SegmentDescriptor::fromJson(text, *desc);
  if (!st.ok()) return Status::InvalidArgument("segment handle: " + st.message());
  if (desc->instance_id == instance_id_) return segments_->open(name_, selfEndpoint(name_), "", nullptr, handle);
  PeerEndpoint peer;
  peer.segment_name = desc->name;
  peer.host = desc->rpc_host;
  peer.port = desc->rpc_port;
  std::string name = desc->name;
  peer.desc = std::move(desc);
  // Imported: refreshed from the peer itself, whatever metadata service we use.
  return segments_->open(name, std::move(peer), "", &directory_->peers(), handle);
}

Status EngineImpl::sendNotification(SegmentID target, const Notification& notifi) {
  auto seg = segments_->find(target);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(target));
  if (notifi.name.size() + notifi.msg.size() > wire::kMaxNotifyBytes)
    return Status::InvalidArgument("notification larger than " + std::to_string(wire::kMaxNotifyBytes) + " bytes");
  if (seg->is_self) return notifications_->deliver(notifi);
  auto peer = seg->snapshot();
  return notifications_->send(peer->host, peer->port, notifi);
}

Status EngineImpl::digest(SegmentID target, uint64_t offset, uint64_t length, uint64_t& out) {
  auto seg = segments_->find(target);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(target));
  if (seg->is_file) return Status::NotSupported("digest of a file segment");
  if (length == 0 || length > wire::kMaxDigestBytes)
    return Status::InvalidArgument("digest length must be 1 B .. " + std::to_string(wire::kMaxDigestBytes) + " B");
  if (seg->is_self) return digestLocal(offset, length, out);
  auto peer = seg->snapshot();
  std::string reply;
  FERRY_RETURN_IF_ERROR(rpc_client_->call(peer->host, peer->port, wire::MsgType::kDigest, wire::encodeDigest(offset, length),
                                          &reply));
  if (reply.size() != 8) return Status::Corrupted("digest answer of " + std::to_string(reply.size()) + " bytes");
  out = getU64(reinterpret_cast<const uint8_t*>(reply.data()));
  return Status::OK();
}

Status EngineImpl::digestLocal(uint64_t addr, uint64_t length, uint64_t& out) const {
  MemoryKind kind = kHostMemory;
  FERRY_RETURN_IF_ERROR(registry_.checkLocal(addr, length, nullptr, &kind));
  if (kind != kHostMemory) return Status::NotSupported("digest of GPU memory (host memory only for now)");
  out = checksum::xxh3(reinterpret_cast<const void*>(addr), length);
  return Status::OK();
}

Status EngineImpl::serveDigest(const wire::FrameHeader& h, ServerConnection& conn) {
  std::string body(h.body_len, '\0');
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(body.data(), body.size()));
  uint64_t addr = 0, length = 0;
  FERRY_RETURN_IF_ERROR(wire::decodeDigest(body, addr, length));  // malformed: the connection closes
  MemoryRegistry::Pin pin;  // held while hashing: an unregister waits for it
  Status st = registry_.pinForRemote(addr, length, false, pin);
  if (st.ok() && pin.region()->kind != kHostMemory)
    st = Status::NotSupported("digest of GPU memory (host memory only for now)");
  if (!st.ok()) {
    conn.respond(wire::MsgType::kDigestAck, h.request_id, st);
    return Status::OK();
  }
  uint8_t sum[8];
  putU64(sum, checksum::xxh3(reinterpret_cast<const void*>(addr), length));
  conn.respond(wire::MsgType::kDigestAck, h.request_id, Status::OK(), {reinterpret_cast<const char*>(sum), sizeof sum});
  return Status::OK();
}

std::string EngineImpl::transportName(SegmentID id) {
  auto seg = segments_->find(id);
  if (!seg) return "";
  SelectionCase c;
  c.remote_kind = seg->is_file ? kFileData : kHostMemory;
  std::lock_guard lock(seg->mu);
  auto order = selector_.defaultOrder(c, seg->reachable);
  return order.empty() ? "" : selector_.transports()[order[0]]->name();
}

Status EngineImpl::describeSelection(SegmentID id, std::string& out) {
  auto seg = segments_->find(id);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(id));
  auto peer = seg->snapshot();
  uint32_t reachable = selector_.reachable(*peer);
  SelectionCase c;
  c.same_machine = peer->machine_id == machine_id_;
  c.remote_kind = seg->is_file ? kFileData : kHostMemory;
  c.segment_type = seg->is_file ? "file" : "memory";
  c.remote_location = seg->is_file ? "file" : "cpu:0";
  c.length = 1 << 20;
  auto names = [&](const TransportSelector::Order& order) {
    nlohmann::json a = nlohmann::json::array();
    for (uint8_t i : order) a.push_back(selector_.transports()[i]->name());
    return a;
  };
  nlohmann::json j = {{"segment", seg->name}, {"segment_type", c.segment_type},
                      {"same_machine", c.same_machine}, {"self", seg->is_self}};
  const uint64_t sizes[] = {4096, 1 << 20, 64 << 20};
  for (size_t i = 0; i < selector_.transports().size(); ++i) {
    Transport* t = selector_.transports()[i];
    TransportCaps caps = t->caps();
    nlohmann::json cost;
    for (uint64_t n : sizes) cost[std::to_string(n)] = std::round(caps.costUs(n) * 10) / 10;
    auto kindNames = [](MemoryKinds set) {
      nlohmann::json a = nlohmann::json::array();
      for (MemoryKind k : {kHostMemory, kCudaMemory, kFileData, kOtherDevice})
        if (set & k) a.push_back(memoryKindName(k));
      return a;
    };
    nlohmann::json kinds = {{"ours", kindNames(caps.local_kinds)}, {"peers", kindNames(caps.remote_kinds)}};
    j["transports"].push_back({{"name", t->name()},
                               {"reaches", static_cast<bool>(reachable >> i & 1)},
                               {"fits_kinds", selector_.fitsKinds(i, c.local_kind, c.remote_kind)},
                               {"memory_kinds", kinds},
                               {"checksum_kinds", kindNames(caps.checksum_kinds)},
                               {"slice_size", t->sliceSize()},
                               {"latency_us", caps.latency_us},
                               {"bandwidth_GBps", caps.bandwidth_GBps},
                               {"cost_us_by_size", cost}});
  }
  j["default"] = names(selector_.defaultOrder(c, reachable));
  j["max_failover_attempts"] = selector_.maxFailoverAttempts();
  j["policies"] = nlohmann::json::array();
  for (const auto& r : selector_.rules()) {
    nlohmann::json m;
    if (r.same_machine) m["same_machine"] = *r.same_machine;
    if (r.min_size) m["min_size"] = r.min_size;
    if (r.max_size != UINT64_MAX) m["max_size"] = r.max_size;
    if (!r.local_location.empty()) m["local_location"] = r.local_location;
    if (!r.remote_location.empty()) m["remote_location"] = r.remote_location;
    if (!r.segment_type.empty()) m["segment_type"] = r.segment_type;
    j["policies"].push_back({{"match", m}, {"order", names(selector_.ruleOrder(r, c, reachable))}});
  }
  out = j.dump(2);
  return Status::OK();
}

Status EngineImpl::exposedFiles(SegmentID id, std::vector<FileDesc>& out) {
  auto seg = segments_->find(id);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(id));
  if (seg->is_file) {  // a file exposes nothing further
    out.clear();
    return Status::OK();
  }
  if (seg->is_self) {
    out = files_->table().exposed();
    return Status::OK();
  }
  auto peer = seg->snapshot();
  out = peer->desc ? peer->desc->files : std::vector<FileDesc>{};
  return Status::OK();
}

}  // namespace ferry
