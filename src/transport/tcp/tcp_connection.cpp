#include "transport/tcp/tcp_connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <vector>

#include "common/checksum.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/net.h"
#include "control/handshake.h"
#include "transport/tcp/tcp_socket.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;
using namespace tcp_wire;

namespace {
// A write holds up to kMaxSlicesPerWrite plain frames and kMaxVectorFramesPerWrite vectored
// ones (WriteV/ReadV: a run of slices of host memory, one header and one answer for up to
// kMaxRanges of them).
constexpr size_t kMaxSlicesPerWrite = 64;
constexpr size_t kMaxVectorFramesPerWrite = 2;  // 32 MiB
constexpr size_t kFrameHead = wire::kHeaderSize + kFileRangeSize;  // the longer range
}  // namespace

// The drainer's arrays (~150 KiB at 1024 ranges a frame): on the heap, since a submitting
// thread may drain inline and its stack is not ours to size. Allocated without zeroing, so
// only the pages a write uses are touched.
struct TcpConnection::DrainScratch {
  // Per slice at most 3 iovecs for its payload (a flipped byte splits it) and one header.
  iovec iov[4 * kMaxSlicesPerWrite + kMaxVectorFramesPerWrite * (3 * kMaxRanges + 1)];
  // Headers live here, not in the slice: once its bytes are on the wire a slice may
  // complete and its batch be freed before sendmsg has returned.
  uint8_t heads[kMaxSlicesPerWrite][kFrameHead];
  uint8_t flipped[kMaxSlicesPerWrite];  // fault injection: a plain frame's changed byte
  uint8_t vector_heads[kMaxVectorFramesPerWrite][wire::kHeaderSize + kRangesHeadSize + kMaxRanges * kSumRangeSize];
  uint8_t vector_flipped[kMaxVectorFramesPerWrite][kMaxRanges];
  VectorFrame vecs[kMaxVectorFramesPerWrite];
};

Status TcpConnection::open(const std::string& host, uint16_t port, int connect_timeout_ms,
                           const Options& options, std::shared_ptr<TcpConnection>& out, bool* other_instance) {
  int fd = -1;
  FERRY_RETURN_IF_ERROR(net::connectTcp(host, port, connect_timeout_ms, fd, options.source));
  net::setLiveness(fd, options.liveness_ms);
  tcp_socket::applySendBuffer(fd, options.send_buffers);
  const std::string where =
      net::joinHostPort(host, port) + (options.source.empty() ? "" : " (from " + options.source + ")");
  if (!options.token.empty()) {
    bool ignored = false;
    Status st = verifyPeer(fd, where, connect_timeout_ms, options, other_instance ? other_instance : &ignored);
    if (!st.ok()) {
      ::close(fd);
      return st;
    }
  }
  std::shared_ptr<TcpConnection> c(new TcpConnection(fd, where, options));
  c->sender_ = std::thread([p = c.get()] { p->senderLoop(); });
  c->receiver_ = std::thread([p = c.get()] { p->receiverLoop(); });
  out = std::move(c);
  return Status::OK();
}

Status TcpConnection::verifyPeer(int fd, const std::string& where, int timeout_ms, const Options& options,
                                 bool* other_instance) {
  handshake::Identity id;
  FERRY_RETURN_IF_ERROR(handshake::client(fd, options.token, timeout_ms, where, &id));
  if (!options.expect_name.empty() && id.name != options.expect_name)
    return Status::PermissionDenied(where + " is segment '" + id.name + "', not '" + options.expect_name +
                                    "' as its descriptor says");
  if (!options.expect_instance.empty() && id.instance != options.expect_instance) {
    // Restarted since we read its descriptor (or the descriptor is not its): read it again.
    *other_instance = true;
    return Status::Unavailable(where + " is instance " + id.instance + " of '" + id.name + "', not " +
                               options.expect_instance);
  }
  return Status::OK();
}

TcpConnection::TcpConnection(int fd, std::string where, const Options& options)
    : fd_(fd), where_(std::move(where)), options_(options), drain_scratch_(new DrainScratch) {
  if (options_.live) options_.live->fetch_add(1, std::memory_order_relaxed);
}

