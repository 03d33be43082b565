// Engines that find each other through a metadata service (the real ferry-metadata, etcd or
// redis-server, or one hosted in an engine), including the service going away and back.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <atomic>
#include <thread>

#include "metadata/metadata_store.h"
#include "metadata_service.h"
#include "test_util.h"

namespace ferry::test {

using Clock = std::chrono::steady_clock;

// A real metadata service per test (tests/common/metadata_service.h).
class MetadataBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { startServer(0); }
  void TearDown() override { service.reset(); }

  void startServer(uint16_t port) {
    if (!service) service = std::make_unique<MetadataService>(GetParam());
    Status st = service->start(port);
    ASSERT_TRUE(st.ok()) << st.ToString();
    url = service->url();
    server_port = service->port();
  }
  void stopServer() { service->stop(); }
  std::unique_ptr<MetadataStore> store(int64_t lease_ttl_s = 10) { return service->client(lease_ttl_s); }
  std::shared_ptr<Config> config(const std::string& name, const std::string& meta_url = "") {
    auto c = loopbackConfig(5000);
    service->configure(*c, name, meta_url);
    return c;
  }
  // 200 when the segment's key is present, 404 when absent, -1 when the store is down.
  int keyStatus(const std::string& name) {
    std::string v;
    Status st = store()->get(segmentKey("default", name), v);
    return st.ok() ? 200 : (st.IsNotFound() ? 404 : -1);
  }
  std::unique_ptr<MetadataService> service;
  uint16_t server_port = 0;
  std::string url;
};

INSTANTIATE_TEST_SUITE_P(Backends, MetadataBackend, ::testing::Values("http", "etcd", "redis"),
                         [](const auto& info) { return info.param; });

TEST_P(MetadataBackend, EnginesFindEachOtherByName) {
  TransferEngine a(config("prefill-0")), b(config("decode-0"));
  ASSERT_TRUE(a.available()) << a.initStatus().ToString();
  ASSERT_TRUE(b.available()) << b.initStatus().ToString();
  EXPECT_EQ(b.getSegmentName(), "decode-0");
  std::vector<uint8_t> src(1 << 20), dst(1 << 20);
  fillPattern(src.data(), src.size(), 1);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(a.openSegment(seg, "decode-0").ok());
  ASSERT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), src.size()}}).ok());
  EXPECT_EQ(src, dst);
  // A buffer registered later is published and found on a miss.
  std::vector<uint8_t> later(4096);
  ASSERT_TRUE(b.registerLocalMemory(later.data(), later.size()).ok());
  ASSERT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(later.data()), 4096}}).ok());
  EXPECT_EQ(std::memcmp(later.data(), src.data(), 4096), 0);
  EXPECT_TRUE(a.openSegment(seg, "nobody").IsNotFound());
}

// The engine's keeper thread must not swallow the wake-up meant for the notification worker.
TEST_P(MetadataBackend, BatchNotificationsArrivePromptly) {
  TransferEngine a(config("notifier")), b(config("listener"));
  ASSERT_TRUE(a.available() && b.available());
  std::vector<uint8_t> src(4096, 1), dst(4096);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(a.openSegment(seg, "listener").ok());
  for (int i = 0; i < 20; ++i) {
    BatchID bid = a.allocateBatch(1);
    ASSERT_TRUE(a.submitTransfer(bid, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096}},
                                 Notification{"a", std::to_string(i)}).ok());
    TransferStatus ts;
    ASSERT_TRUE(a.waitTransfer(bid, ts, std::chrono::seconds(5)).ok());
    ASSERT_TRUE(a.freeBatch(bid).ok());
    auto got = awaitNotifications(b, 1, std::chrono::seconds(1));
    ASSERT_EQ(got.size(), 1u) << "notification " << i << " did not arrive within 1 s";
    EXPECT_EQ(got[0].msg, std::to_string(i));
  }
}

