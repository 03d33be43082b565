// Prometheus /metrics: counters that move with transfers, histograms of latency and stages,
// gauges, several engines on one endpoint, and the text checked by Debian's promtool.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>

#include "common/http.h"
#include "ferry/engine_ext.h"
#include "test_util.h"

namespace ferry::metrics_tests {

using namespace ferry::test;

std::string scrape(uint16_t port, const std::string& path = "/metrics", const std::string& method = "GET",
                   int* status = nullptr) {
  http::Response resp;
  Status st = http::call("127.0.0.1", port, method, path, "", 5000, resp);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (status) *status = resp.status;
  return resp.body;
}

std::shared_ptr<Config> withMetrics(int port) {
  auto c = loopbackConfig();
  c->set("metrics/port", static_cast<int64_t>(port));
  return c;
}

class MetricsEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a = std::make_unique<TransferEngine>(withMetrics(0));
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    port = ext::metricsPort(*a);
    ASSERT_NE(port, 0);
    b = std::make_unique<TransferEngine>(withMetrics(port));  // shares a's endpoint
    ASSERT_TRUE(b->available()) << b->initStatus().ToString();
    src.resize(1 << 20);
    dst.resize(1 << 20);
    fillPattern(src.data(), src.size(), 5);
    ASSERT_TRUE(a->registerLocalMemory(src.data(), src.size()).ok());
    ASSERT_TRUE(b->registerLocalMemory(dst.data(), dst.size()).ok());
    ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
  }
  Status write(size_t len) {
    return runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), len, "tcp"}});
  }
  std::string label(TransferEngine& e) { return "engine=\"" + e.getSegmentName() + "\""; }

  std::vector<uint8_t> src, dst;
  std::unique_ptr<TransferEngine> a, b;
  uint16_t port = 0;
  SegmentID seg = 0;
};

TEST_F(MetricsEndpointTest, CountersMoveWithTransfers) {
  const std::string bytes = "ferry_transferred_bytes_total{" + label(*a) + ",transport=\"tcp\",op=\"write\"}";
  const std::string tasks = "ferry_tasks_total{" + label(*a) + ",op=\"write\",state=\"completed\"}";
  EXPECT_EQ(metricValue(scrape(port), bytes), 0);
  ASSERT_TRUE(write(1 << 20).ok());
  ASSERT_TRUE(write(4096).ok());
  const std::string text = scrape(port);
  EXPECT_EQ(metricValue(text, bytes), (1 << 20) + 4096) << text;
  EXPECT_EQ(metricValue(text, tasks), 2);
  EXPECT_EQ(metricValue(text, "ferry_open_segments{" + label(*a) + "}"), 1);
  EXPECT_GE(metricValue(text, "ferry_peer_states{" + label(*a) + ",transport=\"tcp\"}"), 1);
  EXPECT_GE(metricValue(text, "ferry_connections{" + label(*a) + ",transport=\"tcp\"}"), 1);
  EXPECT_EQ(metricValue(text, "ferry_connections{" + label(*b) + ",transport=\"tcp\"}"), 0);  // b only serves
  EXPECT_GE(metricValue(text, "ferry_rpc_connections{" + label(*b) + "}"), 1);
  // Latency by size class, and the slices' stages: each completed slice observed once.
  EXPECT_EQ(metricValue(text, "ferry_task_latency_seconds_count{" + label(*a) + ",op=\"write\",size=\"1MiB\"}"), 1);
  EXPECT_EQ(metricValue(text, "ferry_task_latency_seconds_count{" + label(*a) + ",op=\"write\",size=\"4KiB\"}"), 1);
  const double slices = metricValue(text, "ferry_slices_total{" + label(*a) + ",transport=\"tcp\",op=\"write\"}");
  EXPECT_GE(slices, 2);
  for (const char* stage : {"queued", "on_the_wire", "awaiting_ack"})  // tcp says when bytes left
    EXPECT_EQ(metricValue(text, "ferry_slice_stage_seconds_count{" + label(*a) + ",stage=\"" + stage + "\"}"), slices)
        << stage;
  // b (same endpoint) is there too, in the same families.
  EXPECT_EQ(metricValue(text, "ferry_open_segments{" + label(*b) + "}"), 0);
  const std::string type = "# TYPE ferry_open_segments gauge";
  EXPECT_EQ(text.find(type), text.rfind(type));  // one block per family
}

