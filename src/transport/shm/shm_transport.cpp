#include "transport/shm/shm_transport.h"

#include <sched.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/log.h"
#include "core/descriptor.h"

namespace ferry {

namespace {
// memcpy in pieces of at most `piece` bytes (0: one call). glibc 2.36 on AMD sends copies of
// at least the L2 size through a vector loop instead of `rep movsb`; on the Zen 5 machines
// this project runs on that loop is ~15% slower over buffers larger than the cache (1 MiB
// calls vs 256 KiB calls, 1 and 2 threads). Elsewhere the split costs nothing measurable.
void copyInPieces(uint8_t* dst, const uint8_t* src, uint64_t len, uint64_t piece) {
  if (piece == 0) piece = len;
  for (uint64_t done = 0; done < len; done += piece)
    std::memcpy(dst + done, src + done, std::min(piece, len - done));
}
}  // namespace

ShmTransport::ShmTransport() = default;
ShmTransport::~ShmTransport() { stop(); }

Status ShmTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  slice_size_ = std::clamp<uint64_t>(c.get<uint64_t>("transports/shm/slice_size", 1 << 20), 4096,
                                     1ull << 30);
  inline_bytes_ = c.get<uint64_t>("transports/shm/inline_bytes", 64 << 10);
  copy_piece_ = c.get<uint64_t>("transports/shm/copy_piece_bytes", 256 << 10);
  cross_memory_attach_ = c.get<bool>("transports/shm/cross_memory_attach", true);
  // The CPUs this process may run on (taskset, cgroup cpusets), not the machine's.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int64_t usable = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? std::max(CPU_COUNT(&cpus), 1) : 1;
  int64_t threads = c.get<int64_t>("transports/shm/copy_threads", 0);
  if (threads <= 0) threads = std::clamp<int64_t>(usable, 1, 4);
  copy_threads_ = static_cast<size_t>(std::min<int64_t>(threads, 64));
  max_copiers_ = std::max(copy_threads_, static_cast<size_t>(usable));
  caller_hold_ = std::chrono::microseconds(
      std::clamp<int64_t>(c.get<int64_t>("transports/shm/caller_hold_us", 1000), 0, 1000000));
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
  if (bytes <= inline_bytes_) {
    for (auto& w : work) copy(w);  // small: no thread hand-off on the latency path
    return Status::OK();
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Canceled("engine is shutting down");
    queue_.push_back(Submission{std::this_thread::get_id(), std::move(work), 0,
                                std::chrono::steady_clock::now()});
    // A worker starts when a CPU is free for it. When none is, it is not woken just to
    // wait: this thread usually copies the submit itself from waitTransfer, and if it does
    // not, the threads copying now notice once its hold runs out (or wake a worker on
    // leaving). With no one copying, nobody would notice: wake one to keep the time.
    Outlook o = outlookLocked();
    if (o.may_copy || !o.anyone_copying) cv_.notify_one();
  }
  return Status::OK();
}

void ShmTransport::copy(Work& w) {
  Slice* s = w.slice;
  if (w.mapped) {
    if (s->op == Request::WRITE)
      copyInPieces(w.mapped, s->local, s->length, copy_piece_);
    else
      copyInPieces(s->local, w.mapped, s->length, copy_piece_);
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

bool ShmTransport::copyingLocked(std::thread::id id) const {
  return std::any_of(callers_.begin(), callers_.end(),
                     [&](const Caller& c) { return c.id == id && c.copying; });
}

void ShmTransport::popLocked(std::list<Submission>::iterator it, Work& out) {
  out = std::move(it->work[it->next++]);
  if (it->next == it->work.size()) queue_.erase(it);
}

bool ShmTransport::takeOwnLocked(std::thread::id owner, Work& out) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Submission& s) { return s.owner == owner; });
  if (it == queue_.end()) return false;
  popLocked(it, out);
  return true;
}

bool ShmTransport::takeForWorkerLocked(Work& out) {
  if (queue_.empty()) return false;
  // Work no one copies first: helping a copying owner only makes its batch end sooner.
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Submission& s) { return !copyingLocked(s.owner); });
  popLocked(it != queue_.end() ? it : queue_.begin(), out);
  return true;
}

ShmTransport::Outlook ShmTransport::outlookLocked() {
  Outlook out;
  const auto now = std::chrono::steady_clock::now();
  size_t claimed = busy_workers_;
  out.anyone_copying = busy_workers_ > 0;
  for (auto it = callers_.begin(); it != callers_.end();) {
    if (!it->copying && now - it->left >= caller_hold_) {
      it = callers_.erase(it);
      continue;
    }
    ++claimed;
    if (it->copying)
      out.anyone_copying = true;
    else
      out.retry = std::min(out.retry, it->left + caller_hold_);
    ++it;
  }
  if (queue_.empty()) return out;
  out.may_copy = claimed < max_copiers_;
  // Oldest first; submits being copied by their owners are few (one per copying caller).
  for (const auto& sub : queue_) {
    if (copyingLocked(sub.owner)) continue;
    out.unattended = true;
    if (now - sub.queued < caller_hold_) break;  // younger ones follow: none is overdue
    out.overdue = true;  // queued longer than any hold: its owner is not coming for it
    break;
  }
  return out;
}

bool ShmTransport::progress(const std::function<bool()>& done) {
  const auto me = std::this_thread::get_id();
  std::unique_lock lock(mu_);
  Work w;
  // Only a thread with submits of its own queued counts as a copier (and holds a CPU).
  if (done() || !takeOwnLocked(me, w)) return false;
  auto mine = [&] {
    return std::find_if(callers_.begin(), callers_.end(), [&](const Caller& c) { return c.id == me; });
  };
  auto self = mine();
  if (self == callers_.end()) self = callers_.insert(callers_.end(), Caller{me, false, {}});
  self->copying = true;  // not capped by max_copiers_: this thread would otherwise sleep
  do {
    lock.unlock();
    copy(w);
    w = Work{};
    lock.lock();
    // Copying threads keep the time for submits nobody else is watching (see submit()).
    if (busy_workers_ == 0 && outlookLocked().overdue) cv_.notify_one();
  } while (!done() && takeOwnLocked(me, w));
  self = mine();  // pruning never removes a copying entry, but may have moved it
  self->copying = false;
  self->left = std::chrono::steady_clock::now();
  if (outlookLocked().unattended) cv_.notify_one();  // a worker times its start
  return true;
}

void ShmTransport::workerLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    Outlook o = outlookLocked();
    // Overdue work is copied even on a claimed CPU: waiting threads that keep coming back
    // must not starve a thread that submitted and does not wait.
    if (!stopping_ && !o.may_copy && !o.overdue) {
      // Unattended work starts when the earliest held CPU is released; work its owners
      // copy needs no worker until a submit or a caller leaving changes that.
      if (o.unattended && o.retry != std::chrono::steady_clock::time_point::max())
        cv_.wait_until(lock, o.retry);
      else
        cv_.wait(lock);
      continue;
    }
    Work w;
    if (!takeForWorkerLocked(w)) return;  // stopping, and nothing is left
    ++busy_workers_;
    if (outlookLocked().may_copy) cv_.notify_one();
    lock.unlock();
    copy(w);
    w = Work{};  // release the mapping outside the lock
    lock.lock();
    --busy_workers_;
  }
}

}  // namespace ferry