TcpConnection::~TcpConnection() {
  abort(Status::Canceled("connection closed"));
  join();
  ::close(fd_);
  if (options_.live) options_.live->fetch_sub(1, std::memory_order_relaxed);
}

void TcpConnection::join() {
  if (sender_.joinable()) sender_.join();
  if (receiver_.joinable()) receiver_.join();
}

void TcpConnection::enqueue(Slice* const* slices, size_t count, bool may_send_inline) {
  std::unique_lock lock(mu_);
  if (dead()) {
    Status why = kill_reason_.ok() ? Status::Unavailable("connection to " + where_ + " is closed")
                                   : kill_reason_;
    lock.unlock();
    for (size_t i = 0; i < count; ++i) completeSlice(slices[i], why);
    return;
  }
  uint64_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    sendq_[slices[i]->task->priority].push_back(slices[i]);
    bytes += slices[i]->length;
  }
  outstanding_.fetch_add(bytes, std::memory_order_relaxed);
  if (sending_) return;  // the active sender will pick these up
  if (!may_send_inline) {
    cv_.notify_all();
    return;
  }
  // Send small work ourselves: no thread wake-up on the latency path.
  sending_ = true;
  drain(lock, options_.inline_send_bytes);
  sending_ = false;
  if (anyQueuedLocked() || dead()) cv_.notify_all();
}

namespace {
// A payload's iovecs: one, or three with its middle byte replaced by `*flipped` when `flip`
// (fault injection: the byte flipByte changes). Returns how many were added.
int payloadIov(iovec* out, const uint8_t* payload, uint64_t length, bool flip, uint8_t* flipped) {
  if (!flip || length == 0) {
    out[0] = {const_cast<uint8_t*>(payload), length};
    return 1;
  }
  const uint64_t k = flipOffset(length);
  *flipped = payload[k] ^ kFlipMask;
  out[0] = {const_cast<uint8_t*>(payload), k};
  out[1] = {flipped, 1};
  out[2] = {const_cast<uint8_t*>(payload) + k + 1, length - k - 1};
  return 3;
}


// What the socket buffers hold (several MiB on loopback) is what a higher-class slice
// waits behind, whatever the queue order: lower classes keep at most this much in flight.
constexpr uint64_t kMaxLowerClassInFlight = 4 << 20;
}  // namespace

bool TcpConnection::lowerClassHeldLocked() {
  if (!anyQueuedLocked() || lower_inflight_ == 0) return false;
  const Slice* next = nextQueueLocked().front();
  return next->task->priority > 0 && lower_inflight_ + next->length > kMaxLowerClassInFlight;
}

bool TcpConnection::anyQueuedLocked() const {
  for (const auto& q : sendq_)
    if (!q.empty()) return true;
  return false;
}

std::deque<Slice*>& TcpConnection::nextQueueLocked() {
  for (auto& q : sendq_)
    if (!q.empty()) return q;
  return sendq_.back();  // all empty
}

