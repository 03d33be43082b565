#include "transport/shm/shm_transport.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/log.h"
#include "core/descriptor.h"

namespace ferry {

ShmTransport::ShmTransport() = default;
ShmTransport::~ShmTransport() { stop(); }

Status ShmTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  slice_size_ = std::clamp<uint64_t>(c.get<uint64_t>("transports/shm/slice_size", 1 << 20), 4096,
                                     1ull << 30);
  inline_bytes_ = c.get<uint64_t>("transports/shm/inline_bytes", 64 << 10);
  cross_memory_attach_ = c.get<bool>("transports/shm/cross_memory_attach", true);
  int64_t threads = c.get<int64_t>("transports/shm/copy_threads", 0);
  if (threads <= 0) threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 4);
  copy_threads_ = static_cast<size_t>(std::min<int64_t>(threads, 64));
  stopping_ = false;
  for (size_t i = 0; i < copy_threads_; ++i) workers_.emplace_back([this] { workerLoop(); });
  return Status::OK();
}

void ShmTransport::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // submit refuses from now on
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();  // they finish what was queued: every slice completes
  workers_.clear();
}

bool ShmTransport::canReach(const PeerEndpoint& peer) const {
  if (peer.is_self || peer.file || !peer.desc || !ctx_ || peer.machine_id != ctx_->machineId()) return false;
  const auto& t = peer.desc->transports;
  return std::find(t.begin(), t.end(), "shm") != t.end();
}

std::shared_ptr<ShmTransport::PeerState> ShmTransport::peerState(const SegmentDescriptor& desc) {
  std::lock_guard lock(peers_mu_);
  auto& slot = peers_[desc.instance_id];
  if (!slot) slot = std::make_shared<PeerState>();
  return slot;
}

std::shared_ptr<shm::Mapping> ShmTransport::mappingFor(PeerState& ps, const SegmentDescriptor& desc,
                                                       const BufferDesc& b) {
  std::lock_guard lock(ps.mu);
  auto it = ps.mappings.find(b.shm_name);
  if (it != ps.mappings.end()) return it->second;
  auto m = std::make_shared<shm::Mapping>();
  // Only a writable buffer is mapped writable: the mapping enforces read-only.
  Status st = m->open(b.shm_name, b.perm == kGlobalReadWrite);
  if (!st.ok()) {
    FERRY_LOG(WARN) << "cannot map " << b.shm_name << " of '" << desc.name << "': " << st.ToString();
    return nullptr;
  }
  ps.mappings.emplace(b.shm_name, m);
  return m;
}

Status ShmTransport::resolve(const SegmentDescriptor& desc, PeerState& ps, const BufferDesc& b,
                             const std::shared_ptr<shm::Mapping>& mapping, Slice* s, Work& out) {
  out.slice = s;
  out.peer = &ps;
  if (mapping) {
    uint64_t off = b.shm_offset + (s->remote - b.base);
    if (off > mapping->size() || s->length > mapping->size() - off)
      return Status::Corrupted("buffer " + rangeText(b.base, b.length) + " lies outside " + b.shm_name);
    out.mapped = mapping->base() + off;
    out.mapping = mapping;
    return Status::OK();
  }
  if (cross_memory_attach_ && desc.pid > 0 && !ps.xma_denied.load(std::memory_order_relaxed)) {
    out.pid = desc.pid;
    return Status::OK();
  }
  return Status::NotSupported("buffer " + rangeText(b.base, b.length) + " of '" + desc.name +
                              "' is not in shared memory and cross-memory attach is " +
                              (cross_memory_attach_ ? "refused" : "off"));
}

