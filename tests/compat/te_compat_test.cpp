// Code written against the classic mooncake::TransferEngine runs on Ferry.
#include "ferry/te_compat.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/net.h"
#include "test_util.h"

namespace mooncake {

class TeCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(a.init("P2PHANDSHAKE", "127.0.0.1:12345"), 0);
    ASSERT_EQ(b.init("P2PHANDSHAKE", "127.0.0.1"), 0);
    src.resize(1 << 20);
    dst.resize(1 << 20);
    ferry::test::fillPattern(src.data(), src.size(), 3);
    ASSERT_EQ(a.registerLocalMemory(src.data(), src.size(), "cpu:0"), 0);
    ASSERT_EQ(b.registerLocalMemory(dst.data(), dst.size(), "cpu:0"), 0);
    target = a.openSegment(b.getLocalIpAndPort());
    ASSERT_NE(target, static_cast<SegmentHandle>(-1));
  }

  // Polls as classic callers do.
  TransferStatus waitBatch(TransferEngine& e, BatchID id) {
    TransferStatus st;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      EXPECT_TRUE(e.getBatchTransferStatus(id, st).ok());
    } while (st.s == PENDING && std::chrono::steady_clock::now() < deadline);
    return st;
  }

  std::vector<uint8_t> src, dst;  // before the engines: they stop before the memory goes
  TransferEngine a, b;
  SegmentHandle target = 0;
};

TEST_F(TeCompat, P2PNamesUseTheBoundPort) {
  EXPECT_GT(a.getRpcPort(), 0);
  EXPECT_EQ(a.getLocalIpAndPort(), "127.0.0.1:" + std::to_string(a.getRpcPort()));
  EXPECT_NE(a.native()->getSegmentName(), "127.0.0.1:12345");  // ephemeral, not the asked port
}

TEST_F(TeCompat, WriteReadWithStatusPolling) {
  BatchID id = a.allocateBatchID(2);
  ASSERT_NE(id, INVALID_BATCH_ID);
  uint64_t remote = reinterpret_cast<uint64_t>(dst.data());
  TransferRequest w{TransferRequest::WRITE, src.data(), target, remote, 4096};
  TransferRequest r{TransferRequest::READ, src.data() + 8192, target, remote, 4096};
  ASSERT_TRUE(a.submitTransfer(id, {w}).ok());
  EXPECT_EQ(waitBatch(a, id).s, COMPLETED);
  ASSERT_TRUE(a.submitTransfer(id, {r}).ok());
  EXPECT_EQ(waitBatch(a, id).s, COMPLETED);
  TransferStatus one;
  ASSERT_TRUE(a.getTransferStatus(id, 1, one).ok());
  EXPECT_EQ(one.s, COMPLETED);
  EXPECT_EQ(one.transferred_bytes, 4096u);
  EXPECT_EQ(std::memcmp(dst.data(), src.data(), 4096), 0);
  EXPECT_EQ(std::memcmp(src.data() + 8192, src.data(), 4096), 0);
  EXPECT_TRUE(a.freeBatchID(id).ok());
  EXPECT_FALSE(a.freeBatchID(id).ok());
}

