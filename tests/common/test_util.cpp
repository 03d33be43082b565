#include "test_util.h"

#include <filesystem>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/net.h"

namespace ferry::test {

// Like hashHex below: the test peer fills memory that other processes then read and write
// through the engine, an order TSan cannot see across processes.
__attribute__((no_sanitize("thread"))) void fillPattern(uint8_t* p, size_t len, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<uint8_t>(x);
  }
}

// The test peer hashes memory another process wrote into it through the engine. The order
// is real (the initiator's write completed before the test asked, over the peer's stdin)
// but it runs through another process, which ThreadSanitizer cannot see: not instrumented.
__attribute__((no_sanitize("thread"))) std::string hashHex(const uint8_t* p, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::shared_ptr<Config> loopbackConfig(int64_t transfer_timeout_ms) {
  auto c = std::make_shared<Config>();
  c->set("rpc/bind_address", "127.0.0.1");
  c->set<int64_t>("transfer_timeout_ms", transfer_timeout_ms);
  c->set<int64_t>("connect_timeout_ms", 2000);
  return c;
}

Status runBatch(TransferEngine& e, const std::vector<Request>& reqs,
                std::chrono::milliseconds timeout, TransferStatus* out) {
  BatchID b = e.allocateBatch(reqs.size());
  if (b == 0) return Status::InternalError("allocateBatch failed");
  Status st = e.submitTransfer(b, reqs);
  TransferStatus ts;
  if (st.ok()) st = e.waitTransfer(b, ts, timeout);
  if (out) *out = ts;
  if (st.ok() && ts.s != COMPLETED)
    st = Status::InternalError(std::string("batch ended ") + ToString(ts.s));
  // Bounded wait so a failing test never leaks a batch with work in flight.
  for (int i = 0; i < 2000 && !e.freeBatch(b).ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return st;
}

Status submitThenCancel(TransferEngine& e, const std::vector<Request>& reqs, size_t& untouched) {
  untouched = 0;
  BatchID batch = e.allocateBatch(reqs.size());
  if (batch == 0) return Status::InternalError("allocateBatch failed");
  FERRY_RETURN_IF_ERROR(e.submitTransfer(batch, reqs));
  FERRY_RETURN_IF_ERROR(e.cancelTransfer(batch));
  std::vector<TransferStatus> tasks;
  FERRY_RETURN_IF_ERROR(e.getTransferStatus(batch, tasks));
  for (const TransferStatus& t : tasks) {
    if (t.s != COMPLETED && t.s != CANCELED)
      return Status::InternalError(std::string("a task ended ") + ToString(t.s) + " after the cancel");
    untouched += t.s == CANCELED && t.transferred_bytes == 0;
  }
  return e.freeBatch(batch);
}

std::vector<Notification> awaitNotifications(TransferEngine& e, size_t want,
                                             std::chrono::milliseconds timeout) {
  std::vector<Notification> got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    if (!e.receiveNotification(got).ok()) break;
    if (got.size() < want) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return got;
}

double metricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

int connectLoopback(uint16_t port, int recv_timeout_s) {
  int fd = -1;
  if (!net::connectTcp("127.0.0.1", port, 2000, fd).ok()) return -1;
  timeval tv{recv_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool closedByPeer(int fd) {
  char b;
  return ::recv(fd, &b, 1, 0) == 0;
}

std::string binPath(const std::string& name) { return std::string(FERRY_BIN_DIR) + "/" + name; }

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-test.XXXXXX";
  if (::mkdtemp(tmpl.data())) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (in_ >= 0) ::close(in_);
  if (out_ >= 0) ::close(out_);
}

double cpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(f, text)) return -1;
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int64_t procStatus(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

bool ChildProcess::start(const std::vector<std::string>& argv, const Options& options) {
  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) return false;
  if (::pipe2(from_child, O_CLOEXEC) != 0) return false;
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    ::dup2(to_child[0], STDIN_FILENO);
    ::dup2(from_child[1], STDOUT_FILENO);
    if (!options.stderr_path.empty()) {
      int err = ::open(options.stderr_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
    }
    for (const auto& e : options.env) ::putenv(const_cast<char*>(e.c_str()));
    if (options.max_fds > 0) {
      rlimit r{static_cast<rlim_t>(options.max_fds), static_cast<rlim_t>(options.max_fds)};
      ::setrlimit(RLIMIT_NOFILE, &r);
    }
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  in_ = to_child[1];
  out_ = from_child[0];
  return true;
}

std::string ChildProcess::readLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return "";
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char tmp[4096];
    ssize_t n = ::read(out_, tmp, sizeof tmp);
    if (n <= 0) return "";
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

bool ChildProcess::writeLine(const std::string& line) {
  std::string s = line + "\n";
  return ::write(in_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

}  // namespace ferry::test
