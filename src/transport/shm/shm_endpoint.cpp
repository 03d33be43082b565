#include "transport/shm/shm_endpoint.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "common/log.h"

namespace ferry {

using json = nlohmann::json;

namespace {
// A buffer's shm attributes: {"name": "...", "offset": N}. False when malformed.
bool parseSharedFile(const std::string& attrs, std::string& name, uint64_t& offset) {
  json j = json::parse(attrs, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  name = j["name"].get<std::string>();
  offset = 0;
  if (j.contains("offset")) {
    if (!j["offset"].is_number_unsigned()) return false;
    offset = j["offset"].get<uint64_t>();
  }
  return !name.empty() && name.size() <= shm_wire::kMaxNameBytes;
}
}  // namespace

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
}

std::shared_ptr<shm::Mapping> ShmEndpoint::mappingLocked(const SegmentDescriptor& desc, const SharedFile& f,
                                                         bool writable) {
  auto it = mappings_.find(f.name);
  if (it != mappings_.end() && (it->second->writable() || !writable)) return it->second;
  // Only a writable buffer is mapped writable: the mapping enforces read-only, and the peer
  // hands out a read-only descriptor unless a writable buffer lies in the file.
  std::vector<int> fds;
  Status st = local_.call(shm_wire::kShmOpen, f.name, nullptr, fds);
  auto m = std::make_shared<shm::Mapping>();
  if (st.ok()) st = fds.size() == 1 ? m->map(fds[0], writable) : Status::Corrupted("expected one descriptor");
  for (int fd : fds) ::close(fd);
  if (!st.ok()) {
    FERRY_LOG(WARN) << "cannot map " << f.name << " of '" << desc.name << "': " << st.ToString();
    return nullptr;
  }
  mappings_[f.name] = m;
  return m;
}

Status ShmEndpoint::resolve(const SegmentDescriptor& desc, const BufferDesc& b, const SharedFile& f,
                            const shm::Mapping* mapping, Slice* s, ShmTransport::Work& out) {
  out.slice = s;
  const SliceRanges pieces(*s);
  // A multi-range slice's pieces were cut inside one buffer at each end (the engine's span
  // check), but by the descriptor the engine holds: each is proven against the peer's word.
  for (size_t k = 1; k < pieces.size(); ++k) {
    const SliceRange& r = pieces[k];
    if (b.contains(r.remote, r.length)) continue;
    const BufferDesc* other = nullptr;
    FERRY_RETURN_IF_ERROR(desc.findForAccess(r.remote, r.length, s->op == Request::WRITE, other));
    return Status::NotSupported("the pages of one slice lie in several buffers of '" + desc.name + "'");
  }
  if (mapping) {
    for (const SliceRange& r : pieces) {
      const uint64_t off = f.offset + (r.remote - b.base);
      if (off < f.offset || off > mapping->size() || r.length > mapping->size() - off)
        return Status::Corrupted("buffer " + rangeText(b.base, b.length) + " lies outside " + f.name);
    }
    out.mapped = mapping->base() + f.offset + (s->remote - b.base);
    return Status::OK();
  }
  if (transport_.cross_memory_attach_ && local_.pid() > 0 && !xma_denied_.load(std::memory_order_relaxed)) {
    out.pid = local_.pid();
    return Status::OK();
  }
  return Status::NotSupported("buffer " + rangeText(b.base, b.length) + " of '" + desc.name +
                              "' is not in shared memory and cross-memory attach is " +
                              (!transport_.cross_memory_attach_ ? "off" : local_.pid() > 0 ? "refused" : "impossible "
                              "(its process is in another pid namespace)"));
}

Status ShmEndpoint::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.desc) return Status::NotSupported("shm needs the peer's descriptor");
  uint64_t reported = 0;  // told to the engine after the lock: it takes the segment table's
  Status st = prepare(peer, slices, count, reported);
  if (reported) transport_.ctx_->onPeerEpoch(peer.host, peer.port, reported);
  return st;
}

Status ShmEndpoint::prepare(const PeerEndpoint& peer, Slice* const* slices, size_t count, uint64_t& reported) {
  std::vector<ShmTransport::Work> work(count);
  auto holds = std::make_shared<ShmTransport::Holds>();
  uint64_t bytes = 0;
  {
    std::lock_guard lock(mu_);
    // Bounds, permissions and files come from the peer's own word, not from the
    // descriptor the engine was handed (shm has no target-side check).
    std::shared_ptr<const SegmentDescriptor> proven;
    FERRY_RETURN_IF_ERROR(local_.attachCurrent(peer, reported, proven));
    const SegmentDescriptor& desc = *proven;
    indexLocked(proven);
    // Slices of one request share a buffer: look its mapping up once per buffer, not per slice.
    const BufferDesc* buffer = nullptr;
    const SharedFile* file = nullptr;
    std::shared_ptr<shm::Mapping> mapping;
    holds->peer = shared_from_this();
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      const BufferDesc* b = nullptr;
      // The first piece finds the buffer; resolve() holds the others to it.
      FERRY_RETURN_IF_ERROR(desc.findForAccess(s->remote, SliceRanges(*s)[0].length, s->op == Request::WRITE, b));
      if (b != buffer) {
        buffer = b;
        file = &files_[static_cast<size_t>(b - desc.buffers.data())];
        mapping = file->name.empty() ? nullptr : mappingLocked(desc, *file, b->perm == kGlobalReadWrite);
        if (mapping && std::find(holds->mappings.begin(), holds->mappings.end(), mapping) == holds->mappings.end())
          holds->mappings.push_back(mapping);
      }
      FERRY_RETURN_IF_ERROR(resolve(desc, *b, *file, mapping.get(), s, work[i]));
      bytes += s->length;
    }
  }
  return transport_.dispatch(std::move(work), std::move(holds), bytes);
}

}  // namespace ferry
