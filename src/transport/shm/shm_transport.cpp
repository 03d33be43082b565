#include "transport/shm/shm_transport.h"

#include <sched.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "transport/checked_copy.h"
#include "transport/shm/cross_memory.h"
#include "transport/shm/shm_endpoint.h"

namespace ferry {

namespace shm_wire {
namespace {
Status define(wire::MessageTable& t) {
  FERRY_RETURN_IF_ERROR(t.define(kShmFile, {"ShmFile", false, 0, 0}));
  return t.define(kShmOpen, {"ShmOpen", true, 1, kMaxNameBytes, kShmFile});
}
}  // namespace

const wire::MessageTable& messages() {
  static const wire::MessageTable table = wire::controlMessagesWith(&define);
  return table;
}
}  // namespace shm_wire

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

void ShmTransport::declareOptions(OptionTable& t) {
  t.integer("copy_threads", 0, 0, 64, "copy workers; 0 = one per CPU this process may use (affinity), up to 4");
  t.integer("slice_size", 1 << 20, 4096, 1ll << 30, "unit of work handed to a copy worker");
  t.integer("copy_piece_bytes", 256 << 10, 0, 1ll << 30,
            "largest single `memcpy` (0: one per slice); see Performance");
  t.integer("inline_bytes", 64 << 10, 0, INT64_MAX, "submits up to this size are copied by the caller");
  t.integer("caller_hold_us", 1000, 0, 1000000,
            "a thread that copied its own slices in `waitTransfer` keeps its CPU from workers this "
            "long after (it is usually back with the next batch)");
  t.flag("cross_memory_attach", true, "reach unshared memory with `process_vm_*`");
}

TransportCaps ShmTransport::caps() const {
  return {.reaches_same_machine = true,
          .checksum_kinds = kHostMemory,
          .multi_range = true,
          .latency_us = 2,
          .bandwidth_GBps = 20};
}

Status ShmTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  slice_size_ = c.get<uint64_t>("transports/shm/slice_size");
  inline_bytes_ = c.get<uint64_t>("transports/shm/inline_bytes");
  copy_piece_ = c.get<uint64_t>("transports/shm/copy_piece_bytes");
  streaming_min_bytes_ = streamingMinBytes(c);
  cross_memory_attach_ = c.get<bool>("transports/shm/cross_memory_attach");
  // The CPUs this process may run on (taskset, cgroup cpusets), not the machine's.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int64_t usable = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? std::max(CPU_COUNT(&cpus), 1) : 1;
  int64_t threads = c.get<int64_t>("transports/shm/copy_threads");
  if (threads <= 0) threads = std::clamp<int64_t>(usable, 1, 4);
  copy_threads_ = static_cast<size_t>(threads);
  max_copiers_ = std::max(copy_threads_, static_cast<size_t>(usable));
  caller_hold_ = std::chrono::microseconds(c.get<int64_t>("transports/shm/caller_hold_us"));
  dir_ = ctx.localDir();
  prefix_ = "ferry." + ctx.instanceId() + ".";
  // Peers attach through our local socket and ask for our files there.
  const wire::MessageTable& m = shm_wire::messages();
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(shm_wire::kShmFile, *m.find(shm_wire::kShmFile), nullptr));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(shm_wire::kShmOpen, *m.find(shm_wire::kShmOpen),
                                          [this](const wire::FrameHeader& h, ServerConnection& c) {
                                            return serveOpen(h, c);
                                          }));
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
  // The descriptor's claims only pick the candidate; attaching proves it (LocalPeer).
  if (peer.is_self || peer.file || !peer.desc || !ctx_ || dir_.empty() || peer.machine_id != ctx_->machineId())
    return false;
  return peer.desc->speaks("shm");
}

Status ShmTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  out = endpoints_.get(peer.instanceKey(), [this] { return std::make_shared<ShmEndpoint>(*this); });
  return Status::OK();
}

namespace {
// Memory in a shared-memory file of ours; the file goes when the allocation does (a peer's
// mapping keeps its pages, not ours).
class ShmAllocation : public Allocation {
 public:
  ShmAllocation(std::string dir, std::string name, std::function<void()> forget)
      : dir_(std::move(dir)), name_(std::move(name)), forget_(std::move(forget)) {}
  ~ShmAllocation() override {
    forget_();
    shm::destroy(dir_, name_, addr, size);
  }

 private:
  std::string dir_, name_;
  std::function<void()> forget_;
};

// The name in our own attrs of a buffer ("" when it lies in no shared file).
std::string sharedFileOf(const BufferDesc& b) {
  auto it = b.attrs.find("shm");
  if (it == b.attrs.end()) return "";
  auto j = nlohmann::json::parse(it->second, nullptr, false);
  return j.is_object() && j.contains("name") && j["name"].is_string() ? j["name"].get<std::string>() : "";
}
}  // namespace

