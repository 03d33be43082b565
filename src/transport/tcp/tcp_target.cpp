#include "transport/tcp/tcp_target.h"

#include <algorithm>
#include <cstdlib>

#include "common/checksum.h"
#include "common/endian.h"
#include "common/file_io.h"
#include "common/log.h"
#include "transport/tcp/tcp_socket.h"
#include "transport/tcp/tcp_wire.h"
#include "transport/transport.h"

namespace ferry {

using wire::FrameHeader;
using namespace tcp_wire;

BouncePool::Lease::~Lease() {
  if (pool_) pool_->give(buf_, cap_);
}

BouncePool::~BouncePool() {
  for (auto& [cap, buf] : cached_) release(buf);
}

void BouncePool::release(uint8_t* buf) {
  auto it = std::find(pinned_.begin(), pinned_.end(), buf);
  if (it != pinned_.end()) {
    gpu_->unpin(buf);
    pinned_.erase(it);
  }
  std::free(buf);
}

void BouncePool::configure(size_t cap, uint32_t align) {
  cap_ = cap;
  align_ = align;
}

Status BouncePool::take(uint64_t len, std::chrono::steady_clock::time_point deadline, Lease& out, bool for_gpu) {
  FERRY_RETURN_IF_ERROR(takePlain(len, deadline, out));
  if (for_gpu && gpu_) {
    std::lock_guard lock(mu_);
    if (std::find(pinned_.begin(), pinned_.end(), out.buf_) == pinned_.end() && gpu_->pin(out.buf_, out.cap_).ok())
      pinned_.push_back(out.buf_);
  }
  return Status::OK();
}

Status BouncePool::takePlain(uint64_t len, std::chrono::steady_clock::time_point deadline, Lease& out) {
  const size_t want = (len + align_ - 1) / align_ * align_;
  if (want > cap_) return Status::OutOfRange("file access larger than the bounce pool");
  std::unique_lock lock(mu_);
  while (true) {
    // The smallest cached buffer that fits.
    auto best = cached_.end();
    for (auto it = cached_.begin(); it != cached_.end(); ++it)
      if (it->first >= want && (best == cached_.end() || it->first < best->first)) best = it;
    if (best != cached_.end()) {
      out.pool_ = this;
      out.cap_ = best->first;
      out.buf_ = best->second;
      cached_.erase(best);
      return Status::OK();
    }
    // Room for a new one, after dropping cached buffers too small to serve.
    while (allocated_ + want > cap_ && !cached_.empty()) {
      allocated_ -= cached_.back().first;
      release(cached_.back().second);
      cached_.pop_back();
    }
    if (allocated_ + want <= cap_) {
      void* p = nullptr;
      if (posix_memalign(&p, align_, want) != 0) return Status::InternalError("cannot allocate a bounce buffer");
      allocated_ += want;
      out.pool_ = this;
      out.cap_ = want;
      out.buf_ = static_cast<uint8_t*>(p);
      return Status::OK();
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout)
      return Status::Busy("every file bounce buffer is in use (transports/tcp/file_bounce_bytes)");
  }
}

void BouncePool::give(uint8_t* buf, size_t cap) {
  std::lock_guard lock(mu_);
  size_t cached = 0;
  for (auto& c : cached_) cached += c.first;
  if (cached + cap > cap_ / 4) {  // an idle engine keeps little
    allocated_ -= cap;
    release(buf);
  } else {
    cached_.emplace_back(cap, buf);
  }
  cv_.notify_one();
}

Status TcpTarget::start(TransportContext& ctx, const Options& options) {
  ctx_ = &ctx;
  options_ = options;
  bounce_.configure(options.bounce_bytes, options.file_alignment);
  bounce_.pinWith(&ctx.gpu());
  wire::MessageTable tcp;
  FERRY_RETURN_IF_ERROR(defineMessages(tcp));
  // Every handler first sets up the connection it serves, once: the server gives each
  // connection a thread of its own, so a thread-local flag marks it.
  auto serve = [this](Status (TcpTarget::*handler)(const FrameHeader&, ServerConnection&)) {
    return [this, handler](const FrameHeader& h, ServerConnection& s) {
      thread_local bool set_up = false;
      if (!set_up) {
        tcp_socket::applySendBuffer(s.socket(), options_.send_buffers);
        set_up = true;
      }
      return (this->*handler)(h, s);
    };
  };
  auto write = serve(&TcpTarget::handleWrite);
  auto read = serve(&TcpTarget::handleRead);
  auto vector = serve(&TcpTarget::handleVector);
  // Responses first: a request names its response.
  for (MsgType t : {kWriteAck, kReadData}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), nullptr));
  for (MsgType t : {kWrite, kFileWrite}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), write));
  for (MsgType t : {kRead, kFileRead}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), read));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(kSumVerdicts, *tcp.find(kSumVerdicts), nullptr));
  for (MsgType t : {kWriteV, kReadV, kWriteSumV, kReadSumV})
    FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), vector));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(kWriteSum, *tcp.find(kWriteSum), serve(&TcpTarget::handleWriteSum)));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(kReadSum, *tcp.find(kReadSum), serve(&TcpTarget::handleReadSum)));
  return Status::OK();
}

