#include "common/shm_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ferry::shm {

namespace {
std::string errnoText(int e) { return std::strerror(e); }
constexpr const char* kPrefix = "ferry.";
}  // namespace

Status create(size_t size, std::string& name, void** addr) {
  static std::atomic<uint64_t> counter{0};
  name = "/" + std::string(kPrefix) + std::to_string(::getpid()) + "." +
         std::to_string(counter.fetch_add(1));
  // Owner-only: cross-user sharing is not a use case, and the name is guessable.
  int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("shm_open " + name + ": " + errnoText(errno));
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    ::close(fd);
    ::shm_unlink(name.c_str());
    return Status::Unavailable("cannot size " + name + " to " + std::to_string(size) + ": " +
                               errnoText(e));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    ::shm_unlink(name.c_str());
    return Status::Unavailable("cannot map " + name + ": " + errnoText(e));
  }
  *addr = p;
  return Status::OK();
}

void destroy(const std::string& name, void* addr, size_t size) {
  if (addr) ::munmap(addr, size);
  if (!name.empty()) ::shm_unlink(name.c_str());
}

int sweepStaleShmFiles() {
  DIR* d = ::opendir("/dev/shm");
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(kPrefix, 0) != 0) continue;
    size_t dot = n.find('.', std::strlen(kPrefix));
    if (dot == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(n.c_str() + std::strlen(kPrefix), nullptr, 10));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours
    if (::shm_unlink(("/" + n).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  if (removed) FERRY_LOG(INFO) << "removed " << removed << " shared-memory file(s) of dead processes";
  return removed;
}

Mapping::~Mapping() {
  if (base_) ::munmap(base_, size_);
}

Status Mapping::open(const std::string& name, bool writable) {
  if (name.empty() || name[0] != '/' || name.find('/', 1) != std::string::npos)
    return Status::InvalidArgument("bad shared-memory name '" + name + "'");
  int fd = ::shm_open(name.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("shm_open " + name + ": " + errnoText(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return Status::Unavailable("shared-memory file " + name + " is empty or unreadable");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size),
                   PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return Status::Unavailable("cannot map " + name + ": " + errnoText(e));
  base_ = p;
  size_ = static_cast<size_t>(st.st_size);
  writable_ = writable;
  return Status::OK();
}

}  // namespace ferry::shm