Status ShmTransport::allocate(size_t size, const Location& location, std::unique_ptr<Allocation>& out) {
  if (memoryKindOf(location) != kHostMemory) return Status::NotSupported("shm allocates host memory only");
  if (dir_.empty()) return Status::NotSupported("no same-machine directory: memory stays private");
  static std::atomic<uint64_t> counter{0};
  const std::string name = prefix_ + std::to_string(counter.fetch_add(1));
  void* p = nullptr;
  FERRY_RETURN_IF_ERROR(shm::create(dir_, name, size, &p));
  auto table = files_;
  {
    std::lock_guard lock(table->mu);
    table->by_addr[reinterpret_cast<uintptr_t>(p)] = {name, size};
  }
  auto a = std::make_unique<ShmAllocation>(dir_, name, [table, key = reinterpret_cast<uintptr_t>(p)] {
    std::lock_guard lock(table->mu);
    table->by_addr.erase(key);
  });
  a->addr = p;
  a->size = size;
  out = std::move(a);
  return Status::OK();
}

Status ShmTransport::registerMemory(const BufferDesc& b, const MemoryOptions& options, std::string& attrs) {
  attrs.clear();
  // A local-only buffer is never offered for mapping.
  if (b.perm == kLocalReadWrite || memoryKindOf(b.location) != kHostMemory) return Status::OK();
  std::string name;
  uint64_t offset = 0;
  std::lock_guard lock(files_->mu);
  if (!options.shm_path.empty()) {
    if (options.shm_path[0] != '/' || options.shm_path.size() > shm_wire::kMaxNameBytes ||
        options.shm_path.find('/', 1) != std::string::npos)
      return Status::InvalidArgument("shm_path must be a POSIX shared-memory name like /name, got '" +
                                     options.shm_path + "'");
    name = options.shm_path;
    offset = options.shm_offset;
  } else {
    auto it = files_->by_addr.upper_bound(b.base);
    if (it == files_->by_addr.begin()) return Status::OK();
    --it;
    const auto& [file, size] = it->second;
    if (b.base - it->first >= size || b.length > size - (b.base - it->first)) return Status::OK();
    name = file;
    offset = b.base - it->first;
  }
  auto& offered = files_->offered[name];
  ++offered.buffers;
  if (b.perm == kGlobalReadWrite) ++offered.writable;
  attrs = "{\"name\":" + jsonQuote(name) + ",\"offset\":" + std::to_string(offset) + "}";
  return Status::OK();
}

Status ShmTransport::unregisterMemory(const BufferDesc& b) {
  std::string name = sharedFileOf(b);
  if (name.empty()) return Status::OK();
  std::lock_guard lock(files_->mu);
  auto it = files_->offered.find(name);
  if (it == files_->offered.end()) return Status::OK();
  if (b.perm == kGlobalReadWrite) --it->second.writable;
  if (--it->second.buffers == 0) files_->offered.erase(it);
  return Status::OK();
}

Status ShmTransport::serveOpen(const wire::FrameHeader& h, ServerConnection& conn) {
  std::string name(h.body_len, '\0');
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(name.data(), name.size()));
  if (!conn.local()) {
    conn.respond(shm_wire::kShmFile, h.request_id,
                 Status::NotSupported("shared files are handed to same-machine peers on the local socket only"));
    return Status::OK();
  }
  bool writable = false;
  {
    std::lock_guard lock(files_->mu);
    auto it = files_->offered.find(name);
    if (it == files_->offered.end()) {
      conn.respond(shm_wire::kShmFile, h.request_id,
                   Status::NotFound("no registered buffer lies in a shared file called '" + name + "'"));
      return Status::OK();
    }
    writable = it->second.writable > 0;
  }
  int fd = -1;
  Status st = shm::openForPeer(dir_, name, writable, fd);
  if (!st.ok()) {
    conn.respond(shm_wire::kShmFile, h.request_id, st);
    return Status::OK();
  }
  st = conn.respondWithFds(shm_wire::kShmFile, h.request_id, {}, {fd});
  ::close(fd);
  return st;
}

Status ShmTransport::dispatch(std::vector<Work> work, std::shared_ptr<const Holds> holds, uint64_t bytes) {
  if (bytes >= streaming_min_bytes_)
    for (Work& w : work) w.streamed = true;
  if (bytes <= inline_bytes_) {
    Take all{std::move(work), std::move(holds)};
    copyRun(all);  // small: no thread hand-off on the latency path
    return Status::OK();
  }
  std::lock_guard lock(mu_);
  if (stopping_) return Status::Canceled("engine is shutting down");
  uint8_t priority = kPriorityClasses - 1;
  for (const Work& w : work) priority = std::min(priority, w.slice->task->priority);
  queue_.push_back(Submission{std::this_thread::get_id(), std::move(work), std::move(holds), 0,
                              std::chrono::steady_clock::now(), priority});
  // A worker starts when a CPU is free for it. When none is, it is not woken just to
  // wait: this thread usually copies the submit itself from waitTransfer, and if it does
  // not, the threads copying now notice once its hold runs out (or wake a worker on
  // leaving). With no one copying, nobody would notice: wake one to keep the time.
  Outlook o = outlookLocked();
  if (o.may_copy || !o.anyone_copying) cv_.notify_one();
  return Status::OK();
}