// One writer puts our descriptor: while four threads register and unregister at once, the
// version a reader finds in the store never goes back, and once they are done the store
// holds the engine's last version (every registration returns after its own is published).
TEST_P(MetadataBackend, PublishedVersionsOnlyMoveForward) {
  TransferEngine a(config("churner"));
  ASSERT_TRUE(a.available()) << a.initStatus().ToString();
  auto reader = store();
  std::atomic<bool> done{false};
  std::atomic<int> went_back{0};
  std::atomic<int> reads{0};
  auto version_in_store = [&](uint64_t& v) {
    std::string text;
    SegmentDescriptor d;
    if (!reader->get(segmentKey("default", "churner"), text).ok() || !SegmentDescriptor::fromJson(text, d).ok())
      return false;
    v = d.version;
    return true;
  };
  std::thread watcher([&] {
    uint64_t last = 0, v = 0;
    while (!done.load()) {
      if (!version_in_store(v)) continue;
      if (v < last) ++went_back;
      last = std::max(last, v);
      ++reads;
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&, t] {
      std::vector<uint8_t> buf(4096);
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(a.registerLocalMemory(buf.data(), buf.size()).ok()) << t;
        EXPECT_TRUE(a.unregisterLocalMemory(buf.data()).ok()) << t;
      }
    });
  for (auto& w : workers) w.join();
  done = true;
  watcher.join();
  EXPECT_EQ(went_back.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 0);
  uint64_t final_version = 0;
  ASSERT_TRUE(version_in_store(final_version));
  EXPECT_EQ(final_version, localDescriptor(a).version);
}

TEST_P(MetadataBackend, CleanShutdownRemovesTheEntry) {
  {
    TransferEngine a(config("short-lived"));
    ASSERT_TRUE(a.available());
    EXPECT_EQ(keyStatus("short-lived"), 200);
  }
  EXPECT_EQ(keyStatus("short-lived"), 404);
}

TEST_P(MetadataBackend, UnreachableAtStartFailsFast) {
  auto t0 = Clock::now();
  std::string dead = GetParam() == "http" ? "http://127.0.0.1:" + std::to_string(freePort()) + "/metadata"
                                         : GetParam() + "://127.0.0.1:" + std::to_string(freePort());
  TransferEngine a(config("x", dead));
  EXPECT_FALSE(a.available());
  EXPECT_NE(a.initStatus().message().find("cannot publish"), std::string::npos) << a.initStatus().ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST_P(MetadataBackend, StoreDownLaterThenBack) {
  TransferEngine a(config("a")), b(config("b"));
  ASSERT_TRUE(a.available() && b.available());
  std::vector<uint8_t> src(65536), dst(65536);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(a.openSegment(seg, "b").ok());
  stopServer();
  // Open segments keep transferring; new opens fail clearly.
  EXPECT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 65536}}).ok());
  SegmentID other;
  auto t0 = Clock::now();
  Status st = a.openSegment(other, "a-new-peer");
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  // A registration change while the store is down is published once it is back.
  std::vector<uint8_t> extra(4096);
  ASSERT_TRUE(b.registerLocalMemory(extra.data(), extra.size()).ok());
  startServer(server_port);  // empty store, same address
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (keyStatus("b") != 200 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(keyStatus("b"), 200);
  TransferEngine c(config("c"));
  ASSERT_TRUE(c.available());
  std::vector<uint8_t> mine(4096, 7);
  ASSERT_TRUE(c.registerLocalMemory(mine.data(), mine.size()).ok());
  ASSERT_TRUE(c.openSegment(other, "b").ok());
  ASSERT_TRUE(runBatch(c, {Request{Request::WRITE, mine.data(), other, reinterpret_cast<uint64_t>(extra.data()), 4096}}).ok());
  EXPECT_EQ(extra[100], 7);
}

TEST_P(MetadataBackend, PeerRestartedElsewhereUnderTheSameName) {
  TransferEngine a(config("a"));
  ASSERT_TRUE(a.available());
  std::vector<uint8_t> src(4096, 3);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  SegmentID seg;
  {
    TransferEngine b(config("b"));
    std::vector<uint8_t> dst(4096);
    ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
    ASSERT_TRUE(a.openSegment(seg, "b").ok());
    ASSERT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096}}).ok());
  }
  TransferEngine b2(config("b"));  // another port, other buffers
  ASSERT_TRUE(b2.available());
  std::vector<uint8_t> dst2(8192);
  ASSERT_TRUE(b2.registerLocalMemory(dst2.data(), dst2.size()).ok());
  Status st = runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst2.data()), 4096}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(dst2[0], 3);
}

