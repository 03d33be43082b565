// Helpers shared by the tests: deterministic buffer contents, hashing, engines on
// 127.0.0.1, and a child process speaking JSON lines (the test peer).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "model/segment_descriptor.h"

namespace ferry::test {

/// An engine's own descriptor, as peers read it.
inline SegmentDescriptor localDescriptor(TransferEngine& engine) {
  SegmentDescriptor d;
  Status st = SegmentDescriptor::fromJson(ext::localDescriptorJson(engine), d);
  (void)st;  // an empty descriptor fails the caller's expectations
  return d;
}

/// Byte i of the pattern depends on i and seed.
void fillPattern(uint8_t* p, size_t len, uint64_t seed);
/// FNV-1a 64 of the bytes, as hex.
std::string hashHex(const uint8_t* p, size_t len);

/// A config for an engine on 127.0.0.1 with an ephemeral port.
std::shared_ptr<Config> loopbackConfig(int64_t transfer_timeout_ms = 10000);

/// Submits requests in a fresh batch, waits, frees it; returns the submit/wait error or
/// the failed state as a Status.
Status runBatch(TransferEngine& e, const std::vector<Request>& reqs,
                std::chrono::milliseconds timeout = std::chrono::seconds(30),
                TransferStatus* out = nullptr);

/// Submits `reqs` in a fresh batch, cancels it at once and frees it. Not OK when a step
/// fails or a task ended other than COMPLETED or CANCELED; `untouched`: the tasks that ended
/// CANCELED before a byte of them moved.
Status submitThenCancel(TransferEngine& e, const std::vector<Request>& reqs, size_t& untouched);

/// Receives notifications until `want` arrived or the timeout passed.
std::vector<Notification> awaitNotifications(TransferEngine& e, size_t want,
                                             std::chrono::milliseconds timeout = std::chrono::seconds(2));

/// The value of one series ("name{labels}") in Prometheus text, -1 when absent.
double metricValue(const std::string& text, const std::string& series);

/// A TCP connection to 127.0.0.1:port with a receive timeout (a test's raw client); -1 when
/// it cannot connect.
int connectLoopback(uint16_t port, int recv_timeout_s = 5);
/// Whether the other end closed `fd` (EOF) rather than sending something.
bool closedByPeer(int fd);

/// Path of a binary built next to the tests.
std::string binPath(const std::string& name);

/// A fresh directory under $TMPDIR (or /tmp), removed with its files at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  /// path()/name
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// CPU time (user + system) a process has used so far, in seconds; -1 when unknown.
double cpuSeconds(pid_t pid);
/// A field of /proc/<pid>/status in its unit (VmRSS in kB, Threads), or -1.
int64_t procStatus(pid_t pid, const std::string& field);

/// A child process with a pipe on stdin and stdout.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  struct Options {
    std::vector<std::string> env;  // "NAME=value", added to ours
    std::string stderr_path;       // "": inherit ours
    int max_fds = 0;               // RLIMIT_NOFILE in the child (0: ours)
  };
  bool start(const std::vector<std::string>& argv) { return start(argv, Options{}); }
  bool start(const std::vector<std::string>& argv, const Options& options);
  /// One line of stdout, or "" after the timeout / EOF.
  std::string readLine(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool writeLine(const std::string& line);
  void signal(int sig);
  /// Waits for exit (bounded); returns the wait status or -1.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_;
};

}  // namespace ferry::test