Status ShmTransport::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.desc) return Status::NotSupported("shm needs the peer's descriptor");
  const SegmentDescriptor& desc = *peer.desc;
  auto ps = peerState(desc);
  {
    std::lock_guard lock(ps->mu);
    FERRY_RETURN_IF_ERROR(ps->control.check(*ctx_, peer));
    if (ps->pruned_for != &desc) {
      // Drop mappings of files the peer no longer lists (freed memory stays alive while mapped).
      std::set<std::string> live;
      for (const auto& b : desc.buffers) live.insert(b.shm_name);
      for (auto it = ps->mappings.begin(); it != ps->mappings.end();)
        it = live.count(it->first) ? std::next(it) : ps->mappings.erase(it);
      ps->pruned_for = &desc;
    }
  }
  std::vector<Work> work(count);
  uint64_t bytes = 0;
  // Slices of one request share a buffer: look its mapping up once per buffer, not per slice.
  const BufferDesc* buffer = nullptr;
  std::shared_ptr<shm::Mapping> mapping;
  for (size_t i = 0; i < count; ++i) {
    Slice* s = slices[i];
    const BufferDesc* b = desc.find(s->remote, s->length);
    if (!b) return Status::InvalidArgument("target range " + rangeText(s->remote, s->length) +
                                           " is not in a registered buffer of '" + desc.name + "'");
    if (b != buffer) {
      // The engine checked the request against this same descriptor; shm has no target-side
      // check, so the transport holds the line too.
      FERRY_RETURN_IF_ERROR(desc.checkAccess(*b, s->op == Request::WRITE));
      buffer = b;
      mapping = b->shm_name.empty() ? nullptr : mappingFor(*ps, desc, *b);
    }
    FERRY_RETURN_IF_ERROR(resolve(desc, *ps, *b, mapping, s, work[i]));
    bytes += s->length;
  }
  if (bytes <= inline_bytes_ || copy_threads_ == 0) {
    for (auto& w : work) copy(w);  // small: no thread hand-off on the latency path
    return Status::OK();
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Canceled("engine is shutting down");
    for (auto& w : work) queue_.push_back(std::move(w));
  }
  // One worker starts; it wakes another while work is left. The submitting thread usually
  // joins in from waitTransfer (progress), so waking every worker at once only oversubscribes.
  cv_.notify_one();
  return Status::OK();
}

void ShmTransport::copy(Work& w) {
  Slice* s = w.slice;
  if (w.mapped) {
    if (s->op == Request::WRITE)
      std::memcpy(w.mapped, s->local, s->length);
    else
      std::memcpy(s->local, w.mapped, s->length);
    completeSlice(s, Status::OK());
    return;
  }
  // Cross-memory attach: the kernel copies between the address spaces.
  uint64_t done = 0;
  while (done < s->length) {
    iovec local{s->local + done, s->length - done};
    iovec remote{reinterpret_cast<void*>(s->remote + done), s->length - done};
    ssize_t n = s->op == Request::WRITE
                    ? ::process_vm_writev(static_cast<pid_t>(w.pid), &local, 1, &remote, 1, 0)
                    : ::process_vm_readv(static_cast<pid_t>(w.pid), &local, 1, &remote, 1, 0);
    if (n > 0) {
      done += static_cast<uint64_t>(n);
      continue;
    }
    int e = n == 0 ? EFAULT : errno;
    if (e == EINTR) continue;
    Status why;
    if (e == EPERM || e == ENOSYS) {
      if (!w.peer->xma_denied.exchange(true))
        FERRY_LOG(WARN) << "cross-memory attach to pid " << w.pid << " refused (" << std::strerror(e)
                        << "; ptrace restrictions?): its unshared buffers go over the next transport";
      why = Status::NotSupported(std::string("cross-memory attach refused: ") + std::strerror(e));
    } else if (e == ESRCH) {
      why = Status::Unavailable("peer process " + std::to_string(w.pid) + " is gone");
    } else {
      why = Status::InternalError(std::string("cross-memory attach failed: ") + std::strerror(e));
    }
    completeSlice(s, why);
    return;
  }
  completeSlice(s, Status::OK());
}

bool ShmTransport::takeLocked(Work& out) {
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool ShmTransport::progress() {
  Work w;
  {
    std::lock_guard lock(mu_);
    if (!takeLocked(w)) return false;
  }
  copy(w);
  return true;
}

void ShmTransport::workerLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    Work w;
    if (!takeLocked(w)) return;  // stopping
    if (!queue_.empty()) cv_.notify_one();
    lock.unlock();
    copy(w);
    w = Work{};  // release the mapping outside the lock
    lock.lock();
  }
}

}  // namespace ferry
