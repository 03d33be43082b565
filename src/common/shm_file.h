// Files that back memory a same-machine peer maps, in one directory both can see (a tmpfs,
// `same_machine/dir`, /dev/shm by default). Every file of an engine instance is named
// "ferry.<instance>.<what>" and the instance holds an exclusive flock on its
// "ferry.<instance>.lock" for as long as it runs: liveness is the lock, which works across
// pid namespaces and containers sharing the directory (a pid does not). An engine that
// starts removes the files of instances whose lock nobody holds (crashed ones).
//
// Peers never open these files by a name they were told: the owner opens them and hands
// the descriptor over its local socket (SCM_RIGHTS), read-only where the memory is.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/status.h"

namespace ferry::shm {

/// Value an engine leaves in its beacon when it shuts down.
constexpr uint64_t kEngineGone = UINT64_MAX;

/// Whether `instance` may be part of a file name (1..64 of [0-9A-Za-z_-]); a peer's claimed
/// instance id is checked before any path is made from it.
bool validInstance(const std::string& instance);
/// "<dir>/ferry.<instance>.sock": where an engine instance accepts same-machine peers.
std::string localSocketPath(const std::string& dir, const std::string& instance);

/// One engine instance's claim on the directory: creates and locks its lock file (after
/// sweeping files of dead instances); removes every file of the instance when destroyed.
class InstanceDir {
 public:
  static Status open(const std::string& dir, const std::string& instance, std::unique_ptr<InstanceDir>& out);
  ~InstanceDir();
  const std::string& dir() const { return dir_; }
  /// "ferry.<instance>." : the start of every file name of this instance.
  const std::string& prefix() const { return prefix_; }

 private:
  std::string dir_, prefix_;
  int lock_fd_ = -1;
};

/// Removes the files of instances in `dir` whose lock is free (their process is gone, in any
/// pid namespace). Returns how many files it removed.
int sweepStale(const std::string& dir);

/// Creates `dir/name` (0600, must not exist), reserves `size` bytes in it (posix_fallocate:
/// a full filesystem is an error now, never a SIGBUS later) and maps it shared, read-write.
Status create(const std::string& dir, const std::string& name, size_t size, void** addr);
/// Unmaps [addr, addr+size) and removes dir/name (peers' mappings stay valid).
void destroy(const std::string& dir, const std::string& name, void* addr, size_t size);
/// Opens a file this process owns for a local peer: dir/name, or a POSIX shared-memory
/// name ("/x") when `name` starts with '/'. Read-only unless `writable`.
Status openForPeer(const std::string& dir, const std::string& name, bool writable, int& fd);

/// A file mapped into this process from a descriptor (a peer's, passed to us).
class Mapping {
 public:
  Mapping() = default;
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// Maps the whole file behind `fd` (which stays the caller's); read-only unless
  /// `writable` (the kernel refuses a writable mapping of a read-only descriptor).
  Status map(int fd, bool writable);
  uint8_t* base() const { return static_cast<uint8_t*>(base_); }
  size_t size() const { return size_; }
  bool writable() const { return writable_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
};

/// Our beacon: a one-page file holding this engine's live registry version (or
/// kEngineGone), which same-machine peers map read-only to know when their copy of our
/// descriptor is out of date without asking (shm copies and file I/O get no acks).
class Beacon {
 public:
  ~Beacon();
  Status create(const std::string& dir, const std::string& name, uint64_t version);
  void set(uint64_t version);
  void markGone();
  /// A read-only descriptor of the page, to hand to local peers (-1 before create()).
  int readOnlyFd() const { return ro_fd_; }

 private:
  std::string dir_, name_;
  std::atomic<uint64_t>* page_ = nullptr;
  int ro_fd_ = -1;
};

}  // namespace ferry::shm
