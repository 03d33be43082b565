// The shm transport: shared mappings and cross-memory attach to a peer process, permissions,
// the peer's registry changes, the fallback to TCP, and the shared-memory files themselves.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "../integration/engine_pair.h"
#include "../integration/peer_process.h"
#include "common/base64.h"
#include "common/net.h"
#include "common/shm_file.h"
#include "transport/local_peer.h"

namespace ferry::test {

namespace {
std::string decodeInstance(const std::string& exported) {
  std::string text;
  SegmentDescriptor d;
  if (base64Decode(exported.substr(exported.find("v1:") + 3), text)) SegmentDescriptor::fromJson(text, d).IgnoreError();
  return d.instance_id;
}
}  // namespace

// "mapped": the peer's buffers come from allocateLocalMemory (shared-memory files);
// "attached": heap buffers, reached with process_vm_readv/writev.
class ShmPeer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(peer.start(0, 64 << 20, "", "", GetParam() == "mapped"));
    engine = std::make_unique<TransferEngine>(loopbackConfig());
    ASSERT_TRUE(engine->available());
    mem.resize(130 << 20);
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
    Status st = engine->openSegment(seg, peer.segment);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  PeerProcess peer;
  std::vector<uint8_t> mem;
  std::unique_ptr<TransferEngine> engine;
  SegmentID seg = 0;
};
INSTANTIATE_TEST_SUITE_P(Paths, ShmPeer, ::testing::Values("mapped", "attached"),
                         [](const auto& info) { return info.param; });

TEST_P(ShmPeer, SameMachinePeerIsServedByShm) {
  EXPECT_EQ(ext::transportName(*engine, seg), "shm");
}

TEST_P(ShmPeer, RoundTripsFromOneByteTo64MiBUnaligned) {
  expectRoundTripsAllSizes(*engine, seg, peer, mem, 1000, "shm");  // pinned: no silent fallback to tcp
}

// Copies that bypass the cache (every submit, with the threshold at one byte) and plain ones
// (never) land the same bytes; only mapped buffers are copied by us (attached: the kernel).
TEST_P(ShmPeer, RoundTripsStreamingPastTheCacheOrNever) {
  for (int64_t threshold : {1, -1}) {
    auto c = loopbackConfig();
    c->set<int64_t>("same_machine/streaming_copy_bytes", threshold);
    engine = std::make_unique<TransferEngine>(c);
    ASSERT_TRUE(engine->available());
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
    ASSERT_TRUE(engine->openSegment(seg, peer.segment).ok());
    expectRoundTripsAllSizes(*engine, seg, peer, mem, 2000 + threshold, "shm");
  }
}

// The local socket is the way in to our memory: other users cannot even connect to it.
TEST_P(ShmPeer, LocalSocketRefusesOtherUsers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::string path = shm::localSocketPath("/dev/shm", decodeInstance(peer.exported));
  pid_t child = ::fork();
  if (child == 0) {
    int fd = -1;
    bool refused = ::setgid(65534) == 0 && ::setuid(65534) == 0 && !net::connectUnix(path, 1000, fd).ok();
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "uid 65534 connected to " << path;
}

TEST_P(ShmPeer, PermissionsHold) {
  BatchID bid = engine->allocateBatch(1);
  EXPECT_EQ(engine->submitTransfer(bid, {Request{Request::WRITE, mem.data(), seg, peer.ro, 16}}).code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(engine->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, peer.local, 16}}).code(),
            Status::Code::kPermissionDenied);
  EXPECT_TRUE(engine->freeBatch(bid).ok());
  ASSERT_TRUE(runBatch(*engine, {Request{Request::READ, mem.data(), seg, peer.ro, 4096}}).ok());
  EXPECT_EQ(hashHex(mem.data(), 4096), peer.hash(peer.ro, 4096));
}

// Polls a batch (never waitTransfer) until it ends or 20 s pass.
TransferStatus pollUntilDone(TransferEngine& e, BatchID bid) {
  TransferStatus ts;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up) {
    if (!e.getTransferStatus(bid, ts).ok() || (ts.s != PENDING && ts.s != INITIAL)) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return ts;
}

// Pins the calling thread (and the threads it starts) to one CPU while in scope.
struct OneCpu {
  cpu_set_t saved{};
  OneCpu() {
    ::sched_getaffinity(0, sizeof saved, &saved);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(::sched_getcpu(), &one);
    ::sched_setaffinity(0, sizeof one, &one);
  }
  ~OneCpu() { ::sched_setaffinity(0, sizeof saved, &saved); }
};