void TcpConnection::drain(std::unique_lock<std::mutex>& lock, uint64_t budget) {
  // Queue order is decided between writes: a slice of a higher class queued meanwhile waits
  // for at most this much of a write of lower-class slices in progress (plus what the
  // socket buffers hold). Writes of the top class are not cut (nothing could overtake them,
  // and smaller writes cost 5-8 % at 1 MiB x 64 here).
  constexpr uint64_t kMaxLowerClassBytesPerWrite = 2 << 20;
  DrainScratch& scratch = *drain_scratch_;
  iovec* const iov = scratch.iov;
  auto& heads = scratch.heads;
  auto& flipped = scratch.flipped;
  auto& vector_heads = scratch.vector_heads;
  auto& vector_flipped = scratch.vector_flipped;
  auto& vecs = scratch.vecs;
  while (anyQueuedLocked() && !dead()) {
    int n = 0;
    size_t taken = 0, plain = 0, nvec = 0;
    bool sent_alone = false;  // a GPU slice went out on its own (sendFromGpu)
    uint64_t bytes = 0;
    uint64_t limit = budget;
    while (anyQueuedLocked()) {
      std::deque<Slice*>& queue = nextQueueLocked();
      Slice* s = queue.front();
      if (Status admit = admitSlice(*s); !admit.ok()) {  // canceled or out of time: never sent
        queue.pop_front();
        outstanding_.fetch_sub(s->length, std::memory_order_relaxed);
        lock.unlock();
        completeSlice(s, admit);
        lock.lock();
        continue;
      }
      if (lowerClassHeldLocked()) break;  // until answers make room (the receiver wakes the sender)
      uint64_t cost = s->op == Request::WRITE ? s->length : 0;
      // GPU bytes go through the one staging buffer: such a slice is a write of its own.
      const bool staged = s->op == Request::WRITE && s->local_kind == kCudaMemory;
      if (s->task->priority > 0) limit = std::min(limit, kMaxLowerClassBytesPerWrite);
      if (taken > 0 && (bytes + cost > limit || staged)) break;
      if (taken == 0 && cost > budget) return;  // too big to send inline: hand off
      if (staged) {
        queue.pop_front();
        budget -= std::min(budget, cost);
        sendFromGpu(lock, s);
        sent_alone = true;
        break;
      }
      VectorFrame* last = nvec ? &vecs[nvec - 1] : nullptr;
      if (vectorizable(*s)) {
        const bool summed = s->task->checksum;
        const size_t pieces = rangeCount(*s);
        const bool joins = last && last->open && last->op == s->op && last->summed == summed &&
                           last->count + pieces <= kMaxRanges && last->bytes + s->length <= kMaxVectorFrameBytes;
        // Opened only for a run: a lone small slice goes as a plain frame (a slice of several
        // pieces is a run of its own).
        const bool run = pieces > 1 || (queue.size() > 1 && vectorizable(*queue[1]) && queue[1]->op == s->op &&
                                        queue[1]->task->checksum == summed);
        if (!joins && run && nvec == kMaxVectorFramesPerWrite) break;  // the next write takes it
        if (joins || run) {
          queue.pop_front();
          if (!joins) {
            if (last) last->open = false;
            vecs[nvec] = VectorFrame{true, s->op, summed, static_cast<size_t>(n), 0, 0, next_id_++};
            last = &vecs[nvec++];
            iov[n++] = {nullptr, 0};  // its header, made when the write is
          }
          s->request_id = last->request_id;
          uint8_t* entries = vector_heads[nvec - 1] + wire::kHeaderSize + kRangesHeadSize;
          const SliceRanges ranges(*s);
          if (summed && s->op == Request::WRITE) lock.unlock();  // as for staging: sending_ keeps other drainers away
          for (size_t k = 0; k < ranges.size(); ++k) {
            const SliceRange& r = ranges[k];
            if (summed && s->op == Request::WRITE)
              encodeSumRange(r.remote, r.length, checksum::xxh3(r.local, r.length),
                             entries + last->count * kSumRangeSize);
            else
              encodeRange(r.remote, r.length, entries + last->count * kRangeSize);
            if (s->op == Request::WRITE)
              n += payloadIov(&iov[n], r.local, r.length, flipsIn(*s, k), &vector_flipped[nvec - 1][last->count]);
            ++last->count;
          }
          if (summed && s->op == Request::WRITE) lock.lock();
          last->bytes += s->length;
          inflight_.push_back(s);
          if (s->task->priority > 0) lower_inflight_ += s->length;
          bytes += cost;
          ++taken;
          continue;
        }
      }
      if (s->ranges) {  // cannot happen (vectorizable below kMaxDataBytes): never sent as one range
        queue.pop_front();
        outstanding_.fetch_sub(s->length, std::memory_order_relaxed);
        lock.unlock();
        completeSlice(s, Status::InternalError("tcp: a slice of several pieces that no frame can carry"));
        lock.lock();
        continue;
      }
      if (plain == kMaxSlicesPerWrite) break;
      if (last) last->open = false;  // a plain frame follows it: the vectored frame is complete
      queue.pop_front();
      const uint8_t* payload = s->local;
      bool write = s->op == Request::WRITE;
      const bool summed = s->task->checksum && !s->file_id;  // host memory (the selector's checksum_kinds)
      if (summed && write) {
        lock.unlock();  // as for staging: sending_ keeps other drainers away
        const uint64_t sum = checksum::xxh3(payload, s->length);
        lock.lock();
        putU64(heads[plain] + wire::kHeaderSize + kRangeSize, sum);
      }
      s->request_id = next_id_++;
      MsgType type = s->file_id ? (write ? kFileWrite : kFileRead)
                     : summed   ? (write ? kWriteSum : kReadSum)
                                : (write ? kWrite : kRead);
      const size_t range_size = rangeSizeOf(type);
      FrameHeader h{type, static_cast<uint32_t>(range_size + (write ? s->length : 0)), 0,
                    s->request_id};
      wire::encodeHeader(h, heads[plain]);
      if (s->file_id)
        encodeFileRange(s->file_id, s->remote, s->length, heads[plain] + wire::kHeaderSize);
      else
        encodeRange(s->remote, s->length, heads[plain] + wire::kHeaderSize);
      iov[n++] = {heads[plain], wire::kHeaderSize + range_size};
      if (write) n += payloadIov(&iov[n], payload, s->length, s->flip_byte, &flipped[plain]);
      ++plain;
      inflight_.push_back(s);  // before the write: the response may beat us back
      if (s->task->priority > 0) lower_inflight_ += s->length;
      bytes += cost;
      ++taken;
    }
    if (sent_alone) continue;
    if (n == 0) return;  // held (lowerClassHeldLocked) or nothing admissible was left
    for (size_t v = 0; v < nvec; ++v) {
      const VectorFrame& vec = vecs[v];
      const bool write = vec.op == Request::WRITE;
      const MsgType type = write ? (vec.summed ? kWriteSumV : kWriteV) : (vec.summed ? kReadSumV : kReadV);
      const size_t head_len = kRangesHeadSize + vec.count * rangeEntrySize(type);
      FrameHeader h{type, static_cast<uint32_t>(head_len + (write ? vec.bytes : 0)), 0, vec.request_id};
      wire::encodeHeader(h, vector_heads[v]);
      encodeRangesHead(static_cast<uint32_t>(vec.count), vector_heads[v] + wire::kHeaderSize);
      iov[vec.head_iov] = {vector_heads[v], wire::kHeaderSize + head_len};
    }
    budget -= std::min(budget, bytes);
    lock.unlock();
    Status st = net::writeAllV(fd_, iov, n);
    lock.lock();
    // This write's slices are the newest in flight, none answered yet (the receiver waits
    // for written_): what follows for them is the wait for the peer. Only while the engine
    // times stages (its slices carry admission times), so no walk otherwise.
    if (st.ok() && !inflight_.empty() && inflight_.back()->admitted_ns)
      for (size_t k = inflight_.size() - std::min(taken, inflight_.size()); k < inflight_.size(); ++k)
        markSent(*inflight_[k]);
    wroteLocked(next_id_ - 1);  // one drainer at a time (sending_): every id so far went out
    if (!st.ok()) {
      shutLocked(Status::Unavailable("send to " + where_ + " failed: " + st.message()), false);
      return;
    }
  }
}