void ShmTransport::cancelQueued(const ShmEndpoint* peer) {
  std::vector<Work> canceled;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      // A submit's slices all go to one peer, the one its holds keep; those taken already
      // are being copied and complete on their own.
      if (it->holds->peer.get() != peer) {
        ++it;
        continue;
      }
      for (size_t i = it->next; i < it->work.size(); ++i) canceled.push_back(std::move(it->work[i]));
      it = queue_.erase(it);
    }
  }
  for (auto& w : canceled) completeSlice(w.slice, Status::Canceled("the peer instance is gone"));
}

Status ShmTransport::move(Work& w, ShmEndpoint& peer) {
  Slice* s = w.slice;
  FERRY_RETURN_IF_ERROR(admitSlice(*s));  // copies stop at slice boundaries
  if (w.mapped) {
    const SliceRanges pieces(*s);
    if (w.streamed && pieces.size() > 1 && !s->task->checksum && !s->flip_byte) {
      copyPiecesStreamed(w, pieces);
      return Status::OK();
    }
    for (size_t k = 0; k < pieces.size(); ++k) {
      auto [dst, src] = ends(w, pieces[k]);
      FERRY_RETURN_IF_ERROR(checkedCopy(
          *s, dst, src, pieces[k].length, flipsIn(*s, k),
          [this](uint8_t* d, const uint8_t* from, uint64_t n) { copyInPieces(d, from, n, copy_piece_); }, w.streamed));
    }
    return Status::OK();
  }
  // Cross-memory attach: the kernel copies between the address spaces.
  bool denied = false;
  Status st = cross_memory::checkedCopy(*s, static_cast<pid_t>(w.pid), &denied);
  if (denied && peer.markAttachDenied())
    FERRY_LOG(WARN) << "cross-memory attach to pid " << w.pid << " refused (" << st.message()
                    << "; ptrace restrictions?): its unshared buffers go over the next transport";
  return st;
}

void ShmTransport::copyPiecesStreamed(const Work& w, const SliceRanges& pieces) {
  // As copyRun does across slices: two pieces of one length at once, the next two prefetched.
  const size_t count = pieces.size();
  for (size_t k = 0; k < count;) {
    auto [dst, src] = ends(w, pieces[k]);
    if (k + 1 < count && pieces[k + 1].length == pieces[k].length) {
      for (size_t next = k + 2; next < std::min(k + 4, count); ++next) prefetchSource(w, pieces[next]);
      auto [dst2, src2] = ends(w, pieces[k + 1]);
      streaming::copyPairUnfenced(dst, src, dst2, src2, pieces[k].length);
      k += 2;
      continue;
    }
    if (k + 1 < count) prefetchSource(w, pieces[k + 1]);
    streaming::copyUnfenced(dst, src, pieces[k].length);
    ++k;
  }
}

std::pair<uint8_t*, const uint8_t*> ShmTransport::ends(const Work& w, const SliceRange& piece) {
  // Every piece lies in the mapping at the offset it has from the first (resolve()).
  auto* mapped = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(w.mapped) + (piece.remote - w.slice->remote));
  if (w.slice->op == Request::WRITE) return {mapped, piece.local};
  return {piece.local, mapped};
}

bool ShmTransport::pairable(const Work& a, const Work& b) {
  // Plain copies of mapped bytes, alike in length; checked or corrupted ones (the fault
  // transport's flip) go one by one through checkedCopy.
  for (const Work* w : {&a, &b})
    if (!w->mapped || w->slice->ranges || w->slice->task->checksum || w->slice->flip_byte) return false;
  return a.slice->length == b.slice->length;
}

bool ShmTransport::movePair(Work& a, Work& b) {
  if (!admitSlice(*a.slice).ok() || !admitSlice(*b.slice).ok()) return false;
  auto [dst_a, src_a] = ends(a, SliceRanges(*a.slice)[0]);
  auto [dst_b, src_b] = ends(b, SliceRanges(*b.slice)[0]);
  streaming::copyPairUnfenced(dst_a, src_a, dst_b, src_b, a.slice->length);
  return true;
}

void ShmTransport::prefetchSource(const Work& w) { prefetchSource(w, SliceRanges(*w.slice)[0]); }

