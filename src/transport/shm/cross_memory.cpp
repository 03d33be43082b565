#include "transport/shm/cross_memory.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "common/checksum.h"

namespace ferry::cross_memory {

Status copy(pid_t pid, bool write, uint8_t* local, uint64_t remote, uint64_t len, bool* denied) {
  uint64_t done = 0;
  while (done < len) {
    iovec ours{local + done, len - done};
    iovec theirs{reinterpret_cast<void*>(remote + done), len - done};
    ssize_t n = write ? ::process_vm_writev(pid, &ours, 1, &theirs, 1, 0)
                      : ::process_vm_readv(pid, &ours, 1, &theirs, 1, 0);
    if (n > 0) {
      done += static_cast<uint64_t>(n);
      continue;
    }
    int e = n == 0 ? EFAULT : errno;
    if (e == EINTR) continue;
    if (e == EPERM || e == ENOSYS) {
      if (denied) *denied = true;
      return Status::NotSupported(std::string("cross-memory attach refused: ") + std::strerror(e));
    }
    if (e == ESRCH) return Status::Unavailable("peer process " + std::to_string(pid) + " is gone");
    return Status::InternalError(std::string("cross-memory attach failed: ") + std::strerror(e));
  }
  return Status::OK();
}

namespace {
// The peer's bytes [remote, +len), read back through a small buffer of this thread.
Status hashRemote(pid_t pid, uint64_t remote, uint64_t len, bool* denied, uint64_t& out) {
  constexpr uint64_t kPiece = 256 << 10;
  thread_local std::unique_ptr<uint8_t[]> buf;
  if (!buf) buf = std::make_unique<uint8_t[]>(kPiece);
  checksum::Stream sum;
  for (uint64_t off = 0; off < len; off += kPiece) {
    const uint64_t n = std::min(kPiece, len - off);
    FERRY_RETURN_IF_ERROR(copy(pid, false, buf.get(), remote + off, n, denied));
    sum.update(buf.get(), n);
  }
  out = sum.digest();
  return Status::OK();
}
}  // namespace

namespace {
// One piece of the slice (`flip`: the fault transport's flip lands in it).
Status checkedPiece(Slice& s, const SliceRange& r, bool flip, pid_t pid, bool* denied) {
  const bool write = s.op == Request::WRITE;
  if (!s.task->checksum && !flip) return copy(pid, write, r.local, r.remote, r.length, denied);
  uint64_t sent = 0, got = 0;
  if (write) {
    sent = checksum::xxh3(r.local, r.length);
    FERRY_RETURN_IF_ERROR(copy(pid, true, r.local, r.remote, r.length, denied));
    if (flip) {  // the same byte flipByte changes, in the peer's memory
      const uint64_t at = flipOffset(r.length);
      uint8_t b = r.local[at] ^ kFlipMask;
      FERRY_RETURN_IF_ERROR(copy(pid, true, &b, r.remote + at, 1, denied));
    }
    if (!s.task->checksum) return Status::OK();
    FERRY_RETURN_IF_ERROR(hashRemote(pid, r.remote, r.length, denied, got));
    return compareChecksums(s, "target", sent, got);
  }
  if (s.task->checksum) FERRY_RETURN_IF_ERROR(hashRemote(pid, r.remote, r.length, denied, sent));
  FERRY_RETURN_IF_ERROR(copy(pid, false, r.local, r.remote, r.length, denied));
  if (flip) flipByte(r.local, r.length);
  if (!s.task->checksum) return Status::OK();
  got = checksum::xxh3(r.local, r.length);
  return compareChecksums(s, "initiator", sent, got);
}
}  // namespace

Status checkedCopy(Slice& s, pid_t pid, bool* denied) {
  const SliceRanges pieces(s);
  for (size_t k = 0; k < pieces.size(); ++k) FERRY_RETURN_IF_ERROR(checkedPiece(s, pieces[k], flipsIn(s, k), pid, denied));
  return Status::OK();
}

}  // namespace ferry::cross_memory