// An engine started while this thread is pinned to one CPU: its shm transport counts one
// CPU (one copy worker, and a thread waiting for its batch holds that CPU).
std::unique_ptr<TransferEngine> oneCpuEngine(std::vector<uint8_t>& mem, const std::string& segment,
                                             SegmentID& seg) {
  OneCpu pin;
  auto e = std::make_unique<TransferEngine>(loopbackConfig());
  if (!e->registerLocalMemory(mem.data(), mem.size()).ok() || !e->openSegment(seg, segment).ok())
    return nullptr;
  return e;
}

// Large submits are queued for copy workers and for the submitting thread's waitTransfer.
// A thread that polls instead of waiting must still see them done: when it never waited,
// and right after it waited for another batch (a worker then holds back, expecting the
// thread to come back and copy) — on all CPUs and on one, where that thread holds the only
// CPU workers may use.
TEST_P(ShmPeer, QueuedBatchesCompleteForThreadsThatOnlyPoll) {
  const size_t len = 8 << 20;  // far above transports/shm/inline_bytes
  SegmentID one_cpu_seg = 0;
  auto one_cpu_engine = oneCpuEngine(mem, peer.segment, one_cpu_seg);
  ASSERT_TRUE(one_cpu_engine);
  for (TransferEngine* e : {engine.get(), one_cpu_engine.get()}) {
    SegmentID s = e == engine.get() ? seg : one_cpu_seg;
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE((e == engine.get() ? "all CPUs, round " : "one CPU, round ") + std::to_string(round));
      fillPattern(mem.data(), len, 40 + round);
      if (round > 0) {  // this thread has just waited for a batch
        ASSERT_TRUE(runBatch(*e, {Request{Request::READ, mem.data() + len, s, peer.rw, len}}).ok());
      }
      BatchID bid = e->allocateBatch(1);
      ASSERT_TRUE(e->submitTransfer(bid, {Request{Request::WRITE, mem.data(), s, peer.rw, len}}).ok());
      EXPECT_EQ(pollUntilDone(*e, bid).s, COMPLETED);
      ASSERT_TRUE(e->freeBatch(bid).ok());
      EXPECT_EQ(peer.hash(peer.rw, len), hashHex(mem.data(), len));
    }
  }
}

// On one CPU, a thread that keeps waiting for batch after batch holds that CPU; a batch that
// another thread submitted and only polls must still complete meanwhile, not after.
TEST_P(ShmPeer, BusyWaitersDoNotStarveAPollingThread) {
  const size_t len = 8 << 20;
  SegmentID s = 0;
  auto e = oneCpuEngine(mem, peer.segment, s);
  ASSERT_TRUE(e);
  std::atomic<bool> waiter_running{true}, stop{false};
  std::atomic<int> waiter_batches{0};
  std::thread waiter([&] {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!stop && std::chrono::steady_clock::now() < give_up) {
      if (!runBatch(*e, {Request{Request::WRITE, mem.data() + len, s, peer.rw + len, len}}).ok()) break;
      ++waiter_batches;
    }
    waiter_running = false;
  });
  while (waiter_batches < 3 && waiter_running) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fillPattern(mem.data(), len, 77);
  BatchID bid = e->allocateBatch(1);
  ASSERT_TRUE(e->submitTransfer(bid, {Request{Request::WRITE, mem.data(), s, peer.rw, len}}).ok());
  TransferStatus ts = pollUntilDone(*e, bid);
  const bool done_while_busy = waiter_running;
  stop = true;
  waiter.join();
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_TRUE(done_while_busy) << "the polled batch completed only after the waiting thread stopped";
  EXPECT_GT(waiter_batches.load(), 3);
  ASSERT_TRUE(e->freeBatch(bid).ok());
  EXPECT_EQ(peer.hash(peer.rw, len), hashHex(mem.data(), len));
}