void ShmTransport::prefetchSource(const Work& w, const SliceRange& piece) {
  if (!w.mapped) return;  // cross-memory attach: the kernel reads the source
  streaming::prefetchSource(ends(w, piece).second, piece.length);
}

void ShmTransport::copyRun(Take& run) {
  Slice* done[kMaxTake];  // moved, of one task, not yet completed
  size_t n = 0;
  // A take comes from one submit, whose works all stream or all do not (dispatch).
  const bool streamed = !run.work.empty() && run.work.front().streamed;
  auto flush = [&] {
    if (!n) return;
    if (streamed) streaming::fence();  // streamed copies (checkedCopy's `large`) land before they complete
    completeSlicesOk(done, n);
    n = 0;
  };
  auto finish = [&](Slice* s, const Status& st) {
    if (n && (n == kMaxTake || !st.ok() || done[0]->task != s->task)) flush();
    if (st.ok())
      done[n++] = s;
    else
      completeSlice(s, st);
  };
  const size_t count = run.work.size();
  for (size_t i = 0; i < count; ++i) {
    Work& w = run.work[i];
    // Two slices at once where they allow it, the next two prefetched meanwhile; else one,
    // the next prefetched (a slice that cannot start is refused by move()).
    if (streamed && i + 1 < count && pairable(w, run.work[i + 1])) {
      for (size_t k = i + 2; k < std::min(i + 4, count); ++k) prefetchSource(run.work[k]);
      if (movePair(w, run.work[i + 1])) {
        finish(w.slice, Status::OK());
        finish(run.work[++i].slice, Status::OK());
        continue;
      }
    }
    if (streamed && i + 1 < count) prefetchSource(run.work[i + 1]);
    finish(w.slice, move(w, *run.holds->peer));
  }
  flush();
  run.work.clear();
  run.holds.reset();
}

bool ShmTransport::copyingLocked(std::thread::id id) const {
  return std::any_of(callers_.begin(), callers_.end(),
                     [&](const Caller& c) { return c.id == id && c.copying; });
}

void ShmTransport::popLocked(std::list<Submission>::iterator it, Take& out) {
  out.holds = it->holds;
  uint64_t bytes = 0;
  while (it->next < it->work.size() && out.work.size() < kMaxTake && bytes < kTakeBytes) {
    bytes += it->work[it->next].slice->length;
    out.work.push_back(it->work[it->next++]);
  }
  if (it->next == it->work.size()) queue_.erase(it);
}

bool ShmTransport::takeOwnLocked(std::thread::id owner, Take& out) {
  auto best = queue_.end();  // the oldest of the highest class
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (it->owner == owner && (best == queue_.end() || it->priority < best->priority)) best = it;
  if (best == queue_.end()) return false;
  popLocked(best, out);
  return true;
}

bool ShmTransport::takeForWorkerLocked(Take& out) {
  if (queue_.empty()) return false;
  // The highest class first (Request::priority); within it, the oldest work no one copies:
  // helping a copying owner only makes its batch end sooner.
  auto best = queue_.end();
  bool best_attended = true;
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (best != queue_.end() && it->priority > best->priority) continue;
    const bool attended = copyingLocked(it->owner);
    if (best == queue_.end() || it->priority < best->priority || (best_attended && !attended)) {
      best = it;
      best_attended = attended;
    }
  }
  popLocked(best, out);
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
  thread_local Take run;
  // Only a thread with submits of its own queued counts as a copier (and holds a CPU).
  if (done() || !takeOwnLocked(me, run)) return false;
  auto mine = [&] {
    return std::find_if(callers_.begin(), callers_.end(), [&](const Caller& c) { return c.id == me; });
  };
  auto self = mine();
  if (self == callers_.end()) self = callers_.insert(callers_.end(), Caller{me, false, {}});
  self->copying = true;  // not capped by max_copiers_: this thread would otherwise sleep
  do {
    lock.unlock();
    copyRun(run);
    lock.lock();
    // Copying threads keep the time for submits nobody else is watching (see submit()).
    if (busy_workers_ == 0 && outlookLocked().overdue) cv_.notify_one();
  } while (!done() && takeOwnLocked(me, run));
  self = mine();  // pruning never removes a copying entry, but may have moved it
  self->copying = false;
  self->left = std::chrono::steady_clock::now();
  if (outlookLocked().unattended) cv_.notify_one();  // a worker times its start
  return true;
}

void ShmTransport::workerLoop() {
  std::unique_lock lock(mu_);
  Take run;
  run.work.reserve(kMaxTake);
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
    if (!takeForWorkerLocked(run)) return;  // stopping, and nothing is left
    ++busy_workers_;
    if (outlookLocked().may_copy) cv_.notify_one();
    lock.unlock();
    copyRun(run);  // releases the mappings outside the lock
    lock.lock();
    --busy_workers_;
  }
}

}  // namespace ferry
