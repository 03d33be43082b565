#include "common/shm_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <new>
#include <set>
#include <vector>

#include "common/log.h"

namespace ferry::shm {

namespace {
std::string errnoText(int e) { return std::strerror(e); }
constexpr const char* kPrefix = "ferry.";
constexpr const char* kLockSuffix = "lock";
// A lock file younger than this may still be on its way to being locked (created, not yet
// flock'ed): leave it to a later sweep.
constexpr time_t kCreationGraceS = 10;
// Files of an instance without a lock file (a sweep cut short): removed once this old.
constexpr time_t kOrphanAgeS = 60;

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// The instance id in "ferry.<instance>.<what>", or "" when the name is not one of ours.
std::string instanceOf(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) return "";
  size_t start = std::strlen(kPrefix);
  size_t dot = name.find('.', start);
  if (dot == std::string::npos) return "";
  std::string id = name.substr(start, dot - start);
  return validInstance(id) ? id : "";
}
}  // namespace

bool validInstance(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string localSocketPath(const std::string& dir, const std::string& instance) {
  return join(dir, kPrefix + instance + ".sock");
}

Status InstanceDir::open(const std::string& dir, const std::string& instance, std::unique_ptr<InstanceDir>& out) {
  if (!validInstance(instance)) return Status::InvalidArgument("bad instance id '" + instance + "'");
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::NotFound("same-machine directory '" + dir + "' does not exist");
  sweepStale(dir);
  auto d = std::unique_ptr<InstanceDir>(new InstanceDir);
  d->dir_ = dir;
  d->prefix_ = kPrefix + instance + ".";
  const std::string path = join(dir, d->prefix_ + kLockSuffix);
  d->lock_fd_ = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (d->lock_fd_ < 0) return Status::Unavailable("cannot create " + path + ": " + errnoText(errno));
  if (::flock(d->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    Status why = Status::Unavailable("cannot lock " + path + ": " + errnoText(errno));
    ::close(d->lock_fd_);
    d->lock_fd_ = -1;
    ::unlink(path.c_str());
    return why;
  }
  // Non-empty once locked: a sweeper that finds it empty and unlocked leaves it alone.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::write(d->lock_fd_, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size()))
    FERRY_LOG(WARN) << "cannot write " << path << ": " << errnoText(errno);
  out = std::move(d);
  return Status::OK();
}

InstanceDir::~InstanceDir() {
  if (lock_fd_ < 0) return;
  // Whatever of ours is left (nothing, after a clean stop), the lock last.
  if (DIR* d = ::opendir(dir_.c_str())) {
    std::vector<std::string> mine;
    while (dirent* e = ::readdir(d))
      if (std::string n = e->d_name; n.rfind(prefix_, 0) == 0 && n != prefix_ + kLockSuffix) mine.push_back(n);
    ::closedir(d);
    for (const auto& n : mine) ::unlink(join(dir_, n).c_str());
  }
  ::unlink(join(dir_, prefix_ + kLockSuffix).c_str());
  ::close(lock_fd_);
}

int sweepStale(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  std::map<std::string, std::vector<std::string>> by_instance;
  std::set<std::string> locked;  // instances that have a lock file
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    std::string id = instanceOf(n);
    if (id.empty()) continue;
    if (n == kPrefix + id + "." + kLockSuffix)
      locked.insert(id);
    else
      by_instance[id].push_back(n);
  }
  ::closedir(d);
  const time_t now = std::time(nullptr);
  int removed = 0;
  auto remove = [&](const std::string& name) {
    if (::unlink(join(dir, name).c_str()) == 0) ++removed;
  };
  for (const auto& id : locked) {
    const std::string lock_name = kPrefix + id + "." + kLockSuffix;
    int fd = ::open(join(dir, lock_name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    struct stat st {};
    bool dead = ::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &st) == 0 &&
                (st.st_size > 0 || now - st.st_mtime > kCreationGraceS);
    if (dead) {
      for (const auto& n : by_instance[id]) remove(n);
      remove(lock_name);  // last: until it goes, nobody mistakes the rest for orphans
    }
    ::close(fd);
  }
  for (const auto& [id, names] : by_instance) {
    if (locked.count(id)) continue;
    for (const auto& n : names) {
      struct stat st {};
      if (::lstat(join(dir, n).c_str(), &st) == 0 && now - st.st_mtime > kOrphanAgeS) remove(n);
    }
  }
  if (removed) FERRY_LOG(INFO) << "removed " << removed << " file(s) of stopped engines from " << dir;
  return removed;
}

Status create(const std::string& dir, const std::string& name, size_t size, void** addr) {
  const std::string path = join(dir, name);
  // Owner-only: peers get descriptors from us, never open these themselves.
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("cannot create " + path + ": " + errnoText(errno));
  auto fail = [&](Status st) {
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  };
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (rc == EOPNOTSUPP || rc == EINVAL) {
    // This filesystem cannot reserve space: size the file and say what that risks.
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      FERRY_LOG(WARN) << dir << " cannot reserve space (posix_fallocate: " << errnoText(rc)
                      << "); a full filesystem would fault shared-memory buffers (SIGBUS)";
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
      return fail(Status::Unavailable("cannot size " + path + ": " + errnoText(errno)));
  } else if (rc != 0) {
    return fail(Status::Unavailable("cannot reserve " + std::to_string(size) + " bytes in " + dir + ": " +
                                    errnoText(rc) + " (free space there, or set same_machine/dir)"));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail(Status::Unavailable("cannot map " + path + ": " + errnoText(errno)));
  ::close(fd);
  *addr = p;
  return Status::OK();
}

void destroy(const std::string& dir, const std::string& name, void* addr, size_t size) {
  if (addr) ::munmap(addr, size);
  if (!name.empty()) ::unlink(join(dir, name).c_str());
}

Status openForPeer(const std::string& dir, const std::string& name, bool writable, int& fd) {
  const int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW;
  fd = name[0] == '/' ? ::shm_open(name.c_str(), flags, 0) : ::open(join(dir, name).c_str(), flags);
  if (fd < 0) return Status::Unavailable("cannot open " + name + ": " + errnoText(errno));
  return Status::OK();
}

Mapping::~Mapping() {
  if (base_) ::munmap(base_, size_);
}

Status Mapping::map(int fd, bool writable) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
    return Status::Unavailable("a shared file passed by the peer is empty or not a file");
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
                   fd, 0);
  if (p == MAP_FAILED) return Status::Unavailable("cannot map a peer's shared file: " + errnoText(errno));
  base_ = p;
  size_ = static_cast<size_t>(st.st_size);
  writable_ = writable;
  return Status::OK();
}

Beacon::~Beacon() {
  if (ro_fd_ >= 0) ::close(ro_fd_);
  if (page_) destroy(dir_, name_, page_, 4096);
}

Status Beacon::create(const std::string& dir, const std::string& name, uint64_t version) {
  void* page = nullptr;
  FERRY_RETURN_IF_ERROR(shm::create(dir, name, 4096, &page));
  dir_ = dir;
  name_ = name;
  page_ = new (page) std::atomic<uint64_t>(version);
  return openForPeer(dir, name, false, ro_fd_);
}

void Beacon::set(uint64_t version) {
  if (page_) page_->store(version, std::memory_order_release);
}

void Beacon::markGone() {
  if (page_) page_->store(kEngineGone, std::memory_order_release);
}

}  // namespace ferry::shm
