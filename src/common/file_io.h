// File I/O between memory and file offsets, behind one small interface with two backends:
// io_uring (liburing; a batch of operations in flight at once) and plain pread/pwrite.
// Which one runs is probed at start (io_uring may be missing from the kernel, disabled by
// sysctl or blocked by seccomp) and can be named in config (cf. Seastar's reactor backends).
//
// An operation goes through the file's O_DIRECT descriptor when its memory address, file
// offset and length are all multiples of the direct-I/O alignment, and through the
// buffered one otherwise; Linux keeps the two coherent (a direct read flushes dirty cached
// pages of its range first, a direct write invalidates them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/status.h"

namespace ferry::fileio {

enum class Backend { kIoUring, kPosix };
const char* backendName(Backend b);  // "io_uring" / "pread"

/// Picks the backend for `requested`: "auto" (io_uring when it works here, else pread),
/// "io_uring" (an error saying why when it does not work) or "pread".
Status chooseBackend(const std::string& requested, Backend& out);

/// An open file: a buffered descriptor and, where the filesystem allows, an O_DIRECT one.
class File {
 public:
  /// Opens `path` read-only or read-write; `create_size` > 0 creates the file if needed
  /// and extends it to at least that many bytes.
  static Status open(const std::string& path, bool read_only, uint64_t create_size,
                     bool try_direct, std::shared_ptr<File>& out);
  /// Takes ownership of descriptors opened elsewhere (a peer's, passed to us); `label`
  /// names the file in messages. `direct_fd` may be -1.
  static std::shared_ptr<File> adopt(int fd, int direct_fd, bool read_only, std::string label);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int fd() const { return fd_; }
  int directFd() const { return direct_fd_; }  // -1 when O_DIRECT is off or unsupported
  bool readOnly() const { return read_only_; }
  const std::string& path() const { return path_; }
  /// Current size (fstat).
  Status size(uint64_t& out) const;

 private:
  File() = default;
  int fd_ = -1, direct_fd_ = -1;
  bool read_only_ = false;
  std::string path_;
};

/// One transfer between memory and a file range.
struct IoOp {
  const File* file = nullptr;
  bool write = false;  // memory -> file
  uint8_t* buf = nullptr;
  uint64_t offset = 0;
  uint64_t length = 0;
  Status result;  // set by FileIo::run
};

struct IoCounters {
  uint64_t direct_ops = 0;    // went through O_DIRECT
  uint64_t buffered_ops = 0;  // through the page cache
};

/// One thread's I/O context: an io_uring ring, or nothing for pread/pwrite. Not shared
/// between threads.
class FileIo {
 public:
  static Status create(Backend backend, unsigned queue_depth, uint32_t direct_alignment,
                       std::unique_ptr<FileIo>& out);
  virtual ~FileIo() = default;
  virtual Backend backend() const = 0;
  /// Runs ops[0..n) to completion, continuing short transfers; sets each op's result.
  /// Reading past the end of the file is an error (the bytes do not exist).
  virtual void run(IoOp* ops, size_t n) = 0;
  const IoCounters& counters() const { return counters_; }

 protected:
  explicit FileIo(uint32_t direct_alignment) : align_(direct_alignment) {}
  // The descriptor `op` starts on (direct when aligned and available).
  int pickFd(const IoOp& op);
  uint32_t align_;
  IoCounters counters_;
};

}  // namespace ferry::fileio
