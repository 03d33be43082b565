// The nvlink transport between this process and a ferry-test-peer process, both over the
// fake CUDA driver (tests/common/fake_cuda.h): device memory is inaccessible to the host, so
// only driver copies through IPC mappings move these bytes, and every byte is checked by the
// peer's own hash.
#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "../integration/peer_process.h"
#include "fake_cuda.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "model/segment_descriptor.h"
#include "transport/nvlink/ipc_cache.h"
#include "common/base64.h"
#include "test_util.h"

namespace ferry {
namespace {

std::shared_ptr<Config> nvlinkConfig() {
  auto c = test::loopbackConfig(10000);
  c->set("cuda/provider", "fake");
  // tcp slices of 2 MiB: eight GPU pieces each (cuda::kPieceBytes), more than the ring holds.
  c->set<int64_t>("transports/tcp/slice_size", 2 << 20);
  return c;
}

// The peer's descriptor as it exported it (exportLocalSegment).
SegmentDescriptor peerDescriptor(const test::PeerProcess& peer) {
  const std::string prefix = "ferry-segment:v1:";
  std::string json;
  SegmentDescriptor d;
  if (peer.exported.rfind(prefix, 0) == 0 && base64Decode(peer.exported.substr(prefix.size()), json))
    SegmentDescriptor::fromJson(json, d).IgnoreError();
  return d;
}

uint64_t mappedNow(TransferEngine& e) {
  auto j = nlohmann::json::parse(ext::inspectTransports(e), nullptr, false);
  if (!j.is_object() || !j.contains("nvlink")) return UINT64_MAX;
  auto n = j["nvlink"];
  if (n.is_string()) n = nlohmann::json::parse(n.get<std::string>(), nullptr, false);
  return n.value("peer_allocations_mapped", UINT64_MAX);
}

class Nvlink : public ::testing::Test {
 protected:
  static constexpr size_t kPeerBytes = 16 << 20;
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // a peer a test stopped itself is told to quit again
    test::installFakeCuda(2);
    peer.gpu = true;
    ASSERT_TRUE(peer.start(0, kPeerBytes));
    engine = std::make_unique<TransferEngine>(nvlinkConfig());
    ASSERT_TRUE(engine->available()) << engine->initStatus().ToString();
    ASSERT_TRUE(engine->allocateLocalMemory(&gpu, kPeerBytes, "cuda:1").ok());
    host.resize(kPeerBytes);
    ASSERT_TRUE(engine->registerLocalMemory(host.data(), host.size()).ok());
    ASSERT_TRUE(engine->openSegment(seg, peer.segment).ok());
  }
  void TearDown() override {
    engine.reset();
    peer.command("quit");
  }
  std::string gpuHash(uint64_t addr, size_t len) {
    std::vector<uint8_t> bytes(len);
    test::fakeCudaRead(addr, bytes.data(), len);
    return test::hashHex(bytes.data(), len);
  }

  test::PeerProcess peer;
  std::unique_ptr<TransferEngine> engine;
  void* gpu = nullptr;
  std::vector<uint8_t> host;
  SegmentID seg = 0;
};

TEST_F(Nvlink, RandomRequestsBetweenGpusAndFromHostAreByteExact) {
  test::setFakeCudaCopyDelay(50);  // copies finish out of step with their submits
  std::mt19937_64 rng(7);
  const auto g = reinterpret_cast<uint64_t>(gpu);
  const uint64_t copies_before = test::fakeCudaStats().async_copies;
  for (int round = 0; round < 40; ++round) {
    const size_t len = 1 + rng() % (1 << 20);
    const size_t off = rng() % (kPeerBytes - len);
    const bool from_gpu = round % 2 == 0;
    std::vector<uint8_t> pattern(len);
    test::fillPattern(pattern.data(), len, round);
    uint8_t* src = from_gpu ? static_cast<uint8_t*>(gpu) + off : host.data() + off;
    if (from_gpu)
      test::fakeCudaWrite(g + off, pattern.data(), len);
    else
      std::memcpy(src, pattern.data(), len);
    const uint64_t target = peer.rw + (rng() % (kPeerBytes - len));
    ASSERT_TRUE(test::runBatch(*engine, {{Request::WRITE, src, seg, target, len}}).ok()) << round;
    EXPECT_EQ(peer.hash(target, len), test::hashHex(pattern.data(), len)) << round;
    // And back, into the other kind of local memory.
    if (from_gpu) {
      ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, host.data() + off, seg, target, len}}).ok());
      EXPECT_EQ(std::memcmp(host.data() + off, pattern.data(), len), 0) << round;
    } else {
      ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu) + off, seg, target, len}}).ok());
      EXPECT_EQ(gpuHash(g + off, len), test::hashHex(pattern.data(), len)) << round;
    }
  }
  test::setFakeCudaCopyDelay(0);
  EXPECT_GE(test::fakeCudaStats().async_copies, copies_before + 80) << "the copies went through the driver's streams";
  EXPECT_EQ(mappedNow(*engine), 1u) << "the peer's allocation is opened once and kept";
}