// Same buffers at the same addresses, another port: nothing misses in the cached descriptor,
// so it is the unreachable old endpoint that sends us back to the store.
TEST_P(MetadataBackend, PeerRestartedElsewhereWithTheSameAddresses) {
  TransferEngine a(config("a"));
  ASSERT_TRUE(a.available());
  std::vector<uint8_t> src(4096, 5), dst(4096);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  SegmentID seg;
  {
    TransferEngine b(config("b"));
    ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
    ASSERT_TRUE(a.openSegment(seg, "b").ok());
    ASSERT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096}}).ok());
  }
  std::fill(dst.begin(), dst.end(), 0);
  TransferEngine b2(config("b"));
  ASSERT_TRUE(b2.available());
  ASSERT_TRUE(b2.registerLocalMemory(dst.data(), dst.size()).ok());
  Status st = runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(dst[4095], 5);
}

TEST_P(MetadataBackend, FerryBenchLoopbackThroughTheService) {
  ChildProcess bench;
  ASSERT_TRUE(bench.start({binPath("ferry-bench"), "--mode=loopback", "--metadata_server=" + url,
                           "--duration=0.5", "--buffer_size=16M", "--block_size=65536",
                           "--batch_size=16", "--verify", "--json"}));
  std::string line, last;
  while (!(line = bench.readLine(std::chrono::seconds(60))).empty()) last = line;
  EXPECT_NE(last.find("\"verified\":true"), std::string::npos) << last;
  EXPECT_EQ(bench.wait(), 0);
}

// Backends whose entries carry a TTL (etcd lease, Redis EXPIRE); the HTTP protocol has none.
class TtlBackend : public MetadataBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, TtlBackend, ::testing::Values("etcd", "redis"),
                         [](const auto& info) { return info.param; });

TEST_P(TtlBackend, KeepAliveRenewsTheLiveEntry) {
  auto s = store(2);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->put("ferry/test/k", "v").ok());
  for (int i = 0; i < 4; ++i) {  // 4 s > 2 s TTL: only renewals keep it
    std::this_thread::sleep_for(std::chrono::milliseconds(s->keepAliveIntervalMs()));
    Status st = s->keepAlive();
    ASSERT_TRUE(st.ok()) << "round " << i << ": " << st.ToString();  // not "expired"
  }
  std::string v;
  EXPECT_TRUE(s->get("ferry/test/k", v).ok());
  EXPECT_EQ(v, "v");
}

TEST_P(TtlBackend, CrashedEngineEntryExpires) {
  ::setenv("FERRY_CONF", R"({"metadata": {"lease_ttl_s": 2}})", 1);
  ChildProcess target;
  bool started = target.start({binPath("ferry-bench"), "--mode=target", "--local_server_name=127.0.0.1:0",
                               "--buffer_size=1M", "--metadata_server=" + url, "--segment_name=doomed"});
  ::unsetenv("FERRY_CONF");
  ASSERT_TRUE(started);
  ASSERT_EQ(target.readLine().rfind("SEGMENT doomed", 0), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past one TTL: kept alive
  EXPECT_EQ(keyStatus("doomed"), 200);
  target.signal(SIGKILL);
  target.wait();
  auto deadline = Clock::now() + std::chrono::seconds(8);
  while (keyStatus("doomed") == 200 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(keyStatus("doomed"), 404);
}

TEST(EmbeddedMetadata, EngineHostsTheService) {
  uint16_t port = freePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metadata";
  auto ca = loopbackConfig();
  ca->set("metadata/embedded_server", "127.0.0.1:" + std::to_string(port));
  ca->set("metadata/type", "http");
  ca->set("metadata/servers", url);
  ca->set("local_segment_name", "host-node");
  TransferEngine a(ca);
  ASSERT_TRUE(a.available()) << a.initStatus().ToString();
  auto cb = loopbackConfig();
  cb->set("metadata/type", "http");
  cb->set("metadata/servers", url);
  cb->set("local_segment_name", "guest");
  TransferEngine b(cb);
  ASSERT_TRUE(b.available()) << b.initStatus().ToString();
  std::vector<uint8_t> buf(4096, 9), dst(4096);
  ASSERT_TRUE(b.registerLocalMemory(buf.data(), buf.size()).ok());
  ASSERT_TRUE(a.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(b.openSegment(seg, "host-node").ok());
  ASSERT_TRUE(runBatch(b, {Request{Request::WRITE, buf.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096}}).ok());
  EXPECT_EQ(dst[4095], 9);
}

}  // namespace ferry::test
