#include "transport/tcp/tcp_transport.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "common/log.h"
#include "common/net.h"
#include "control/rpc_server.h"
#include "control/wire.h"
#include "transport/tcp/tcp_connection.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

TcpTransport::TcpTransport() = default;
TcpTransport::~TcpTransport() { stop(); }

Status TcpTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  // 0 = auto: each connection costs a sender and a receiver thread per side, which only
  // pays off with cores to run them (on 2 cores one connection is fastest).
  int64_t conns = c.get<int64_t>("transports/tcp/connections_per_peer", 0);
  if (conns <= 0) conns = std::clamp<int64_t>(std::thread::hardware_concurrency() / 2, 1, 4);
  options_.connections_per_peer = static_cast<size_t>(std::min<int64_t>(conns, 64));
  options_.inline_send_bytes = c.get<uint64_t>("transports/tcp/inline_send_bytes", 256 << 10);
  options_.connect_timeout_ms = c.get<int>("connect_timeout_ms", 3000);
  options_.transfer_timeout_ms = c.get<int64_t>("transfer_timeout_ms", 30000);
  options_.spin_us = c.get<bool>("polling", false) ? c.get<int>("polling_spin_us", 200) : 0;
  uint64_t max_slice = std::min<uint64_t>(
      c.get<uint64_t>("transports/tcp/max_slice_size", wire::kMaxDataBytes), wire::kMaxDataBytes);
  slice_size_ = std::clamp<uint64_t>(c.get<uint64_t>("transports/tcp/slice_size", 1 << 20), 4096,
                                     max_slice);
  file_align_ = static_cast<uint32_t>(std::clamp<int64_t>(c.get<int64_t>("files/direct_alignment", 4096), 1, 1 << 20));
  for (MsgType t : {MsgType::kWrite, MsgType::kFileWrite})
    ctx.rpcServer().setHandler(t, [this](const FrameHeader& h, ServerConnection& s) { return handleWrite(h, s); });
  for (MsgType t : {MsgType::kRead, MsgType::kFileRead})
    ctx.rpcServer().setHandler(t, [this](const FrameHeader& h, ServerConnection& s) { return handleRead(h, s); });
  stopping_ = false;
  timer_ = std::thread([this] { timerLoop(); });
  return Status::OK();
}

void TcpTransport::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(timer_mu_);
    timer_cv_.notify_all();
  }
  if (timer_.joinable()) timer_.join();
  std::vector<std::shared_ptr<TcpConnection>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [k, pool] : pools_) {
      std::lock_guard plock(pool->mu);
      for (auto& c : pool->conns) all.push_back(c);
      pool->conns.clear();
    }
    pools_.clear();
    for (auto& c : graveyard_) all.push_back(c);
    graveyard_.clear();
  }
  for (auto& c : all) c->abort(Status::Canceled("engine is shutting down"));
  for (auto& c : all) c->join();
}

Status TcpTransport::connectionsFor(const PeerEndpoint& peer,
                                    std::vector<std::shared_ptr<TcpConnection>>& out) {
  std::shared_ptr<PeerPool> pool;
  std::string key = net::joinHostPort(peer.host, peer.port);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Canceled("engine is shutting down");
    auto& slot = pools_[key];
    if (!slot) slot = std::make_shared<PeerPool>();
    pool = slot;
  }
  std::lock_guard plock(pool->mu);
  std::vector<std::shared_ptr<TcpConnection>> dead;
  auto& conns = pool->conns;
  for (auto it = conns.begin(); it != conns.end();) {
    if ((*it)->dead()) {
      dead.push_back(*it);
      it = conns.erase(it);
    } else {
      ++it;
    }
  }
  if (!dead.empty()) {
    std::lock_guard lock(mu_);
    graveyard_.insert(graveyard_.end(), dead.begin(), dead.end());
  }
  TcpConnection::Options copts;
  copts.inline_send_bytes = options_.inline_send_bytes;
  copts.transfer_timeout_ms = options_.transfer_timeout_ms;
  copts.spin_us = options_.spin_us;
  copts.on_epoch = [ctx = ctx_, host = peer.host, port = peer.port](uint64_t epoch) {
    ctx->onPeerEpoch(host, port, epoch);
  };
  while (conns.size() < options_.connections_per_peer) {
    std::shared_ptr<TcpConnection> c;
    Status st = TcpConnection::open(peer.host, peer.port, options_.connect_timeout_ms, copts, c);
    if (!st.ok()) {
      if (conns.empty())
        return Status(st.code(), "segment '" + peer.segment_name + "': " + st.message());
      break;  // serve with the connections we have
    }
    conns.push_back(std::move(c));
  }
  out = conns;
  return Status::OK();
}

