#include "transport/file/file_transport.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "common/endian.h"
#include "common/log.h"
#include "transport/local_peer.h"

namespace ferry {

namespace file_wire {
namespace {
Status define(wire::MessageTable& t) {
  FERRY_RETURN_IF_ERROR(t.define(kFileHandle, {"FileHandle", false, 0, 0}));
  return t.define(kFileOpen, {"FileOpen", true, 4, 4, kFileHandle});
}
}  // namespace

const wire::MessageTable& messages() {
  static const wire::MessageTable table = wire::controlMessagesWith(&define);
  return table;
}
}  // namespace file_wire

namespace {
const FileDesc* fileById(const SegmentDescriptor& d, uint32_t id) {
  for (const auto& f : d.files)
    if (f.id == id) return &f;
  return nullptr;
}
}  // namespace

// One peer instance's files opened here (or, for our own segment, the live file table).
class FileEndpoint : public Endpoint, public std::enable_shared_from_this<FileEndpoint> {
 public:
  explicit FileEndpoint(FileTransport& transport)
      : transport_(transport), local_(*transport.ctx_, file_wire::messages(), "file") {}
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override { transport_.cancelQueued(this); }

 private:
  // A peer's file as it handed it to us: its descriptors and its own word on the file.
  struct PeerFile {
    std::shared_ptr<fileio::File> file;
    FileDesc desc;
  };
  // The open file behind a file segment, or why it cannot be reached from here; `reported`:
  // a version the engine must hear of (told after mu_ is released), 0 for none.
  Status fileFor(const PeerEndpoint& peer, PeerFile& out, uint64_t& reported);

  FileTransport& transport_;
  std::mutex mu_;  // guards the fields below; held across calls on the local channel (bounded)
  LocalPeer local_;
  std::shared_ptr<const SegmentDescriptor> pruned_for_;  // descriptor `files_` was checked against
  std::map<uint32_t, PeerFile> files_;  // by file id
};

Status FileEndpoint::fileFor(const PeerEndpoint& peer, PeerFile& out, uint64_t& reported) {
  const FileDesc& fd = *peer.file;
  if (peer.is_self) {
    auto entry = transport_.ctx_->files().find(fd.id);
    if (!entry) return Status::NotFound("file '" + fd.name + "' is no longer open");
    out = {entry->file, entry->desc};
    return Status::OK();
  }
  std::lock_guard lock(mu_);
  std::shared_ptr<const SegmentDescriptor> proven;
  FERRY_RETURN_IF_ERROR(local_.attachCurrent(peer, reported, proven));
  if (pruned_for_ != proven) {
    // Close files the peer no longer exposes (accesses in flight keep theirs open).
    for (auto it = files_.begin(); it != files_.end();) {
      const FileDesc* f = fileById(*proven, it->first);
      it = f && f->length == it->second.desc.length && f->read_only == it->second.desc.read_only ? std::next(it)
                                                                                                : files_.erase(it);
    }
    pruned_for_ = proven;
  }
  auto it = files_.find(fd.id);
  if (it != files_.end()) {
    out = it->second;
    return Status::OK();
  }
  const FileDesc* theirs = fileById(*proven, fd.id);
  if (!theirs) return Status::NotFound("segment '" + peer.segment_name + "' no longer exposes file '" + fd.name + "'");
  uint8_t id[4];
  putU32(id, fd.id);
  std::vector<int> fds;
  Status st = local_.call(file_wire::kFileOpen, {reinterpret_cast<char*>(id), sizeof id}, nullptr, fds);
  if (st.ok() && (fds.empty() || fds.size() > 2)) st = Status::Corrupted("expected one or two descriptors");
  if (!st.ok()) {
    for (int f : fds) ::close(f);
    return Status::NotSupported("file '" + fd.name + "' of '" + peer.segment_name +
                                "' cannot be opened here: " + st.message());
  }
  PeerFile pf{fileio::File::adopt(fds[0], fds.size() > 1 ? fds[1] : -1, theirs->read_only,
                                  peer.segment_name + "#" + theirs->name),
              *theirs};
  files_[fd.id] = pf;
  out = std::move(pf);
  return Status::OK();
}

Status FileEndpoint::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.file) return Status::InvalidArgument("segment '" + peer.segment_name + "' is not a file");
  PeerFile file;
  uint64_t reported = 0;
  Status st = fileFor(peer, file, reported);
  if (reported) transport_.ctx_->onPeerEpoch(peer.host, peer.port, reported);
  FERRY_RETURN_IF_ERROR(st);
  // Our own files were just checked by the engine against the live table (a private file's
  // live size included). A peer checks nothing on this path, so its files are checked here
  // too, against what the peer itself says of the file (no syscall).
  if (!peer.is_self)
    for (size_t i = 0; i < count; ++i)
      FERRY_RETURN_IF_ERROR(checkFileAccess(file.desc, slices[i]->remote, slices[i]->length,
                                            slices[i]->op == Request::WRITE));
  return transport_.enqueue(shared_from_this(), file.file, slices, count);
}

FileTransport::FileTransport() = default;
FileTransport::~FileTransport() { stop(); }

void FileTransport::declareOptions(OptionTable& t) {
  t.text("backend", "auto", "`auto` (io_uring if it works here, else pread), `io_uring`, `pread`");
  t.integer("workers", 1, 1, 64, "I/O threads, each with its own ring");
  t.integer("queue_depth", 32, 1, 4096, "slices in flight per I/O thread");
  t.integer("slice_size", 1 << 20, 4096, 1ll << 30, "file requests are cut into slices of this size");
}

