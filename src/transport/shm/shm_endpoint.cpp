#include "transport/shm/shm_endpoint.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>

#include <nlohmann/json.hpp>

#include <climits>

#include "common/log.h"

namespace ferry {

using json = nlohmann::json;

namespace {
bool validShmName(const std::string& n) {
  return n.size() > 1 && n[0] == '/' && n.find('/', 1) == std::string::npos;
}

// A buffer's shm attributes: {"name": "/x", "offset": N}. False when malformed (a peer's
// descriptor is a claim).
bool parseSharedFile(const std::string& attrs, std::string& name, uint64_t& offset) {
  json j = json::parse(attrs, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  name = j["name"].get<std::string>();
  offset = 0;
  if (j.contains("offset")) {
    if (!j["offset"].is_number_unsigned()) return false;
    offset = j["offset"].get<uint64_t>();
  }
  return validShmName(name);
}
}  // namespace

ShmEndpoint::~ShmEndpoint() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool ShmEndpoint::peerAliveLocked() const {
  if (pidfd_ < 0) return true;
  pollfd p{pidfd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;  // readable: the process exited
}

void ShmEndpoint::indexLocked(const std::shared_ptr<const SegmentDescriptor>& desc) {
  if (indexed_ == desc) return;
  indexed_ = desc;
  files_.assign(desc->buffers.size(), {});
  std::set<std::string> live;
  for (size_t i = 0; i < desc->buffers.size(); ++i) {
    const BufferDesc& b = desc->buffers[i];
    auto it = b.attrs.find("shm");
    // Local-only buffers are never mapped, whatever the descriptor says.
    if (it == b.attrs.end() || b.perm == kLocalReadWrite) continue;
    if (!parseSharedFile(it->second, files_[i].name, files_[i].offset)) {
      files_[i] = {};
      continue;
    }
    live.insert(files_[i].name);
  }
  for (auto it = mappings_.begin(); it != mappings_.end();)
    it = live.count(it->first) ? std::next(it) : mappings_.erase(it);
  int64_t pid = 0;
  beacon_name_.clear();
  if (auto it = desc->attrs.find("shm"); it != desc->attrs.end()) {
    json j = json::parse(it->second, nullptr, false);
    if (j.is_object()) {
      if (j.contains("pid") && j["pid"].is_number_integer() && j["pid"].get<int64_t>() > 0 &&
          j["pid"].get<int64_t>() <= INT32_MAX)
        pid = j["pid"].get<int64_t>();
      if (j.contains("beacon") && j["beacon"].is_string() && validShmName(j["beacon"].get<std::string>()))
        beacon_name_ = j["beacon"].get<std::string>();
    }
  }
  if (pid != pid_) {  // same instance: same process, the pidfd stays
    if (pidfd_ >= 0) ::close(pidfd_);
    pidfd_ = -1;
    pid_ = pid;
#ifdef SYS_pidfd_open
    if (pid_ > 0) pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid_), 0));
#endif
  }
}

std::shared_ptr<shm::Mapping> ShmEndpoint::mappingLocked(const SegmentDescriptor& desc,
                                                         const BufferDesc& b, const SharedFile& f) {
  auto it = mappings_.find(f.name);
  if (it != mappings_.end()) return it->second;
  auto m = std::make_shared<shm::Mapping>();
  // Only a writable buffer is mapped writable: the mapping enforces read-only.
  Status st = m->open(f.name, b.perm == kGlobalReadWrite);
  if (!st.ok()) {
    FERRY_LOG(WARN) << "cannot map " << f.name << " of '" << desc.name << "': " << st.ToString();
    return nullptr;
  }
  mappings_.emplace(f.name, m);
  return m;
}

Status ShmEndpoint::resolve(const SegmentDescriptor& desc, const BufferDesc& b, const SharedFile& f,
                            const std::shared_ptr<shm::Mapping>& mapping, Slice* s,
                            ShmTransport::Work& out) {
  out.slice = s;
  if (mapping) {
    uint64_t off = f.offset + (s->remote - b.base);
    if (off < f.offset || off > mapping->size() || s->length > mapping->size() - off)
      return Status::Corrupted("buffer " + rangeText(b.base, b.length) + " lies outside " + f.name);
    out.mapped = mapping->base() + off;
    out.mapping = mapping;
    return Status::OK();
  }
  if (transport_.cross_memory_attach_ && pid_ > 0 && !xma_denied_.load(std::memory_order_relaxed)) {
    out.pid = pid_;
    return Status::OK();
  }
  return Status::NotSupported("buffer " + rangeText(b.base, b.length) + " of '" + desc.name +
                              "' is not in shared memory and cross-memory attach is " +
                              (transport_.cross_memory_attach_ ? "refused" : "off"));
}

Status ShmEndpoint::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.desc) return Status::NotSupported("shm needs the peer's descriptor");
  uint64_t reported = 0;  // told to the engine after the lock: it takes the segment table's
  Status st = prepare(peer, slices, count, reported);
  if (reported) transport_.ctx_->onPeerEpoch(peer.host, peer.port, reported);
  return st;
}

Status ShmEndpoint::prepare(const PeerEndpoint& peer, Slice* const* slices, size_t count, uint64_t& reported) {
  const SegmentDescriptor& desc = *peer.desc;
  std::vector<ShmTransport::Work> work(count);
  uint64_t bytes = 0;
  {
    std::lock_guard lock(mu_);
    indexLocked(peer.desc);
    FERRY_RETURN_IF_ERROR(beacon_.check(peer, beacon_name_, [&](uint64_t live) { reported = live; }));
    if (!peerAliveLocked()) {
      reported = kPeerGone;  // someone else may answer at its address now
      return Status::Unavailable("segment '" + desc.name + "': process " + std::to_string(pid_) + " exited");
    }
    // Slices of one request share a buffer: look its mapping up once per buffer, not per slice.
    const BufferDesc* buffer = nullptr;
    const SharedFile* file = nullptr;
    std::shared_ptr<shm::Mapping> mapping;
    auto self = shared_from_this();
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      const BufferDesc* b = desc.find(s->remote, s->length);
      if (!b) return Status::InvalidArgument("target range " + rangeText(s->remote, s->length) +
                                             " is not in a registered buffer of '" + desc.name + "'");
      if (b != buffer) {
        // The engine checked the request against this same descriptor; shm has no
        // target-side check, so the transport holds the line too.
        FERRY_RETURN_IF_ERROR(desc.checkAccess(*b, s->op == Request::WRITE));
        buffer = b;
        file = &files_[static_cast<size_t>(b - desc.buffers.data())];
        mapping = file->name.empty() ? nullptr : mappingLocked(desc, *b, *file);
      }
      FERRY_RETURN_IF_ERROR(resolve(desc, *b, *file, mapping, s, work[i]));
      work[i].peer = self;
      bytes += s->length;
    }
  }
  return transport_.dispatch(std::move(work), bytes);
}

}  // namespace ferry
