// Transfers between this process and a ferry-test-peer process over TCP, found through
// each metadata backend.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "peer_process.h"

namespace ferry::test {

class MultiProcess : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(startPeer(peer));
    engine = std::make_unique<TransferEngine>(engineConfig());
    ASSERT_TRUE(engine->available()) << engine->initStatus().ToString();
    mem.resize(130 << 20);
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
    Status st = engine->openSegment(seg, peer.segment);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  PeerProcess peer;
  std::vector<uint8_t> mem;  // before the engine: it is stopped before its memory is freed
  std::unique_ptr<TransferEngine> engine;
  SegmentID seg = 0;
};
FERRY_INSTANTIATE_ON_ALL_BACKENDS(MultiProcess);

TEST_P(MultiProcess, RoundTripsFromOneByteTo64MiBUnaligned) {
  expectRoundTripsAllSizes(*engine, seg, peer, mem, 0);
}

TEST_P(MultiProcess, TenThousandSmallTasksInOneBatch) {
  const size_t kTasks = 10000, kLen = 64;
  fillPattern(mem.data(), kTasks * kLen, 99);
  std::vector<Request> reqs;
  for (size_t i = 0; i < kTasks; ++i)
    reqs.push_back({Request::WRITE, mem.data() + i * kLen, seg, peer.rw + i * kLen, kLen});
  TransferStatus ts;
  ASSERT_TRUE(runBatch(*engine, reqs, std::chrono::seconds(60), &ts).ok());
  EXPECT_EQ(ts.transferred_bytes, kTasks * kLen);
  EXPECT_EQ(peer.hash(peer.rw, kTasks * kLen), hashHex(mem.data(), kTasks * kLen));
  // And 10 000 small reads back into another place.
  for (size_t i = 0; i < kTasks; ++i) {
    reqs[i].opcode = Request::READ;
    reqs[i].source = mem.data() + (1 << 20) + i * kLen;
  }
  ASSERT_TRUE(runBatch(*engine, reqs, std::chrono::seconds(60)).ok());
  EXPECT_EQ(std::memcmp(mem.data() + (1 << 20), mem.data(), kTasks * kLen), 0);
}

TEST_P(MultiProcess, NotificationArrivesAfterItsData) {
  const size_t n = 4 << 20;
  for (int round = 0; round < 10; ++round) {
    fillPattern(mem.data(), n, 500 + round);
    std::string msg = "verify " + std::to_string(peer.rw) + " " + std::to_string(n) + " " +
                      hashHex(mem.data(), n);
    BatchID bid = engine->allocateBatch(4);
    std::vector<Request> reqs;
    for (int k = 0; k < 4; ++k)
      reqs.push_back({Request::WRITE, mem.data() + k * (n / 4), seg, peer.rw + k * (n / 4), n / 4});
    ASSERT_TRUE(engine->submitTransfer(bid, reqs, Notification{"tester", msg}).ok());
    TransferStatus ts;
    ASSERT_TRUE(engine->waitTransfer(bid, ts, std::chrono::seconds(10)).ok());
    ASSERT_EQ(ts.s, COMPLETED);
    ASSERT_TRUE(engine->freeBatch(bid).ok());
    nlohmann::json seen;
    for (int i = 0; i < 200; ++i) {
      seen = peer.command("notifs")["notifs"];
      if (!seen.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(seen.size(), 1u) << seen.dump();
    EXPECT_EQ(seen[0]["name"], "tester");
    EXPECT_EQ(seen[0]["check"], "ok") << "round " << round << ": data not in place on arrival";
  }
}

TEST_P(MultiProcess, ExportedSegmentOpensWithoutMetadata) {
  auto other = std::make_unique<TransferEngine>(loopbackConfig());
  std::vector<uint8_t> buf(1 << 20);
  fillPattern(buf.data(), buf.size(), 4);
  ASSERT_TRUE(other->registerLocalMemory(buf.data(), buf.size()).ok());
  SegmentID h;
  Status st = other->importRemoteSegment(h, peer.exported);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(runBatch(*other, {Request{Request::WRITE, buf.data(), h, peer.rw + 11, buf.size()}}).ok());
  EXPECT_EQ(peer.hash(peer.rw + 11, buf.size()), hashHex(buf.data(), buf.size()));
}

TEST_P(MultiProcess, PermissionsHoldAcrossProcesses) {
  BatchID bid = engine->allocateBatch(1);
  EXPECT_EQ(engine->submitTransfer(bid, {Request{Request::WRITE, mem.data(), seg, peer.ro, 16}}).code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(engine->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, peer.local, 16}}).code(),
            Status::Code::kPermissionDenied);
  ASSERT_TRUE(engine->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, peer.ro, 16}}).ok());
  TransferStatus ts;
  ASSERT_TRUE(engine->waitTransfer(bid, ts, std::chrono::seconds(5)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_TRUE(engine->freeBatch(bid).ok());
}

}  // namespace ferry::test
