#include "transport/file/file_transport.h"

#include <algorithm>

#include "common/log.h"

namespace ferry {

FileTransport::FileTransport() = default;
FileTransport::~FileTransport() { stop(); }

Status FileTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  FERRY_RETURN_IF_ERROR(fileio::chooseBackend(c.get("transports/file/backend", "auto"), backend_));
  slice_size_ = std::clamp<uint64_t>(c.get<uint64_t>("transports/file/slice_size", 1 << 20), 4096,
                                     1ull << 30);
  queue_depth_ = static_cast<unsigned>(
      std::clamp<int64_t>(c.get<int64_t>("transports/file/queue_depth", 32), 1, 4096));
  int64_t align = c.get<int64_t>("files/direct_alignment", 4096);
  int64_t workers = std::clamp<int64_t>(c.get<int64_t>("transports/file/workers", 1), 1, 64);
  for (int64_t i = 0; i < workers; ++i) {
    std::unique_ptr<fileio::FileIo> io;
    FERRY_RETURN_IF_ERROR(
        fileio::FileIo::create(backend_, queue_depth_, static_cast<uint32_t>(align), io));
    ios_.push_back(std::move(io));
  }
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
  return peer.is_self || (peer.machine_id == ctx_->machineId() && !peer.file->path.empty());
}

Status FileTransport::fileFor(const PeerEndpoint& peer, std::shared_ptr<fileio::File>& out) {
  const FileDesc& fd = *peer.file;
  if (peer.is_self) {
    auto entry = ctx_->files().find(fd.id);
    if (!entry) return Status::NotFound("file '" + fd.name + "' is no longer open");
    out = entry->file;
    return Status::OK();
  }
  std::lock_guard lock(files_mu_);
  PeerFiles& pf = peer_files_[peer.desc ? peer.desc->instance_id : peer.segment_name];
  FERRY_RETURN_IF_ERROR(pf.control.check(*ctx_, peer));
  if (peer.desc && pf.pruned_for != peer.desc.get()) {
    // Close files the peer no longer exposes (accesses in flight keep theirs open).
    for (auto it = pf.files.begin(); it != pf.files.end();) {
      bool listed = std::any_of(peer.desc->files.begin(), peer.desc->files.end(),
                                [&](const FileDesc& f) { return f.id == it->first; });
      it = listed ? std::next(it) : pf.files.erase(it);
    }
    pf.pruned_for = peer.desc.get();
  }
  auto it = pf.files.find(fd.id);
  if (it != pf.files.end()) {
    out = it->second;
    return Status::OK();
  }
  Status st = fileio::File::open(fd.path, fd.read_only, 0, ctx_->files().tryDirect(), out);
  if (!st.ok())  // e.g. not readable by this user: the peer's own server can still serve it
    return Status::NotSupported("file '" + fd.name + "' of '" + peer.segment_name +
                                "' cannot be opened here: " + st.message());
  pf.files[fd.id] = out;
  return Status::OK();
}

Status FileTransport::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (!peer.file) return Status::InvalidArgument("segment '" + peer.segment_name + "' is not a file");
  std::shared_ptr<fileio::File> file;
  FERRY_RETURN_IF_ERROR(fileFor(peer, file));
  // Our own files were just checked by the engine against the live table (a private file's
  // live size included). A peer checks nothing on this path, so its files are checked here
  // too, against the descriptor (no syscall).
  if (!peer.is_self)
    for (size_t i = 0; i < count; ++i)
      FERRY_RETURN_IF_ERROR(checkFileAccess(*peer.file, slices[i]->remote, slices[i]->length,
                                            slices[i]->op == Request::WRITE));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Canceled("engine is shutting down");
    for (size_t i = 0; i < count; ++i) queue_.push_back({slices[i], file});
  }
  if (count == 1) cv_.notify_one(); else cv_.notify_all();
  return Status::OK();
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
