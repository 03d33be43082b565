// Engines that find each other through the HTTP metadata service (the real ferry-metadata
// binary, or one hosted in an engine), including the service going away and coming back.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/http.h"
#include "common/net.h"
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

class HttpMetadata : public ::testing::Test {
 protected:
  void SetUp() override { startServer(freePort()); }
  void startServer(uint16_t port) {
    server = std::make_unique<ChildProcess>();
    ASSERT_TRUE(server->start({binPath("ferry-metadata"), "--host=127.0.0.1", "--port=" + std::to_string(port)}));
    ASSERT_EQ(server->readLine().rfind("LISTENING", 0), 0u);
    server_port = port;
    url = "http://127.0.0.1:" + std::to_string(port) + "/metadata";
  }
  std::shared_ptr<Config> config(const std::string& name, const std::string& meta_url = "") {
    auto c = loopbackConfig(5000);
    c->set("metadata/type", "http");
    c->set("metadata/servers", meta_url.empty() ? url : meta_url);
    c->set("local_segment_name", name);
    c->set<int64_t>("connect_timeout_ms", 1000);
    return c;
  }
  int keyStatus(const std::string& name) {
    http::Response r;
    Status st = http::call("127.0.0.1", server_port, "GET",
                           "/metadata?key=" + http::urlEncode("ferry/default/segments/" + name), "", 2000, r);
    return st.ok() ? r.status : -1;
  }
  std::unique_ptr<ChildProcess> server;
  uint16_t server_port = 0;
  std::string url;
};

TEST_F(HttpMetadata, EnginesFindEachOtherByName) {
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

TEST_F(HttpMetadata, CleanShutdownRemovesTheEntry) {
  {
    TransferEngine a(config("short-lived"));
    ASSERT_TRUE(a.available());
    EXPECT_EQ(keyStatus("short-lived"), 200);
  }
  EXPECT_EQ(keyStatus("short-lived"), 404);
}

TEST_F(HttpMetadata, UnreachableAtStartFailsFast) {
  auto t0 = Clock::now();
  TransferEngine a(config("x", "http://127.0.0.1:" + std::to_string(freePort()) + "/metadata"));
  EXPECT_FALSE(a.available());
  EXPECT_NE(a.initStatus().message().find("cannot publish"), std::string::npos) << a.initStatus().ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(HttpMetadata, StoreDownLaterThenBack) {
  TransferEngine a(config("a")), b(config("b"));
  ASSERT_TRUE(a.available() && b.available());
  std::vector<uint8_t> src(65536), dst(65536);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg;
  ASSERT_TRUE(a.openSegment(seg, "b").ok());
  server->signal(SIGKILL);
  server->wait();
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

TEST_F(HttpMetadata, PeerRestartedElsewhereUnderTheSameName) {
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

TEST_F(HttpMetadata, FerryBenchLoopbackThroughTheService) {
  ChildProcess bench;
  ASSERT_TRUE(bench.start({binPath("ferry-bench"), "--mode=loopback", "--metadata_server=" + url,
                           "--duration=0.5", "--buffer_size=16M", "--block_size=65536",
                           "--batch_size=16", "--verify", "--json"}));
  std::string line, last;
  while (!(line = bench.readLine(std::chrono::seconds(60))).empty()) last = line;
  EXPECT_NE(last.find("\"verified\":true"), std::string::npos) << last;
  EXPECT_EQ(bench.wait(), 0);
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