// Reads a (FILE_)WRITE/READ range and admits it: pins the target buffer, or checks the
// exposed file. A malformed range is a protocol error (returned); a refused one is answered,
// and `refused` set, with the stream in sync.
Status TcpTarget::admit(const FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused) {
  static_assert(kRangeSize + kSumSize <= kFileRangeSize, "rb holds every kind of range");
  uint8_t rb[kFileRangeSize];
  const size_t range_size = rangeSizeOf(h.type);
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(rb, range_size));
  uint64_t file_id = 0;
  FERRY_RETURN_IF_ERROR(decodeRange(h, rb, range_size, a.addr, a.len, &file_id, &a.sum));
  const bool write = isWrite(h.type);
  Status st = isFileOp(h.type) ? ctx_->files().admit(file_id, a.addr, a.len, write, a.file)
                               : ctx_->registry().pinForRemote(a.addr, a.len, write, a.pin);
  refused = !st.ok();
  return refused ? refuse(h, conn, st, write ? a.len : 0) : Status::OK();
}

Status TcpTarget::refuse(const FrameHeader& h, ServerConnection& conn, const Status& why, uint64_t payload) {
  FERRY_LOG_LIMITED(WARN, refusals_) << "refused " << conn.messages().name(h.type) << " from " << conn.peer()
                                     << ": " << why.ToString();
  FERRY_RETURN_IF_ERROR(conn.reader().skip(payload));  // keeps the stream in sync
  conn.respond(conn.messages().find(h.type)->response, h.request_id, why);
  return Status::OK();
}

Status TcpTarget::fileOp(const RemoteAccess& a, bool write, uint8_t* buf) {
  // Synchronous pread/pwrite: one op at a time per connection gains nothing from a ring.
  thread_local std::unique_ptr<fileio::FileIo> io;
  if (!io) FERRY_RETURN_IF_ERROR(fileio::FileIo::create(fileio::Backend::kPosix, 1, options_.file_alignment, io));
  fileio::IoOp op;
  op.file = a.file->file.get();
  op.write = write;
  op.buf = buf;
  op.offset = a.addr;
  op.length = a.len;
  io->run(&op, 1);
  if (!op.result.ok()) FERRY_LOG_LIMITED(WARN, refusals_) << "serving a peer: " << op.result.ToString();
  return op.result;
}

Status TcpTarget::takeBounce(const RemoteAccess& a, bool gpu, BouncePool::Lease& buf, uint64_t& len) {
  len = gpu ? std::min<uint64_t>(a.len, cuda::kPieceStagingBytes) : a.len;
  return bounce_.take(len, std::chrono::steady_clock::now() + options_.bounce_wait, buf, gpu);
}

void TcpTarget::logGpuRefusal(const Status& st) {
  if (!st.ok()) FERRY_LOG_LIMITED(WARN, refusals_) << "serving a peer's access to GPU memory: " << st.ToString();
}