Status TcpTransport::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  std::vector<std::shared_ptr<TcpConnection>> conns;
  FERRY_RETURN_IF_ERROR(connectionsFor(peer, conns));
  const uint32_t file_id = peer.file ? peer.file->id : 0;  // the target does a file's I/O
  for (size_t i = 0; i < count; ++i) slices[i]->file_id = file_id;
  if (conns.size() == 1) {
    conns[0]->enqueue(slices, count);
    return Status::OK();
  }
  // Spread by bytes: each slice goes to the connection with the least work assigned.
  std::vector<std::vector<Slice*>> per(conns.size());
  std::vector<uint64_t> load(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) load[i] = conns[i]->load();
  for (size_t i = 0; i < count; ++i) {
    size_t best = std::min_element(load.begin(), load.end()) - load.begin();
    per[best].push_back(slices[i]);
    load[best] += slices[i]->length + 256;  // + per-message cost, so tiny slices spread too
  }
  for (size_t i = 0; i < conns.size(); ++i)
    if (!per[i].empty()) conns[i]->enqueue(per[i].data(), per[i].size());
  return Status::OK();
}

Status TcpTransport::cancel(const PeerEndpoint& peer) {
  std::shared_ptr<PeerPool> pool;
  {
    std::lock_guard lock(mu_);
    auto it = pools_.find(net::joinHostPort(peer.host, peer.port));
    if (it == pools_.end()) return Status::OK();
    pool = it->second;
  }
  std::lock_guard plock(pool->mu);
  for (auto& c : pool->conns) c->abort(Status::Canceled("transfers to " + c->where() + " canceled"));
  return Status::OK();
}

void TcpTransport::timerLoop() {
  std::unique_lock tlock(timer_mu_);
  while (!stopping_) {
    timer_cv_.wait_for(tlock, std::chrono::milliseconds(50));
    if (stopping_) break;
    int64_t now = nowNs();
    std::vector<std::shared_ptr<TcpConnection>> reap;
    std::vector<std::shared_ptr<PeerPool>> pools;
    {
      std::lock_guard lock(mu_);
      for (auto& [k, p] : pools_) pools.push_back(p);
      reap.swap(graveyard_);
    }
    for (auto& p : pools) {
      std::lock_guard plock(p->mu);
      for (auto& c : p->conns) c->checkDeadline(now);
    }
    reap.clear();  // joins the dead connections' threads
  }
}

// ---- target side ----

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
Status TcpTransport::admitRemoteAccess(const FrameHeader& h, ServerConnection& conn,
                                       RemoteAccess& a, bool& refused) {
  uint8_t rb[wire::kFileRangeSize];
  const size_t range_size = wire::rangeSizeOf(h.type);
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(rb, range_size));
  uint64_t file_id = 0;
  FERRY_RETURN_IF_ERROR(wire::decodeRange(h, rb, range_size, a.addr, a.len, &file_id));
  const bool write = h.type == MsgType::kWrite || h.type == MsgType::kFileWrite;
  Status st = range_size == wire::kFileRangeSize
                  ? ctx_->files().admit(file_id, a.addr, a.len, write, a.file)
                  : ctx_->registry().pinForRemote(a.addr, a.len, write, a.pin);
  refused = !st.ok();
  if (!refused) return Status::OK();
  if (shouldLogRefusal())
    FERRY_LOG(WARN) << "refused " << wire::typeName(h.type) << " from " << conn.peer() << ": "
                    << st.ToString();
  if (write) FERRY_RETURN_IF_ERROR(conn.reader().skip(a.len));  // drop the payload
  conn.respond(write ? MsgType::kWriteAck : MsgType::kReadData, h.request_id, st);
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

Status TcpTransport::bounceBuffer(uint64_t len, uint8_t*& buf) {
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

Status TcpTransport::fileOp(const RemoteAccess& a, bool write, uint8_t* buf) {
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

Status TcpTransport::handleWrite(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admitRemoteAccess(h, conn, a, refused));
  if (refused) return Status::OK();
  if (!a.file) {
    FERRY_RETURN_IF_ERROR(conn.reader().readExact(reinterpret_cast<void*>(a.addr), a.len));
    conn.respond(MsgType::kWriteAck, h.request_id, Status::OK());
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
  conn.respond(MsgType::kWriteAck, h.request_id, st);
  return Status::OK();
}

Status TcpTransport::handleRead(const FrameHeader& h, ServerConnection& conn) {
  RemoteAccess a;
  bool refused;
  FERRY_RETURN_IF_ERROR(admitRemoteAccess(h, conn, a, refused));
  if (refused) return Status::OK();
  if (!a.file)
    return conn.respondWithPayload(MsgType::kReadData, h.request_id,
                                   reinterpret_cast<const void*>(a.addr), a.len);
  uint8_t* buf = nullptr;
  Status st = bounceBuffer(a.len, buf);
  if (st.ok()) st = fileOp(a, false, buf);
  if (!st.ok()) {
    conn.respond(MsgType::kReadData, h.request_id, st);
    return Status::OK();
  }
  return conn.respondWithPayload(MsgType::kReadData, h.request_id, buf, a.len);
}

}  // namespace ferry