TEST(MetricsOfWrappedTransports, AFaultWrappedTransportStillReportsItsConnections) {
  auto ca = withMetrics(0);
  ca->set<int64_t>("transports/tcp/fault/fail_slice_every", 1'000'000);  // wrapped, never reached
  TransferEngine a(ca), b(loopbackConfig());
  ASSERT_TRUE(a.available() && b.available());
  std::vector<uint8_t> src(4096), dst(4096);
  ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
  SegmentID seg = 0;
  ASSERT_TRUE(a.openSegment(seg, b.getSegmentName()).ok());
  ASSERT_TRUE(runBatch(a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), 4096, "tcp"}}).ok());
  const std::string text = scrape(ext::metricsPort(a));
  EXPECT_GE(metricValue(text, "ferry_connections{engine=\"" + a.getSegmentName() + "\",transport=\"tcp\"}"), 1) << text;
}

TEST_F(MetricsEndpointTest, NotificationsAndFailuresAreCounted) {
  SegmentID self_seg = 0;
  ASSERT_TRUE(b->openSegment(self_seg, a->getSegmentName()).ok());
  ASSERT_TRUE(a->sendNotification(seg, {"n", "hello"}).ok());
  EXPECT_EQ(awaitNotifications(*b, 1).size(), 1u);
  // Past the end of b's buffer: refused by the engine before anything moves.
  EXPECT_FALSE(
      runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()) + 16, 1 << 20, "tcp"}})
          .ok());
  const std::string text = scrape(port);
  EXPECT_EQ(metricValue(text, "ferry_notifications_total{" + label(*a) + ",direction=\"sent\",outcome=\"delivered\"}"), 1);
  EXPECT_EQ(
      metricValue(text, "ferry_notifications_total{" + label(*b) + ",direction=\"received\",outcome=\"delivered\"}"), 1);
  EXPECT_EQ(metricValue(text, "ferry_notification_pending_bytes{" + label(*b) + "}"), 0);
}

TEST_F(MetricsEndpointTest, PromtoolAcceptsTheText) {
  ASSERT_TRUE(write(1 << 20).ok());
  TempDir dir;
  const std::string file = dir.path() + "/metrics.txt";
  std::ofstream(file) << scrape(port);
  const std::string cmd = "promtool check metrics < " + file + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << "promtool (scripts/setup.sh installs it): " << out;
  if (getenv("FERRY_SHOW_METRICS")) std::fputs(scrape(port).c_str(), stdout);
}

TEST_F(MetricsEndpointTest, OnlyGetMetricsIsServed) {
  int status = 0;
  scrape(port, "/other", "GET", &status);
  EXPECT_EQ(status, 404);
  scrape(port, "/metrics", "DELETE", &status);
  EXPECT_EQ(status, 405);
}

TEST(MetricsOff, NoEndpointByDefault) {
  TransferEngine e(loopbackConfig());
  ASSERT_TRUE(e.available());
  EXPECT_EQ(ext::metricsPort(e), 0);
}

TEST(MetricsPort, ATakenPortFailsTheEngineWithTheReason) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  TransferEngine e(withMetrics(ntohs(sa.sin_port)));
  EXPECT_FALSE(e.available());
  EXPECT_NE(e.initStatus().message().find("metrics/port"), std::string::npos) << e.initStatus().ToString();
  ::close(fd);
}

}  // namespace ferry::metrics_tests