TransportCaps FileTransport::caps() const {
  return {.remote_kinds = kFileData, .reaches_self = true, .reaches_same_machine = true,
          .latency_us = 20, .bandwidth_GBps = 2};
}

Status FileTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  FERRY_RETURN_IF_ERROR(fileio::chooseBackend(c.get<std::string>("transports/file/backend"), backend_));
  slice_size_ = c.get<uint64_t>("transports/file/slice_size");
  queue_depth_ = static_cast<unsigned>(c.get<int64_t>("transports/file/queue_depth"));
  const auto align = static_cast<uint32_t>(c.get<int64_t>("files/direct_alignment"));
  const int64_t workers = c.get<int64_t>("transports/file/workers");
  for (int64_t i = 0; i < workers; ++i) {
    std::unique_ptr<fileio::FileIo> io;
    FERRY_RETURN_IF_ERROR(fileio::FileIo::create(backend_, queue_depth_, align, io));
    ios_.push_back(std::move(io));
  }
  const wire::MessageTable& m = file_wire::messages();
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(file_wire::kFileHandle, *m.find(file_wire::kFileHandle), nullptr));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(file_wire::kFileOpen, *m.find(file_wire::kFileOpen),
                                          [this](const wire::FrameHeader& h, ServerConnection& c) {
                                            return serveOpen(h, c);
                                          }));
  stopping_ = false;
  for (auto& io : ios_) workers_.emplace_back([this, p = io.get()] { workerLoop(*p); });
  FERRY_LOG(INFO) << "file transport: " << fileio::backendName(backend_) << ", " << workers
                  << " worker(s), queue depth " << queue_depth_
                  << (ctx.files().tryDirect() ? ", O_DIRECT when aligned" : ", buffered");
  return Status::OK();
}

void FileTransport::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();  // they finish what was queued: every slice completes
  workers_.clear();
}

bool FileTransport::canReach(const PeerEndpoint& peer) const {
  if (!peer.file || !ctx_) return false;
  // A peer's claim to be on this machine only picks the candidate; attaching proves it.
  return peer.is_self || (peer.machine_id == ctx_->machineId() && !ctx_->localDir().empty());
}

Status FileTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  out = endpoints_.get(peer.instanceKey(), [this] { return std::make_shared<FileEndpoint>(*this); });
  return Status::OK();
}

Status FileTransport::serveOpen(const wire::FrameHeader& h, ServerConnection& conn) {
  uint8_t body[4];
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(body, sizeof body));
  const uint32_t id = getU32(body);
  if (!conn.local()) {
    conn.respond(file_wire::kFileHandle, h.request_id,
                 Status::NotSupported("file descriptors are handed to same-machine peers on the local socket only"));
    return Status::OK();
  }
  auto entry = ctx_->files().find(id);
  if (!entry || !entry->exposed) {
    conn.respond(file_wire::kFileHandle, h.request_id, Status::NotFound("no exposed file has id " + std::to_string(id)));
    return Status::OK();
  }
  // Our own descriptors, opened read-only for a file exposed read-only: the peer's copies
  // can do what ours can and no more.
  std::vector<int> fds{entry->file->fd()};
  if (entry->file->directFd() >= 0) fds.push_back(entry->file->directFd());
  return conn.respondWithFds(file_wire::kFileHandle, h.request_id, {}, fds);
}

Status FileTransport::enqueue(std::shared_ptr<const Endpoint> owner, const std::shared_ptr<fileio::File>& file,
                              Slice* const* slices, size_t count) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Canceled("engine is shutting down");
    for (size_t i = 0; i < count; ++i) queue_.push_back({slices[i], file, owner});
  }
  if (count == 1) cv_.notify_one(); else cv_.notify_all();
  return Status::OK();
}

void FileTransport::cancelQueued(const Endpoint* owner) {
  std::vector<Work> canceled;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->owner.get() != owner) {
        ++it;
        continue;
      }
      canceled.push_back(std::move(*it));
      it = queue_.erase(it);
    }
  }
  for (auto& w : canceled) completeSlice(w.slice, Status::Canceled("the peer instance is gone"));
}

void FileTransport::workerLoop(fileio::FileIo& io) {
  std::vector<Work> batch;
  std::vector<fileio::IoOp> ops;
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping
    batch.clear();
    while (!queue_.empty() && batch.size() < queue_depth_) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (!queue_.empty()) cv_.notify_one();  // another worker may take the rest
    lock.unlock();
    // Canceled or out-of-time slices are dropped before their I/O is issued.
    size_t kept = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (Status admit = admitSlice(*batch[i].slice); !admit.ok()) {
        completeSlice(batch[i].slice, admit);
        continue;
      }
      if (kept != i) batch[kept] = std::move(batch[i]);
      ++kept;
    }
    batch.resize(kept);
    ops.assign(batch.size(), {});
    for (size_t i = 0; i < batch.size(); ++i) {
      Slice* s = batch[i].slice;
      ops[i].file = batch[i].file.get();
      ops[i].write = s->op == Request::WRITE;
      ops[i].buf = s->local;
      ops[i].offset = s->remote;
      ops[i].length = s->length;
    }
    io.run(ops.data(), ops.size());
    for (size_t i = 0; i < batch.size(); ++i) completeSlice(batch[i].slice, ops[i].result);
    batch.clear();  // drop the file references outside the lock
    lock.lock();
  }
}

}  // namespace ferry