// Threads that wait, threads that poll and a batch waited for by another thread than the one
// that submitted it, all at once on their own ranges: every byte arrives.
TEST_P(ShmPeer, WaitingPollingAndForeignWaitersKeepEveryByte) {
  constexpr int kThreads = 4, kRounds = 6;
  const size_t len = 4 << 20;
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      uint8_t* local = mem.data() + t * len;
      const uint64_t remote = peer.rw + t * len + 3;  // unaligned on the far side
      for (int r = 0; r < kRounds; ++r) {
        fillPattern(local, len, 100 * t + r);
        BatchID bid = engine->allocateBatch(4);
        std::vector<Request> reqs;
        for (size_t q = 0; q < 4; ++q)
          reqs.push_back(Request{Request::WRITE, local + q * (len / 4), seg, remote + q * (len / 4), len / 4});
        if (!engine->submitTransfer(bid, reqs).ok()) {
          ++failures;
          return;
        }
        TransferStatus ts;
        if (t == 0) {  // submitted here, waited for by another thread
          std::thread([&] { engine->waitTransfer(bid, ts, std::chrono::seconds(20)).IgnoreError(); }).join();
        } else if (t % 2 == 1) {
          engine->waitTransfer(bid, ts, std::chrono::seconds(20)).IgnoreError();
        } else {
          ts = pollUntilDone(*engine, bid);
        }
        if (ts.s != COMPLETED || !engine->freeBatch(bid).ok()) ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(peer.hash(peer.rw + t * len + 3, len), hashHex(mem.data() + t * len, len)) << "thread " << t;
}

// Without cross-memory attach, heap buffers are out of shm's reach: the slices move to TCP.
TEST(ShmFallback, UnsharedBufferGoesOverTcpWhenAttachIsOff) {
  PeerProcess peer;
  ASSERT_TRUE(peer.start());
  auto c = loopbackConfig();
  c->set<bool>("transports/shm/cross_memory_attach", false);
  std::vector<uint8_t> mem(4 << 20);
  TransferEngine engine(c);
  ASSERT_TRUE(engine.registerLocalMemory(mem.data(), mem.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(engine.openSegment(seg, peer.segment).ok());
  fillPattern(mem.data(), mem.size(), 31);
  Status st = runBatch(engine, {Request{Request::WRITE, mem.data(), seg, peer.rw, mem.size()}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(peer.hash(peer.rw, mem.size()), hashHex(mem.data(), mem.size()));
  // Pinned to shm it cannot be served, and says so.
  TransferStatus ts;
  EXPECT_FALSE(runBatch(engine, {Request{Request::WRITE, mem.data(), seg, peer.rw, 4096, "shm"}},
                        std::chrono::seconds(5), &ts).ok());
}

// Two engines in this process; b's memory comes from allocateLocalMemory.
class ShmInProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    a = std::make_unique<TransferEngine>(loopbackConfig());
    b = std::make_unique<TransferEngine>(loopbackConfig());
    local.resize(1 << 20);
    ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
    ASSERT_TRUE(b->allocateLocalMemory(&shared, 1 << 20).ok());
    ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
  }
  std::vector<uint8_t> local;
  std::unique_ptr<TransferEngine> a, b;
  void* shared = nullptr;
  SegmentID seg = 0;
};

TEST_F(ShmInProcess, FreedBufferIsRefusedAtSubmitWithoutAMiss) {
  fillPattern(local.data(), 4096, 5);
  auto target = reinterpret_cast<uint64_t>(shared);
  ASSERT_TRUE(runBatch(*a, {Request{Request::WRITE, local.data(), seg, target, 4096}}).ok());
  EXPECT_EQ(std::memcmp(shared, local.data(), 4096), 0);
  ASSERT_TRUE(b->freeLocalMemory(shared).ok());  // still in a's cached descriptor
  BatchID bid = a->allocateBatch(1);
  Status st = a->submitTransfer(bid, {Request{Request::WRITE, local.data(), seg, target, 4096}});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(ShmInProcess, LocalOnlyMemoryIsNeverOffered) {
  void* mine = nullptr;
  MemoryOptions local_only{kWildcardLocation, kLocalReadWrite};
  ASSERT_TRUE(b->allocateLocalMemory(&mine, 4096, local_only).ok());
  for (const auto& buf : localDescriptor(*b).buffers) {
    if (buf.base == reinterpret_cast<uint64_t>(mine)) {
      EXPECT_EQ(buf.attrs.count("shm"), 0u);
    }
    if (buf.base == reinterpret_cast<uint64_t>(shared)) {
      EXPECT_EQ(buf.attrs.count("shm"), 1u);
    }
  }
  EXPECT_TRUE(b->freeLocalMemory(mine).ok());
}

// A read-only descriptor maps read-only, and nothing makes it writable: the kernel holds
// the line a peer's read-only buffer draws.
TEST(ShmFile, ReadOnlyDescriptorMapsReadOnly) {
  TempDir dir;
  void* p = nullptr;
  ASSERT_TRUE(shm::create(dir.path(), "ferry.t.0", 4096, &p).ok());
  int fd = -1;
  ASSERT_TRUE(shm::openForPeer(dir.path(), "ferry.t.0", false, fd).ok());
  shm::Mapping rw;
  EXPECT_FALSE(rw.map(fd, true).ok());  // PROT_WRITE over an O_RDONLY descriptor: refused
  shm::Mapping ro;
  ASSERT_TRUE(ro.map(fd, false).ok());
  ::close(fd);
  pid_t child = ::fork();
  if (child == 0) {
    ::signal(SIGSEGV, SIG_DFL);  // die of the fault itself, not of a sanitizer's report
    ro.base()[0] = 1;            // must fault
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << status;
  shm::destroy(dir.path(), "ferry.t.0", p, 4096);
}

// A claimed instance id becomes part of a path only when it is a plain name.
TEST(ShmFile, OnlyPlainInstanceIdsMakePaths) {
  EXPECT_TRUE(shm::validInstance("9f2c00aa12345678"));
  const std::vector<std::string> bad_ids = {"", "../x", "a/b", "a.b", std::string(65, 'a'), std::string("a\0b", 3)};
  for (const std::string& bad : bad_ids)
    EXPECT_FALSE(shm::validInstance(bad)) << bad;
}

// A full directory is an error at allocation, never a SIGBUS at first touch.
TEST(ShmFile, SpaceIsReservedUpFront) {
  TempDir dir;
  // A 1 MiB tmpfs of our own would need a mount; the file system's own limit serves: ask
  // for more than any machine has.
  void* p = nullptr;
  Status st = shm::create(dir.path(), "ferry.t.big", size_t{1} << 50, &p);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot reserve"), std::string::npos) << st.ToString();
}

std::vector<std::string> filesOf(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

// Liveness is the instance's lock, not a pid: a stopped instance's files go, a live one's
// stay — whoever sweeps, from whatever pid namespace (tests/security: PidNamespaceSweep).
TEST(ShmFile, FilesOfStoppedInstancesAreSweptByTheirLock) {
  TempDir dir;
  pid_t child = ::fork();
  if (child == 0) {
    std::unique_ptr<shm::InstanceDir> mine;
    void* p = nullptr;
    bool ok = shm::InstanceDir::open(dir.path(), "deadbeef00000001", mine).ok() &&
              shm::create(dir.path(), mine->prefix() + "0", 4096, &p).ok();
    ::_exit(ok ? 0 : 1);  // exits without removing anything (a crash)
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::unique_ptr<shm::InstanceDir> live;
  ASSERT_TRUE(shm::InstanceDir::open(dir.path(), "deadbeef00000002", live).ok());  // sweeps first
  EXPECT_TRUE(filesOf(dir.path(), "ferry.deadbeef00000001.").empty());
  void* p = nullptr;
  ASSERT_TRUE(shm::create(dir.path(), live->prefix() + "0", 4096, &p).ok());
  EXPECT_EQ(shm::sweepStale(dir.path()), 0);  // its lock is held: nothing of it goes
  EXPECT_EQ(filesOf(dir.path(), live->prefix()).size(), 2u);
  ::munmap(p, 4096);
  live.reset();  // a clean stop removes its own
  EXPECT_TRUE(filesOf(dir.path(), "ferry.deadbeef00000002.").empty());
}

}  // namespace ferry::test

namespace ferry::test {

// The beacon of a same-machine peer: a changed registry sends us to refresh first, and a
// descriptor re-read for the retry passes only if it is no older than what the beacon said
// (a metadata store lagging behind must not hand back a buffer the peer already removed).
TEST(Beacon, RefreshedDescriptorMustBeAtLeastAsNewAsTheLiveVersion) {
  PeerEndpoint peer;
  auto desc = std::make_shared<SegmentDescriptor>();
  desc->name = "peer";
  desc->version = 5;
  peer.desc = desc;
  uint64_t reported = 0;
  EXPECT_TRUE(checkLiveVersion(peer, 5, true, reported).ok());
  // The peer registered or removed something.
  EXPECT_TRUE(checkLiveVersion(peer, 7, true, reported).IsUnavailable());
  EXPECT_EQ(reported, 7u);
  auto lagging = std::make_shared<SegmentDescriptor>(*desc);
  lagging->version = 6;  // what a lagging store might still hold
  peer.desc = lagging;
  peer.just_refreshed = true;
  peer.refreshed_over = 7;  // what the engine knew before it re-read the descriptor
  EXPECT_TRUE(checkLiveVersion(peer, 7, true, reported).IsUnavailable());
  auto current = std::make_shared<SegmentDescriptor>(*desc);
  current->version = 7;
  peer.desc = current;
  // Churn: it moved on again meanwhile; the re-read one still passes once.
  EXPECT_TRUE(checkLiveVersion(peer, 8, true, reported).ok());
  peer.just_refreshed = false;
  EXPECT_TRUE(checkLiveVersion(peer, 8, true, reported).IsUnavailable());
  reported = 0;
  EXPECT_TRUE(checkLiveVersion(peer, shm::kEngineGone, true, reported).IsUnavailable());
  EXPECT_EQ(reported, kPeerGone);  // a restart is someone new: refresh
  reported = 0;
  EXPECT_TRUE(checkLiveVersion(peer, 7, false, reported).IsUnavailable());  // killed: no "gone" in its beacon
  EXPECT_EQ(reported, kPeerGone);
}

}  // namespace ferry::test
