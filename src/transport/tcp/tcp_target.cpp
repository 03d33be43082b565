#include "transport/tcp/tcp_target.h"

#include <atomic>
#include <cstdlib>

#include "common/file_io.h"
#include "common/log.h"
#include "transport/tcp/tcp_wire.h"
#include "transport/transport.h"

namespace ferry {

using wire::FrameHeader;
using namespace tcp_wire;

Status TcpTarget::start(TransportContext& ctx, uint32_t file_alignment) {
  ctx_ = &ctx;
  file_align_ = file_alignment;
  wire::MessageTable tcp;
  FERRY_RETURN_IF_ERROR(defineMessages(tcp));
  auto write = [this](const FrameHeader& h, ServerConnection& s) { return handleWrite(h, s); };
  auto read = [this](const FrameHeader& h, ServerConnection& s) { return handleRead(h, s); };
  // Responses first: a request names its response.
  for (MsgType t : {kWriteAck, kReadData}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), nullptr));
  for (MsgType t : {kWrite, kFileWrite}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), write));
  for (MsgType t : {kRead, kFileRead}) FERRY_RETURN_IF_ERROR(ctx.defineMessage(t, *tcp.find(t), read));
  return Status::OK();
}

namespace {
// A misbehaving peer must not flood the log: first few refusals, then every 1000th.
bool shouldLogRefusal() {
  static std::atomic<uint64_t> n{0};
  uint64_t k = n.fetch_add(1, std::memory_order_relaxed);
  return k < 5 || k % 1000 == 0;
}
}  // namespace

// Reads a (FILE_)WRITE/READ range and admits it: pins the target buffer, or checks the
// exposed file. A malformed range is a protocol error (returned); a refused one is answered,
// and `refused` set, with the stream in sync.
Status TcpTarget::admit(const FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused) {
  uint8_t rb[kFileRangeSize];
  const size_t range_size = rangeSizeOf(h.type);
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(rb, range_size));
  uint64_t file_id = 0;
  FERRY_RETURN_IF_ERROR(decodeRange(h, rb, range_size, a.addr, a.len, &file_id));
  const bool write = isWrite(h.type);
  Status st = range_size == kFileRangeSize ? ctx_->files().admit(file_id, a.addr, a.len, write, a.file)
                                           : ctx_->registry().pinForRemote(a.addr, a.len, write, a.pin);
  refused = !st.ok();
  if (!refused) return Status::OK();
  if (shouldLogRefusal())
    FERRY_LOG(WARN) << "refused " << conn.messages().name(h.type) << " from " << conn.peer() << ": "
                    << st.ToString();
  if (write) FERRY_RETURN_IF_ERROR(conn.reader().skip(a.len));  // drop the payload
  conn.respond(write ? kWriteAck : kReadData, h.request_id, st);
  return Status::OK();
}

namespace {
// One per server thread: the file I/O context and an aligned bounce buffer, so that an
// aligned file access can go O_DIRECT. Synchronous pread/pwrite: one op at a time per
// connection gains nothing from a ring.
struct FileServeScratch {
  std::unique_ptr<fileio::FileIo> io;
  uint8_t* buf = nullptr;
  size_t cap = 0;
  ~FileServeScratch() { std::free(buf); }
};
thread_local FileServeScratch t_scratch;
}  // namespace

Status TcpTarget::bounceBuffer(uint64_t len, uint8_t*& buf) {
  FileServeScratch& sc = t_scratch;
  if (sc.cap < len) {
    std::free(sc.buf);
    sc.buf = nullptr;
    sc.cap = 0;
    size_t cap = (len + file_align_ - 1) / file_align_ * file_align_;
    if (posix_memalign(reinterpret_cast<void**>(&sc.buf), file_align_, cap) != 0)
      return Status::InternalError("cannot allocate a " + std::to_string(cap) + "-byte bounce buffer");
    sc.cap = cap;
  }
  buf = sc.buf;
  return Status::OK();
}

Status TcpTarget::fileOp(const RemoteAccess& a, bool write, uint8_t* buf) {
  FileServeScratch& sc = t_scratch;
  if (!sc.io) FERRY_RETURN_IF_ERROR(fileio::FileIo::create(fileio::Backend::kPosix, 1, file_align_, sc.io));
  fileio::IoOp op;
  op.file = a.file->file.get();
  op.write = write;
  op.buf = buf;
  op.offset = a.addr;
  op.length = a.len;
  sc.io->run(&op, 1);
  if (!op.result.ok() && shouldLogRefusal()) FERRY_LOG(WARN) << "serving a peer: " << op.result.ToString();
  return op.result;
}

Status TcpTarget::handleWrite(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admit(h, conn, a, refused));
  if (refused) return Status::OK();
  if (!a.file) {
    FERRY_RETURN_IF_ERROR(conn.reader().readExact(reinterpret_cast<void*>(a.addr), a.len));
    conn.respond(kWriteAck, h.request_id, Status::OK());
    return Status::OK();
  }
  uint8_t* buf = nullptr;
  Status st = bounceBuffer(a.len, buf);
  if (!st.ok()) {
    FERRY_RETURN_IF_ERROR(conn.reader().skip(a.len));
  } else {
    FERRY_RETURN_IF_ERROR(conn.reader().readExact(buf, a.len));
    st = fileOp(a, true, buf);
  }
  conn.respond(kWriteAck, h.request_id, st);
  return Status::OK();
}

Status TcpTarget::handleRead(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admit(h, conn, a, refused));
  if (refused) return Status::OK();
  if (!a.file)
    return conn.respondWithPayload(kReadData, h.request_id, reinterpret_cast<const void*>(a.addr), a.len);
  uint8_t* buf = nullptr;
  Status st = bounceBuffer(a.len, buf);
  if (st.ok()) st = fileOp(a, false, buf);
  if (!st.ok()) {
    conn.respond(kReadData, h.request_id, st);
    return Status::OK();
  }
  return conn.respondWithPayload(kReadData, h.request_id, buf, a.len);
}

}  // namespace ferry
