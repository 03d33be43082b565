#include "common/file_io.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "common/log.h"

#ifdef FERRY_HAVE_LIBURING
#include <liburing.h>
#endif

namespace ferry::fileio {

namespace {

// One read/write call moves at most this much (io_uring lengths are 32-bit).
constexpr uint64_t kMaxChunk = 1ull << 30;

Status ioError(const IoOp& op, int err) {
  std::string what = std::string(op.write ? "write to" : "read from") + " '" + op.file->path() +
                     "' at offset " + std::to_string(op.offset) + " (+" +
                     std::to_string(op.length) + ")";
  if (err == 0) return Status::OutOfRange(what + ": past the end of the file");
  if (err == EBADF || err == EACCES || err == EPERM || err == EROFS)
    return Status::PermissionDenied(what + ": " + strerror(err));
  return Status::InternalError(what + ": " + strerror(err));
}

// Progress of one op across calls (shared by both backends).
struct Progress {
  int fd = -1;
  uint64_t done = 0;
};

// Applies the outcome of one call moving `res` bytes (or -errno). Returns true when the op
// needs another call; false when it finished (op.result says how).
bool advance(IoOp& op, Progress& p, long res) {
  if (res == -EINTR || res == -EAGAIN) return true;
  if (res == -EINVAL && p.fd == op.file->directFd()) {
    // The filesystem refused this direct transfer after all (alignment it wants is larger
    // than ours): finish it through the page cache.
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true))
      FERRY_LOG(WARN) << "O_DIRECT refused on '" << op.file->path() << "'; using buffered I/O for such ops";
    p.fd = op.file->fd();
    return true;
  }
  if (res < 0) {
    op.result = ioError(op, static_cast<int>(-res));
    return false;
  }
  if (res == 0) {
    op.result = ioError(op, 0);
    return false;
  }
  p.done += static_cast<uint64_t>(res);
  if (p.done >= op.length) {
    op.result = Status::OK();
    return false;
  }
  // A short direct transfer leaves an unaligned remainder: continue buffered.
  p.fd = op.file->fd();
  return true;
}

class PosixFileIo : public FileIo {
 public:
  explicit PosixFileIo(uint32_t align) : FileIo(align) {}
  Backend backend() const override { return Backend::kPosix; }
  void run(IoOp* ops, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      IoOp& op = ops[i];
      Progress p{pickFd(op), 0};
      while (true) {
        uint64_t len = std::min(op.length - p.done, kMaxChunk);
        ssize_t r = op.write ? ::pwrite(p.fd, op.buf + p.done, len, static_cast<off_t>(op.offset + p.done))
                             : ::pread(p.fd, op.buf + p.done, len, static_cast<off_t>(op.offset + p.done));
        if (!advance(op, p, r < 0 ? -errno : r)) break;
      }
    }
  }
};

#ifdef FERRY_HAVE_LIBURING
class UringFileIo : public FileIo {
 public:
  UringFileIo(uint32_t align, unsigned depth) : FileIo(align), depth_(depth) {}
  ~UringFileIo() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  Status init() {
    int rc = io_uring_queue_init(depth_, &ring_, 0);
    if (rc < 0) return Status::NotSupported(std::string("io_uring_setup: ") + strerror(-rc));
    ready_ = true;
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
              io_uring_opcode_supported(probe, IORING_OP_WRITE);
    if (probe) io_uring_free_probe(probe);
    if (!ok) return Status::NotSupported("io_uring lacks IORING_OP_READ/WRITE (kernel < 5.6)");
    return Status::OK();
  }
  Backend backend() const override { return Backend::kIoUring; }

  void run(IoOp* ops, size_t n) override {
    // Reused across calls: a worker runs one batch after another.
    std::vector<Progress>& prog = prog_;
    std::deque<size_t>& ready = ready_ops_;  // ops with a call to issue
    prog.assign(n, Progress{});
    ready.clear();
    for (size_t i = 0; i < n; ++i) {
      prog[i].fd = pickFd(ops[i]);
      ready.push_back(i);
    }
    size_t inflight = 0;
    while (!ready.empty() || inflight > 0) {
      while (!ready.empty() && inflight < depth_) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) break;
        size_t i = ready.front();
        ready.pop_front();
        IoOp& op = ops[i];
        Progress& p = prog[i];
        unsigned len = static_cast<unsigned>(std::min(op.length - p.done, kMaxChunk));
        if (op.write)
          io_uring_prep_write(sqe, p.fd, op.buf + p.done, len, op.offset + p.done);
        else
          io_uring_prep_read(sqe, p.fd, op.buf + p.done, len, op.offset + p.done);
        io_uring_sqe_set_data64(sqe, i);
        ++inflight;
      }
      int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        // The ring itself failed: nothing more can be trusted to complete through it.
        failRemaining(ops, n, prog, rc);
        return;
      }
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        size_t i = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
        ++seen;
        --inflight;
        if (advance(ops[i], prog[i], cqe->res)) ready.push_back(i);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

 private:
  void failRemaining(IoOp* ops, size_t n, std::vector<Progress>& prog, int rc) {
    // Drain what the kernel still holds before the memory goes back to the caller.
    io_uring_queue_exit(&ring_);
    ready_ = false;
    for (size_t i = 0; i < n; ++i)
      if (prog[i].done < ops[i].length && ops[i].result.ok())
        ops[i].result = Status::InternalError(std::string("io_uring_submit: ") + strerror(-rc));
    if (io_uring_queue_init(depth_, &ring_, 0) == 0) ready_ = true;
  }

  unsigned depth_;
  io_uring ring_{};
  bool ready_ = false;
  std::vector<Progress> prog_;
  std::deque<size_t> ready_ops_;
};
#endif

}  // namespace

