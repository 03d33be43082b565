// Engines that find each other through the HTTP metadata service (the real ferry-metadata
// binary, or one hosted in an engine), including the service going away and coming back.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/http.h"
#include "common/net.h"
#include "metadata/metadata_store.h"
#include <sys/stat.h>
#include "test_util.h"

namespace ferry::test {

using Clock = std::chrono::steady_clock;

uint16_t freePort() {
  int fd;
  uint16_t port = 0;
  EXPECT_TRUE(net::listenTcp("127.0.0.1", 0, fd, port).ok());
  ::close(fd);
  return port;
}

// A real metadata service on a free port of 127.0.0.1: ferry-metadata, etcd or
// redis-server, each with its own temporary directory, stopped by pid.
class MetadataBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { startServer(freePort()); }
  void TearDown() override { server.reset(); }

  void startServer(uint16_t port) {
    const std::string& kind = GetParam();
    std::string dir = ::testing::TempDir() + "/ferry_meta_" + std::to_string(::getpid()) + "_" +
                      std::to_string(port) + "_" + std::to_string(++starts_);
    std::vector<std::string> argv;
    if (kind == "http") {
      argv = {binPath("ferry-metadata"), "--host=127.0.0.1", "--port=" + std::to_string(port)};
      url = "http://127.0.0.1:" + std::to_string(port) + "/metadata";
    } else if (kind == "etcd") {
      std::string peer = "http://127.0.0.1:" + std::to_string(freePort());
      std::string client = "http://127.0.0.1:" + std::to_string(port);
      argv = {"/usr/bin/etcd", "--name=t", "--data-dir=" + dir, "--listen-client-urls=" + client,
              "--advertise-client-urls=" + client, "--listen-peer-urls=" + peer,
              "--initial-advertise-peer-urls=" + peer, "--initial-cluster=t=" + peer, "--log-level=error"};
      url = "etcd://127.0.0.1:" + std::to_string(port);
    } else {
      ::mkdir(dir.c_str(), 0700);
      argv = {"/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port), "--save", "",
              "--appendonly", "no", "--dir", dir, "--loglevel", "warning"};
      url = "redis://127.0.0.1:" + std::to_string(port);
    }
    server = std::make_unique<ChildProcess>();
    ASSERT_TRUE(server->start(argv)) << argv[0];
    server_port = port;
    // Ready when a lookup answers (NotFound is an answer).
    auto probe = store();
    ASSERT_TRUE(probe);
    auto deadline = Clock::now() + std::chrono::seconds(15);
    std::string v;
    Status st;
    while (Clock::now() < deadline) {
      st = probe->get("ferry/probe", v);
      if (st.ok() || st.IsNotFound()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << kind << " did not come up: " << st.ToString();
  }
  void stopServer() {
    server->signal(SIGKILL);
    server->wait();
  }
  std::unique_ptr<MetadataStore> store(int64_t lease_ttl_s = 10) {
    Config c;
    std::string type, servers;
    parseMetadataUri(url, type, servers);
    c.set("metadata/type", type);
    c.set("metadata/servers", servers);
    c.set<int64_t>("connect_timeout_ms", 1000);
    c.set<int64_t>("metadata/lease_ttl_s", lease_ttl_s);
    std::unique_ptr<MetadataStore> out;
    EXPECT_TRUE(createMetadataStore(c, out).ok());
    return out;
  }
  std::shared_ptr<Config> config(const std::string& name, const std::string& meta_url = "") {
    auto c = loopbackConfig(5000);
    std::string type, servers;
    parseMetadataUri(meta_url.empty() ? url : meta_url, type, servers);
    c->set("metadata/type", type);
    c->set("metadata/servers", servers);
    c->set("local_segment_name", name);
    c->set<int64_t>("connect_timeout_ms", 1000);
    return c;
  }
  // 200 when the segment's key is present, 404 when absent, -1 when the store is down.
  int keyStatus(const std::string& name) {
    std::string v;
    Status st = store()->get(segmentKey("default", name), v);
    return st.ok() ? 200 : (st.IsNotFound() ? 404 : -1);
  }
  std::unique_ptr<ChildProcess> server;
  uint16_t server_port = 0;
  std::string url;
  int starts_ = 0;
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