TEST_F(Nvlink, ManyRequestsInOneBatchCompleteTogether) {
  std::vector<Request> reqs;
  for (size_t i = 0; i < 64; ++i) {
    test::fillPattern(host.data() + i * 65536, 65536, 100 + i);
    reqs.push_back({Request::WRITE, host.data() + i * 65536, seg, peer.rw + i * 65536, 65536});
  }
  ASSERT_TRUE(test::runBatch(*engine, reqs).ok());
  EXPECT_EQ(peer.hash(peer.rw, 64 * 65536), test::hashHex(host.data(), 64 * 65536));
}

TEST_F(Nvlink, ReadOnlyAndLocalOnlyGpuBuffersAreNotExported) {
  // A legacy IPC mapping is always writable: such buffers are not offered over nvlink at all
  // (tcp, whose target checks, reaches the read-only one: TcpStagesGpuMemoryAtBothEnds).
  for (uint64_t target : {peer.ro, peer.local}) {
    Status st = test::runBatch(*engine, {{Request::WRITE, host.data(), seg, target, 4096, "nvlink"}});
    EXPECT_FALSE(st.ok());
  }
  SegmentDescriptor d = peerDescriptor(peer);
  ASSERT_EQ(d.buffers.size(), 3u);
  for (const auto& b : d.buffers) {
    EXPECT_EQ(b.location, "cuda:0");
    EXPECT_EQ(b.attrs.count("nvlink"), b.perm == kGlobalReadWrite ? 1u : 0u) << b.base;
  }
}

TEST_F(Nvlink, AForgedDescriptorCannotWidenTheExport) {
  // The descriptor an importer is handed is a claim: double the read-write buffer's length.
  // nvlink takes bounds from the peer's own descriptor (over the local channel) and from the
  // mapped range, so the write past the real end is refused, not made.
  SegmentDescriptor d = peerDescriptor(peer);
  ASSERT_FALSE(d.buffers.empty());
  for (auto& b : d.buffers)
    if (b.base == peer.rw) b.length *= 2;
  SegmentID forged = 0;
  ASSERT_TRUE(engine->importRemoteSegment(forged, "ferry-segment:v1:" + base64Encode(d.toJson())).ok());
  Request r{Request::WRITE, host.data(), forged, peer.rw + kPeerBytes, 4096, "nvlink"};
  EXPECT_FALSE(test::runBatch(*engine, {r}).ok());
  EXPECT_EQ(peer.hash(peer.rw, 4096), peer.hash(peer.rw, 4096));  // the peer is alive and well
}

TEST_F(Nvlink, APeerRestartDropsItsMappings) {
  ASSERT_TRUE(test::runBatch(*engine, {{Request::WRITE, host.data(), seg, peer.rw, 4096}}).ok());
  EXPECT_EQ(mappedNow(*engine), 1u);
  ASSERT_TRUE(engine->closeSegment(seg).ok());
  EXPECT_EQ(mappedNow(*engine), 0u) << "closing the segment closes what was opened for it";
  peer.command("quit");
  peer.proc.wait();
  test::PeerProcess again;
  again.gpu = true;
  ASSERT_TRUE(again.start(0, kPeerBytes));
  SegmentID s2 = 0;
  ASSERT_TRUE(engine->openSegment(s2, again.segment).ok());
  test::fillPattern(host.data(), 8192, 42);
  ASSERT_TRUE(test::runBatch(*engine, {{Request::WRITE, host.data(), s2, again.rw, 8192}}).ok());
  EXPECT_EQ(again.hash(again.rw, 8192), test::hashHex(host.data(), 8192));
  again.command("quit");
}

