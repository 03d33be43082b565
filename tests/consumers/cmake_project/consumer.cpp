// Two processes through Ferry's installed C++ API: the child is the target (an engine with a
// registered buffer), the parent writes a pattern into it and reads it back; the child then
// checks its own memory holds exactly what the parent wrote. Exit status 0 only if it all held.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <ferry/config.h>
#include <ferry/transfer_engine.h>
#include <ferry/version.h>

namespace {

constexpr size_t kBytes = 8 << 20;

uint8_t patternByte(size_t i) { return static_cast<uint8_t>(i * 31 + (i >> 16)); }

std::shared_ptr<ferry::Config> loopback() {
  auto config = std::make_shared<ferry::Config>();
  config->set("rpc/bind_address", "127.0.0.1");
  return config;
}

int fail(const char* what, const ferry::Status& st) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, st.ToString().c_str());
  return 1;
}

// The target: publishes "<segment> <buffer address>" on `out`, waits for the go on `in`,
// then checks its buffer.
int target(int out, int in) {
  ferry::TransferEngine engine(loopback());
  if (!engine.available()) return fail("target engine", engine.initStatus());
  void* buffer = nullptr;
  if (auto st = engine.allocateLocalMemory(&buffer, kBytes); !st.ok()) return fail("allocate", st);
  std::memset(buffer, 0, kBytes);
  std::string hello = engine.getSegmentName() + " " + std::to_string(reinterpret_cast<uintptr_t>(buffer)) + "\n";
  if (write(out, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size())) return 1;
  char go = 0;
  if (read(in, &go, 1) != 1) return 1;
  auto* bytes = static_cast<uint8_t*>(buffer);
  for (size_t i = 0; i < kBytes; ++i) {
    if (bytes[i] != patternByte(i)) {
      std::fprintf(stderr, "consumer: target byte %zu is %u, not %u\n", i, bytes[i], patternByte(i));
      return 1;
    }
  }
  return engine.freeLocalMemory(buffer).ok() ? 0 : 1;
}

int initiator(const std::string& segment, uint64_t remote) {
  ferry::TransferEngine engine(loopback());
  if (!engine.available()) return fail("initiator engine", engine.initStatus());
  std::vector<uint8_t> data(kBytes), back(kBytes);
  for (size_t i = 0; i < kBytes; ++i) data[i] = patternByte(i);
  if (auto st = engine.registerLocalMemory(data.data(), kBytes); !st.ok()) return fail("register", st);
  if (auto st = engine.registerLocalMemory(back.data(), kBytes); !st.ok()) return fail("register", st);
  ferry::SegmentID target_id = 0;
  if (auto st = engine.openSegment(target_id, segment); !st.ok()) return fail("openSegment", st);
  for (auto op : {ferry::Request::WRITE, ferry::Request::READ}) {
    ferry::BatchID batch = engine.allocateBatch(1);
    uint8_t* local = op == ferry::Request::WRITE ? data.data() : back.data();
    if (auto st = engine.submitTransfer(batch, {{op, local, target_id, remote, kBytes}}); !st.ok())
      return fail("submitTransfer", st);
    ferry::TransferStatus status;
    if (auto st = engine.waitTransfer(batch, status, std::chrono::seconds(20)); !st.ok()) return fail("wait", st);
    if (status.s != ferry::COMPLETED) return fail("transfer", ferry::Status::InternalError(ferry::ToString(status.s)));
    if (auto st = engine.freeBatch(batch); !st.ok()) return fail("freeBatch", st);
  }
  if (back != data) return fail("read back", ferry::Status::Corrupted("bytes differ"));
  return 0;
}

}  // namespace

int main() {
  if (std::strcmp(ferry::version(), FERRY_VERSION_STRING) != 0) {
    std::fprintf(stderr, "consumer: headers %s, library %s\n", FERRY_VERSION_STRING, ferry::version());
    return 1;
  }
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  pid_t child = fork();
  if (child == 0) _exit(target(to_parent[1], to_child[0]));
  char line[256] = {};
  size_t got = 0;
  while (got < sizeof(line) - 1 && (got == 0 || line[got - 1] != '\n')) {
    ssize_t n = read(to_parent[0], line + got, sizeof(line) - 1 - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  char segment[200] = {};
  unsigned long long remote = 0;
  int rc = std::sscanf(line, "%199s %llu", segment, &remote) == 2 ? initiator(segment, remote) : 1;
  (void)!write(to_child[1], "g", 1);
  int status = 0;
  waitpid(child, &status, 0);
  bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::printf("consumer (C++ API, %s): %s\n", FERRY_VERSION_STRING, rc == 0 && child_ok ? "verified" : "FAILED");
  return rc == 0 && child_ok ? 0 : 1;
}