Status TcpTarget::handleWrite(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admit(h, conn, a, refused));
  if (refused) return Status::OK();
  conn.reader().setLowWaterCap(options_.rcvlowat_bytes);
  const bool gpu = !a.file && a.pin.region()->kind == kCudaMemory;
  if (!a.file && !gpu) {
    FERRY_RETURN_IF_ERROR(conn.reader().readExact(reinterpret_cast<void*>(a.addr), a.len));
    conn.respond(kWriteAck, h.request_id, Status::OK());
    return Status::OK();
  }
  // Files and GPU memory: through a bounce buffer (GPU memory: pieces of it, each copied in
  // while the next arrives). The ack goes after the file write or the copy into GPU memory
  // has finished: completion means the bytes are there.
  BouncePool::Lease buf;
  uint64_t staging = 0;
  Status st = takeBounce(a, gpu, buf, staging);
  if (!st.ok()) {
    FERRY_RETURN_IF_ERROR(conn.reader().skip(a.len));
  } else if (gpu) {
    Status received;  // the socket's verdict: its failure ends the connection
    st = ctx_->gpu().copyInPieces(reinterpret_cast<void*>(a.addr), a.len, buf.data(), staging,
                                  [&](uint8_t* piece, size_t len) { return received = conn.reader().readExact(piece, len); });
    FERRY_RETURN_IF_ERROR(received);
    logGpuRefusal(st);
  } else {
    FERRY_RETURN_IF_ERROR(conn.reader().readExact(buf.data(), a.len));
    st = fileOp(a, true, buf.data());
  }
  conn.respond(kWriteAck, h.request_id, st);
  return Status::OK();
}

Status TcpTarget::handleRead(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admit(h, conn, a, refused));
  if (refused) return Status::OK();
  const bool gpu = !a.file && a.pin.region()->kind == kCudaMemory;
  if (!a.file && !gpu)
    return conn.respondWithPayload(kReadData, h.request_id, reinterpret_cast<const void*>(a.addr), a.len);
  BouncePool::Lease buf;
  uint64_t staging = 0;
  Status st = takeBounce(a, gpu, buf, staging);
  if (st.ok() && gpu) {  // in pieces, each copied out of the GPU while the one before is sent
    bool emitted = false;
    Status sent;  // the socket's verdict
    st = ctx_->gpu().copyOutPieces(reinterpret_cast<const void*>(a.addr), a.len, buf.data(), staging,
                                   [&](const uint8_t* piece, size_t len) {
                                     if (!emitted && !(sent = conn.beginPayload(kReadData, h.request_id, a.len)).ok())
                                       return sent;
                                     return sent = conn.sendPayloadPiece(piece, len);
                                   },
                                   &emitted);
    if (st.ok() || !emitted) {
      logGpuRefusal(st);
      if (!st.ok()) conn.respond(kReadData, h.request_id, st);
      return Status::OK();
    }
    // Part of the payload is out and the rest cannot follow: the connection must close.
    return sent.ok() ? Status::Unavailable("a GPU read failed mid-payload: " + st.message()) : sent;
  }
  if (st.ok()) st = fileOp(a, false, buf.data());
  if (!st.ok()) {
    conn.respond(kReadData, h.request_id, st);
    return Status::OK();
  }
  return conn.respondWithPayload(kReadData, h.request_id, buf.data(), a.len);
}

Status TcpTarget::admitChecked(const FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused) {
  FERRY_RETURN_IF_ERROR(admit(h, conn, a, refused));
  if (refused || a.pin.region()->kind == kHostMemory) return Status::OK();
  refused = true;
  a.pin = {};
  return refuse(h, conn, Status::NotSupported("checksums are checked for host memory only"),
                h.type == kWriteSum ? a.len : 0);
}

Status TcpTarget::handleWriteSum(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admitChecked(h, conn, a, refused));
  if (refused) return Status::OK();
  conn.reader().setLowWaterCap(options_.rcvlowat_bytes);
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(reinterpret_cast<void*>(a.addr), a.len));
  conn.respond(kWriteAck, h.request_id, checkLanded(conn, a.addr, a.len, a.sum));
  return Status::OK();
}

Status TcpTarget::checkLanded(const ServerConnection& conn, uint64_t addr, uint64_t len, uint64_t sent) {
  // What is in our memory now, not what came off the socket: the ack vouches for the former.
  const uint64_t got = checksum::xxh3(reinterpret_cast<const void*>(addr), len);
  if (got == sent) return Status::OK();
  Status st = Status::Corrupted(checksum::mismatchText("target", sent, got, len));
  FERRY_LOG_LIMITED(WARN, refusals_) << "write from " << conn.peer() << " at " << rangeText(addr, len) << ": "
                                     << st.message();
  return st;
}