TEST_F(Nvlink, TcpStagesGpuMemoryAtBothEnds) {
  // Pinned to tcp (as between machines), and unpinned where nvlink cannot serve (the peer's
  // host memory, its read-only GPU buffer): GPU bytes go through host staging, and a write
  // is acknowledged once they are in the target's GPU memory.
  std::mt19937_64 rng(3);
  const auto g = reinterpret_cast<uint64_t>(gpu);
  for (int round = 0; round < 12; ++round) {
    // Pieces' copies lagging behind the socket: ours (rounds 1, 3, ...) and the peer's target (2, 6, ...).
    test::setFakeCudaCopyDelay(round % 2 ? 300 : 0);
    if (round % 4 == 2 || round % 4 == 3) peer.command(round % 4 == 2 ? "copy_delay 300" : "copy_delay 0");
    const size_t len = 1 + rng() % (3 << 20);
    const uint64_t off = rng() % (kPeerBytes - len), target = peer.rw + rng() % (kPeerBytes - len);
    std::vector<uint8_t> pattern(len), seen(len);
    test::fillPattern(pattern.data(), len, 500 + round);
    test::fakeCudaWrite(g + off, pattern.data(), len);
    ASSERT_TRUE(test::runBatch(*engine, {{Request::WRITE, static_cast<uint8_t*>(gpu) + off, seg, target, len, "tcp"}}).ok());
    EXPECT_EQ(peer.hash(target, len), test::hashHex(pattern.data(), len)) << round;
    test::fakeCudaWrite(g + off, std::vector<uint8_t>(len).data(), len);
    ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu) + off, seg, target, len, "tcp"}}).ok());
    test::fakeCudaRead(g + off, seen.data(), len);
    EXPECT_EQ(seen, pattern) << round;
  }
  test::setFakeCudaCopyDelay(0);
  // The peer's read-only GPU buffer: readable through its target's staging, never writable.
  std::vector<uint8_t> ro_bytes(4096);
  ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, host.data(), seg, peer.ro, 4096}}).ok());
  EXPECT_EQ(test::hashHex(host.data(), 4096), peer.hash(peer.ro, 4096));
  TransferStatus ts;
  EXPECT_FALSE(test::runBatch(*engine, {{Request::WRITE, host.data(), seg, peer.ro, 4096, "tcp"}},
                              std::chrono::seconds(10), &ts).ok());
  EXPECT_NE(ts.s, COMPLETED);  // refused before it was sent: the descriptor says read-only
  // Our staging buffers were page-locked (DMA-speed copies), and are released with the engine.
  EXPECT_GT(test::fakeCudaStats().live_pinned_bytes, 0u);
  engine.reset();
  EXPECT_EQ(test::fakeCudaStats().live_pinned_bytes, 0u);
}