const char* backendName(Backend b) { return b == Backend::kIoUring ? "io_uring" : "pread"; }

Status chooseBackend(const std::string& requested, Backend& out) {
  if (requested == "pread" || requested == "posix") {
    out = Backend::kPosix;
    return Status::OK();
  }
  if (requested != "auto" && requested != "io_uring")
    return Status::InvalidArgument("file I/O backend must be auto, io_uring or pread, got '" +
                                   requested + "'");
#ifdef FERRY_HAVE_LIBURING
  std::unique_ptr<FileIo> probe;
  Status st = FileIo::create(Backend::kIoUring, 4, 4096, probe);
#else
  Status st = Status::NotSupported("built without liburing");
#endif
  if (st.ok()) {
    out = Backend::kIoUring;
    return Status::OK();
  }
  if (requested == "io_uring")
    return Status::NotSupported("io_uring requested but unavailable: " + st.message());
  FERRY_LOG(INFO) << "file I/O: io_uring unavailable (" << st.message() << "); using pread/pwrite";
  out = Backend::kPosix;
  return Status::OK();
}

Status FileIo::create(Backend backend, unsigned queue_depth, uint32_t direct_alignment,
                      std::unique_ptr<FileIo>& out) {
  if (direct_alignment == 0 || (direct_alignment & (direct_alignment - 1)))
    return Status::InvalidArgument("direct I/O alignment must be a power of two");
  if (backend == Backend::kPosix) {
    out = std::make_unique<PosixFileIo>(direct_alignment);
    return Status::OK();
  }
#ifdef FERRY_HAVE_LIBURING
  auto ring = std::make_unique<UringFileIo>(direct_alignment, std::max(1u, queue_depth));
  FERRY_RETURN_IF_ERROR(ring->init());
  out = std::move(ring);
  return Status::OK();
#else
  return Status::NotSupported("built without liburing");
#endif
}

int FileIo::pickFd(const IoOp& op) {
  uint64_t mask = align_ - 1;
  bool aligned = ((reinterpret_cast<uintptr_t>(op.buf) | op.offset | op.length) & mask) == 0;
  if (aligned && op.file->directFd() >= 0) {
    ++counters_.direct_ops;
    return op.file->directFd();
  }
  ++counters_.buffered_ops;
  return op.file->fd();
}

Status File::open(const std::string& path, bool read_only, uint64_t create_size, bool try_direct,
                  std::shared_ptr<File>& out) {
  if (path.empty()) return Status::InvalidArgument("file path is empty");
  int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (create_size > 0 && !read_only) flags |= O_CREAT;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    int e = errno;
    std::string why = "cannot open '" + path + "': " + strerror(e);
    if (e == ENOENT) return Status::NotFound(why);
    if (e == EACCES || e == EPERM || e == EROFS) return Status::PermissionDenied(why);
    return Status::InvalidArgument(why);
  }
  std::shared_ptr<File> f(new File);
  f->fd_ = fd;
  f->read_only_ = read_only;
  f->path_ = path;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
    return Status::InvalidArgument("'" + path + "' is not a regular file or block device");
  if (create_size > 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < create_size) {
    if (read_only)
      return Status::InvalidArgument("'" + path + "' is smaller than the " +
                                     std::to_string(create_size) + " bytes asked for");
    if (::ftruncate(fd, static_cast<off_t>(create_size)) != 0)
      return Status::InternalError("cannot extend '" + path + "': " + strerror(errno));
  }
  if (try_direct) {
    f->direct_fd_ = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_DIRECT);
    if (f->direct_fd_ < 0)
      FERRY_LOG(INFO) << "'" << path << "': no O_DIRECT (" << strerror(errno) << "); buffered I/O only";
  }
  out = std::move(f);
  return Status::OK();
}

std::shared_ptr<File> File::adopt(int fd, int direct_fd, bool read_only, std::string label) {
  std::shared_ptr<File> f(new File);
  f->fd_ = fd;
  f->direct_fd_ = direct_fd;
  f->read_only_ = read_only;
  f->path_ = std::move(label);
  return f;
}

File::~File() {
  if (direct_fd_ >= 0) ::close(direct_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Status File::size(uint64_t& out) const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::InternalError("fstat '" + path_ + "': " + strerror(errno));
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd_, BLKGETSIZE64, &bytes) != 0)
      return Status::InternalError("BLKGETSIZE64 '" + path_ + "': " + strerror(errno));
    out = bytes;
    return Status::OK();
  }
  out = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

}  // namespace ferry::fileio