Status TcpTarget::handleReadSum(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admitChecked(h, conn, a, refused));
  if (refused) return Status::OK();
  uint8_t sum[kSumSize];
  putU64(sum, checksum::xxh3(reinterpret_cast<const void*>(a.addr), a.len));
  const iovec pieces[2] = {{sum, sizeof sum}, {reinterpret_cast<void*>(a.addr), a.len}};
  return conn.respondWithPayload(kReadData, h.request_id, pieces, 2);
}

namespace {
// A vectored frame's arrays (~90 KiB at kMaxRanges): one set per server thread, made on its
// first vectored frame, so that a frame of two ranges does not set up a thousand.
struct VectorScratch {
  uint8_t encoded[kMaxRanges * kSumRangeSize];
  Range ranges[kMaxRanges];
  MemoryRegistry::Pin pins[kMaxRanges];
  iovec pieces[kMaxRanges + 1];  // reads with checksums: the table of checksums first
  uint8_t sums[kMaxRanges * kSumSize];
  uint8_t verdicts[kMaxRanges];
};

// Releases the pins a frame took, whichever way the handler leaves.
struct Unpin {
  MemoryRegistry::Pin* pins;
  size_t count = 0;
  ~Unpin() {
    for (size_t i = 0; i < count; ++i) pins[i] = MemoryRegistry::Pin();
  }
};
}  // namespace

Status TcpTarget::handleVector(const FrameHeader& h, ServerConnection& conn) {
  const bool write = h.type == kWriteV || h.type == kWriteSumV;
  const bool summed = h.type == kWriteSumV || h.type == kReadSumV;
  thread_local std::unique_ptr<VectorScratch> scratch;
  if (!scratch) scratch.reset(new VectorScratch);
  VectorScratch& x = *scratch;
  uint8_t head[kRangesHeadSize];
  size_t count = 0;
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(head, sizeof head));
  FERRY_RETURN_IF_ERROR(decodeRangesHead(h, head, count));
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(x.encoded, count * rangeEntrySize(h.type)));
  uint64_t total = 0;
  FERRY_RETURN_IF_ERROR(decodeRanges(h, x.encoded, count, x.ranges, total));
  // Every range pinned (and so checked) before any byte moves: a frame is all or nothing.
  Unpin unpin{x.pins, count};
  Status st;
  for (size_t i = 0; i < count && st.ok(); ++i) {
    st = ctx_->registry().pinForRemote(x.ranges[i].addr, x.ranges[i].length, write, x.pins[i]);
    // GPU memory needs the driver's copies (one range per Write/Read frame, as initiators send it).
    if (st.ok() && x.pins[i].region()->kind != kHostMemory)
      st = Status::NotSupported("range " + std::to_string(i) + " is not host memory: not in a vectored frame");
  }
  if (!st.ok()) return refuse(h, conn, st, write ? total : 0);
  iovec* ranges_out = x.pieces + (summed && !write ? 1 : 0);
  for (size_t i = 0; i < count; ++i) ranges_out[i] = {reinterpret_cast<void*>(x.ranges[i].addr), x.ranges[i].length};
  if (!write) {
    if (!summed) return conn.respondWithPayload(kReadData, h.request_id, x.pieces, count);
    for (size_t i = 0; i < count; ++i)
      putU64(x.sums + i * kSumSize, checksum::xxh3(ranges_out[i].iov_base, x.ranges[i].length));
    x.pieces[0] = {x.sums, count * kSumSize};
    return conn.respondWithPayload(kReadData, h.request_id, x.pieces, count + 1);
  }
  conn.reader().setLowWaterCap(options_.rcvlowat_bytes);
  FERRY_RETURN_IF_ERROR(conn.reader().readExactV(x.pieces, count));
  if (!summed) {
    conn.respond(kWriteAck, h.request_id, Status::OK());
    return Status::OK();
  }
  for (size_t i = 0; i < count; ++i)
    x.verdicts[i] = !checkLanded(conn, x.ranges[i].addr, x.ranges[i].length, x.ranges[i].sum).ok();
  return conn.respondWithPayload(kSumVerdicts, h.request_id, x.verdicts, count);
}

}  // namespace ferry