TEST_F(Nvlink, ARefusedGpuCopyFailsItsSliceOrMovesItAndTheConnectionCarriesOn) {
  // tcp moves GPU bytes in pieces: a 2 MiB slice is eight, four copied out ahead (the ring),
  // so the fifth copy call and later come after the frame has begun.
  const auto g = reinterpret_cast<uint64_t>(gpu);
  const size_t len = 2 << 20;
  std::vector<uint8_t> pattern(len), seen(len);
  auto write = [&](int seed) {
    test::fillPattern(pattern.data(), len, seed);
    test::fakeCudaWrite(g, pattern.data(), len);
    TransferStatus ts;
    Status st = test::runBatch(*engine, {{Request::WRITE, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}},
                               std::chrono::seconds(10), &ts);
    return st.ok() ? Status::OK() : Status(st.code(), st.message() + " / " + ToString(ts.s));
  };
  ASSERT_TRUE(write(1).ok());
  // The first piece cannot be copied out: nothing was sent, that slice alone fails (pinned to
  // tcp: no other transport), and the connection serves the next one.
  test::setFakeCudaRefuseCopy(0);
  EXPECT_FALSE(write(2).ok());
  ASSERT_TRUE(write(3).ok());
  EXPECT_EQ(peer.hash(peer.rw, len), test::hashHex(pattern.data(), len));
  // A later piece cannot: the frame was begun and cannot be finished, so the connection
  // ends and its slice is re-posted on another one: the write still lands whole.
  test::setFakeCudaRefuseCopy(5);
  ASSERT_TRUE(write(4).ok());
  EXPECT_EQ(peer.hash(peer.rw, len), test::hashHex(pattern.data(), len));
  // Reading into our GPU memory: a refused copy in fails the read; the stream was still read
  // to its end, so the connection carries the next read.
  test::setFakeCudaRefuseCopy(1);
  TransferStatus ts;
  EXPECT_FALSE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}},
                              std::chrono::seconds(10), &ts).ok());
  EXPECT_EQ(ts.s, FAILED);
  test::fakeCudaWrite(g, std::vector<uint8_t>(len).data(), len);
  ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}}).ok());
  test::fakeCudaRead(g, seen.data(), len);
  EXPECT_EQ(seen, pattern);
  // The target's copy into its GPU memory refused: the write is answered with the error (not
  // acknowledged), and the target serves the next one.
  peer.command("refuse_copy 1");
  EXPECT_FALSE(write(5).ok());
  ASSERT_TRUE(write(6).ok());
  EXPECT_EQ(peer.hash(peer.rw, len), test::hashHex(pattern.data(), len));
  // The target's copy out of its GPU memory refused at the first piece: the read is refused.
  peer.command("refuse_copy 0");
  EXPECT_FALSE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}},
                              std::chrono::seconds(10), &ts).ok());
  ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}}).ok());
  test::fakeCudaRead(g, seen.data(), len);
  EXPECT_EQ(seen, pattern);
  // ... and mid-payload: the target closes the connection; the read is re-posted and lands whole.
  peer.command("refuse_copy 5");
  test::fakeCudaWrite(g, std::vector<uint8_t>(len).data(), len);
  ASSERT_TRUE(test::runBatch(*engine, {{Request::READ, static_cast<uint8_t*>(gpu), seg, peer.rw, len, "tcp"}}).ok());
  test::fakeCudaRead(g, seen.data(), len);
  EXPECT_EQ(seen, pattern);
}

TEST_F(Nvlink, StoppingWithCopiesInFlightCompletesThemAll) {
  test::setFakeCudaCopyDelay(2000);
  BatchID b = engine->allocateBatch(32);
  std::vector<Request> reqs;
  for (size_t i = 0; i < 32; ++i) reqs.push_back({Request::WRITE, host.data() + i * 4096, seg, peer.rw + i * 4096, 4096});
  ASSERT_TRUE(engine->submitTransfer(b, reqs).ok());
  engine.reset();  // stop() waits for the streams: no slice left behind, no copy into freed state
  test::setFakeCudaCopyDelay(0);
  EXPECT_EQ(test::fakeCudaStats().live_streams, 0);
}

// The driver maps an allocation once per process: a mapping let go by one thread is closed
// by it outside the cache's lock, and another thread opening the same allocation meanwhile
// must wait for that close, not be refused (ALREADY_MAPPED) and send its copy elsewhere.
TEST(IpcCache, AnOpenWaitsForTheCloseOfAMappingJustLetGo) {
  test::installFakeCuda(1);
  std::shared_ptr<const cuda::DriverApi> api;
  ASSERT_TRUE(cuda::loadDriver("fake", api).ok());
  const uint64_t alloc = test::fakeCudaAlloc(0, 1 << 20);
  ASSERT_NE(alloc, 0u);
  const cuda::IpcHandle handle = test::fakeCudaForeignHandle(alloc);
  auto& cache = nvlink::IpcCache::instance();
  const size_t open_before = cache.openCount();
  std::shared_ptr<const nvlink::IpcMapping> first, second;
  ASSERT_TRUE(cache.open(api, 0, "exporter-a", alloc, 7, handle, first).ok());
  test::setFakeCudaCloseDelay(200'000);  // the next close takes 200 ms
  std::thread letting_go([&] { first.reset(); });
  while (test::fakeCudaStats().live_ipc_mappings > 0 && cache.openCount() > open_before)
    std::this_thread::yield();  // until the last holder has let go: its close is under way
  Status st = cache.open(api, 0, "exporter-a", alloc, 7, handle, second);
  letting_go.join();
  test::setFakeCudaCloseDelay(0);
  EXPECT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(second);
  EXPECT_NE(second->base(), 0u);
  EXPECT_EQ(test::fakeCudaStats().live_ipc_mappings, 1);
  second.reset();
  EXPECT_EQ(test::fakeCudaStats().live_ipc_mappings, 0);
  EXPECT_EQ(cache.openCount(), open_before);
  test::fakeCudaFree(alloc);
}

}  // namespace
}  // namespace ferry