bool TcpConnection::vectorizable(const Slice& s) {
  return s.file_id == 0 && s.local_kind == kHostMemory && s.remote_kind == kHostMemory &&
         s.length <= (s.ranges ? kMaxDataBytes : kMaxVectorSliceBytes);
}

void TcpConnection::sendFromGpu(std::unique_lock<std::mutex>& lock, Slice* s) {
  s->request_id = next_id_++;
  inflight_.push_back(s);  // before the write: the response may beat us back
  if (s->task->priority > 0) lower_inflight_ += s->length;
  uint8_t head[wire::kHeaderSize + kRangeSize];
  wire::encodeHeader(FrameHeader{kWrite, static_cast<uint32_t>(kRangeSize + s->length), 0, s->request_id}, head);
  encodeRange(s->remote, s->length, head + wire::kHeaderSize);
  lock.unlock();  // sending_ keeps other drainers away from the staging buffer
  bool emitted = false;
  Status sent;  // the socket's verdict
  Status st = Status::InternalError("tcp: a GPU slice on a connection without the CUDA driver");
  if (options_.gpu) {
    st = options_.gpu->copyOutPieces(
        s->local, s->length, send_staging_.reserve(cuda::kPieceStagingBytes), cuda::kPieceStagingBytes,
        [&](const uint8_t* piece, size_t len) {
          iovec iov[2];
          int n = 0;
          if (!emitted) iov[n++] = {head, sizeof head};  // the header goes with the first piece
          iov[n++] = {const_cast<uint8_t*>(piece), len};
          return sent = net::writeAllV(fd_, iov, n);
        },
        &emitted);
  }
  lock.lock();
  wroteLocked(s->request_id);
  if (st.ok()) {
    if (s->admitted_ns) markSent(*s);
    return;
  }
  if (!emitted) {  // nothing reached the peer: only this slice fails, the connection carries on
    inflight_.pop_back();  // still the newest, and unanswered: nothing of it was sent
    if (s->task->priority > 0) lower_inflight_ -= s->length;
    outstanding_.fetch_sub(s->length, std::memory_order_relaxed);
    lock.unlock();
    completeSlice(s, st);
    lock.lock();
    return;
  }
  // Part of the frame is out and the rest cannot follow: the connection ends here.
  shutLocked(sent.ok() ? st : Status::Unavailable("send to " + where_ + " failed: " + sent.message()), false);
}