TEST_F(TeCompat, NotificationsBothWays) {
  BatchID id = a.allocateBatchID(1);
  TransferRequest w{TransferRequest::WRITE, src.data(), target, reinterpret_cast<uint64_t>(dst.data()), 1 << 20};
  ASSERT_TRUE(a.submitTransferWithNotify(id, {w}, {"a", "written"}).ok());
  EXPECT_EQ(waitBatch(a, id).s, COMPLETED);
  EXPECT_TRUE(a.freeBatchID(id).ok());
  EXPECT_EQ(a.sendNotifyByID(target, {"a", "by-id"}), 0);
  EXPECT_EQ(a.sendNotifyByName(b.getLocalIpAndPort(), {"a", "by-name"}), 0);
  std::vector<TransferMetadata::NotifyDesc> got;
  for (int i = 0; i < 500 && got.size() < 3; ++i) {
    ASSERT_EQ(b.getNotifies(got), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(got.size(), 3u);
  // The batch's notification follows its data; it is not ordered against later sends.
  std::set<std::string> msgs;
  for (auto& n : got) msgs.insert(n.notify_msg);
  EXPECT_EQ(msgs, (std::set<std::string>{"written", "by-id", "by-name"}));
  EXPECT_EQ(std::memcmp(dst.data(), src.data(), 1 << 20), 0);
  EXPECT_EQ(a.sendNotifyByName("127.0.0.1:1", {"a", "nobody"}), -1);
}

TEST_F(TeCompat, LocalSegmentIdIsThisEngine) {
  BatchID id = a.allocateBatchID(1);
  TransferRequest w{TransferRequest::WRITE, src.data(), LOCAL_SEGMENT_ID,
                    reinterpret_cast<uint64_t>(src.data() + 65536), 100};
  ASSERT_TRUE(a.submitTransfer(id, {w}).ok());
  EXPECT_EQ(waitBatch(a, id).s, COMPLETED);
  EXPECT_EQ(std::memcmp(src.data() + 65536, src.data(), 100), 0);
  EXPECT_TRUE(a.freeBatchID(id).ok());
  EXPECT_TRUE(a.CheckSegmentStatus(LOCAL_SEGMENT_ID).ok());
}

TEST_F(TeCompat, RegistrationForms) {
  EXPECT_TRUE(a.checkOverlap(src.data() + 10, 10));
  EXPECT_FALSE(a.checkOverlap(dst.data(), 10));
  std::vector<uint8_t> x(4096), y(4096);
  // y's entry overlaps src: nothing of the batch stays registered.
  EXPECT_EQ(a.registerLocalMemoryBatch({{x.data(), x.size()}, {src.data() + 5, 10}}, "cpu:0"), -1);
  EXPECT_FALSE(a.checkOverlap(x.data(), x.size()));
  EXPECT_EQ(a.registerLocalMemoryBatch({{x.data(), x.size()}, {y.data(), y.size()}}, "cpu:0"), 0);
  EXPECT_EQ(a.unregisterLocalMemoryBatch({x.data(), y.data()}), 0);
  EXPECT_EQ(a.unregisterLocalMemory(x.data()), -1);
  // remote_accessible=false: peers are refused.
  ASSERT_EQ(b.registerLocalMemory(x.data(), x.size(), "cpu:0", false), 0);
  BatchID id = a.allocateBatchID(1);
  TransferRequest w{TransferRequest::WRITE, src.data(), target, reinterpret_cast<uint64_t>(x.data()), 16};
  EXPECT_EQ(a.submitTransfer(id, {w}).code(), ferry::Status::Code::kPermissionDenied);
  EXPECT_TRUE(a.freeBatchID(id).ok());
}

TEST_F(TeCompat, SegmentsAndTransportsCalls) {
  EXPECT_NE(a.installTransport("rdma", nullptr), nullptr);
  EXPECT_EQ(a.uninstallTransport("rdma"), 0);
  EXPECT_EQ(a.openSegment("127.0.0.1:1"), static_cast<SegmentHandle>(-1));
  EXPECT_EQ(a.openSegment("not a name"), static_cast<SegmentHandle>(-1));
  EXPECT_TRUE(a.CheckSegmentStatus(target).ok());
  EXPECT_FALSE(a.CheckSegmentStatus(4242).ok());
  EXPECT_EQ(a.syncSegmentCache(b.getLocalIpAndPort()), 0);
  EXPECT_EQ(a.syncSegmentCache(), 0);
  EXPECT_EQ(a.removeLocalSegment("x"), 0);
  EXPECT_EQ(a.closeSegment(target), 0);
  EXPECT_EQ(a.closeSegment(target), -1);
  EXPECT_EQ(a.numContexts(), 0);
}

TEST(TeCompatInit, UnbuiltMetadataAndCallsBeforeInit) {
  TransferEngine e;
  EXPECT_EQ(e.getRpcPort(), -1);
  EXPECT_EQ(e.openSegment("127.0.0.1:1"), static_cast<SegmentHandle>(-1));
  EXPECT_EQ(e.allocateBatchID(1), INVALID_BATCH_ID);
  int x;
  EXPECT_EQ(e.registerLocalMemory(&x, sizeof x), -1);
  EXPECT_FALSE(e.submitTransfer(1, {}).ok());
  EXPECT_EQ(e.init("etcd://127.0.0.1:1", "node-a"), -1);  // no etcd there: a clear -1
  EXPECT_EQ(e.init("P2PHANDSHAKE", "127.0.0.1"), 0);
  EXPECT_EQ(e.init("P2PHANDSHAKE", "127.0.0.1"), -1);  // twice
  EXPECT_EQ(e.freeEngine(), 0);
}

TEST(TeCompatInit, LegacyPortBinding) {
  int fd;
  uint16_t port;
  ASSERT_TRUE(ferry::net::listenTcp("127.0.0.1", 0, fd, port).ok());
  ::close(fd);
  ::setenv("MC_LEGACY_RPC_PORT_BINDING", "1", 1);
  TransferEngine e;
  int rc = e.init("P2PHANDSHAKE", "127.0.0.1:" + std::to_string(port));
  ::unsetenv("MC_LEGACY_RPC_PORT_BINDING");
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(e.getRpcPort(), port);
}

TEST(TeCompatInit, Topology) {
  TransferEngine e;
  auto j = nlohmann::json::parse(e.getLocalTopology());
  EXPECT_GE(j["cpus"].get<int>(), 1);
  EXPECT_TRUE(j["nics"].is_array());
  EXPECT_TRUE(j["rdma_devices"].is_array());
  EXPECT_TRUE(j["gpus"].is_array());
  EXPECT_TRUE(j["numa_nodes"].is_array());
  std::string path = ::testing::TempDir() + "/topo.json";
  std::ofstream(path) << R"({"custom": true})";
  ::setenv("MC_CUSTOM_TOPO_JSON", path.c_str(), 1);
  auto c = nlohmann::json::parse(e.getLocalTopology());
  ::setenv("MC_CUSTOM_TOPO_JSON", "/nonexistent.json", 1);
  EXPECT_EQ(e.getLocalTopology(), "{}");  // unreadable: empty object and a log line
  ::unsetenv("MC_CUSTOM_TOPO_JSON");
  EXPECT_TRUE(c["custom"].get<bool>());
}

}  // namespace mooncake