void TcpConnection::wroteLocked(uint64_t request_id) {
  written_ = request_id;
  if (receiver_waits_) cv_.notify_all();
}

void TcpConnection::shutLocked(const Status& reason, bool by_us) {
  if (kill_reason_.ok()) {
    kill_reason_ = reason;
    closed_by_us_ = by_us;
  }
  dead_.store(true, std::memory_order_release);
  ::shutdown(fd_, SHUT_RDWR);  // the receiver sees it and fails everything
  cv_.notify_all();
}

void TcpConnection::senderLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    sender_waits_ = true;
    cv_.wait(lock, [&] { return dead() || (!sending_ && anyQueuedLocked() && !lowerClassHeldLocked()); });
    sender_waits_ = false;
    if (dead()) break;
    sending_ = true;
    drain(lock, UINT64_MAX);
    sending_ = false;
    cv_.notify_all();
  }
}

void TcpConnection::failAll(const Status& cause) {
  std::deque<Slice*> victims;
  Status why;
  bool lost = false;
  {
    std::unique_lock lock(mu_);
    dead_.store(true, std::memory_order_release);
    ::shutdown(fd_, SHUT_RDWR);
    cv_.notify_all();
    // Nobody may still be reading a slice's memory when we report it finished.
    cv_.wait(lock, [&] { return !sending_; });
    why = kill_reason_.ok()
              ? Status::Unavailable("connection to " + where_ + " lost: " + cause.message())
              : kill_reason_;
    if (kill_reason_.ok()) {
      if (cause.code() == Status::Code::kCorrupted)
        FERRY_LOG(WARN) << "closing connection to " << where_ << ": " << cause.ToString();
      kill_reason_ = why;
    }
    lost = !closed_by_us_ && cause.code() != Status::Code::kCorrupted;
    // Written (or being written) and unanswered: the target may still be taking them in.
    for (Slice* s : inflight_) markUnfenced(*s);
    victims.swap(inflight_);
    for (auto& q : sendq_) {
      victims.insert(victims.end(), q.begin(), q.end());
      q.clear();
    }
  }
  outstanding_.store(0, std::memory_order_relaxed);
  if (lost && options_.on_lost && !victims.empty()) {
    options_.on_lost(this, std::move(victims), why);
    return;
  }
  for (Slice* s : victims) completeSlice(s, why);
}

void TcpConnection::checkDeadline(int64_t now_ns) {
  std::lock_guard lock(mu_);
  if (dead()) return;
  // Sent slices are answered in order; queued ones of any class may be the oldest.
  Slice* oldest = !inflight_.empty() ? inflight_.front() : nullptr;
  for (const auto& q : sendq_)
    if (!q.empty() && (!oldest || q.front()->deadline_ns < oldest->deadline_ns)) oldest = q.front();
  if (!oldest || oldest->deadline_ns > now_ns) return;
  shutLocked(Status::Timeout("no completion from " + where_ + " within " +
                             std::to_string(options_.transfer_timeout_ms) + " ms (transfer_timeout)"),
             true);
  FERRY_LOG(WARN) << kill_reason_.message() << "; closing the connection";
}

void TcpConnection::abort(const Status& reason) {
  std::lock_guard lock(mu_);
  shutLocked(reason, true);
}

}  // namespace ferry
