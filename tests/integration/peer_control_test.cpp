// Cancel, deadlines, priority classes, paged transfers and digests against a ferry-test-peer
// process, over tcp and over shm (each pinned with its hint). What lands at the peer is
// checked by the peer's own hash of its memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>

#include "common/checksum.h"
#include "model/slice.h"
#include "peer_process.h"

namespace ferry::test {
namespace {

constexpr size_t kMiB = 1 << 20;
constexpr size_t kSpan = 64 * kMiB;  // the peer's read-write buffer

class PeerControl : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(peer.start(0, kSpan));
    auto config = loopbackConfig();
    config->set("transports/tcp/connections_per_peer", 1);  // one queue: ordering is visible
    engine = std::make_unique<TransferEngine>(config);
    ASSERT_TRUE(engine->available()) << engine->initStatus().ToString();
    mem.assign(2 * kSpan, 0);
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
    Status st = engine->openSegment(seg, peer.segment);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  Request request(Request::OpCode op, size_t local_off, uint64_t peer_off, size_t len, int priority = PRIO_HIGH) {
    Request r{op, mem.data() + local_off, seg, peer.rw + peer_off, len, GetParam()};
    r.priority = priority;
    return r;
  }
  std::vector<Request> blocks(Request::OpCode op, size_t count, int priority) {
    std::vector<Request> out;
    for (size_t i = 0; i < count; ++i) out.push_back(request(op, i * kMiB, (i * kMiB) % kSpan, kMiB, priority));
    return out;
  }
  // Cancels a fresh batch of the 64 MiB span four times over at once (shm copies 64 MiB in a
  // few ms); its tasks must all have settled, some unstarted.
  void submitAndCancel(Request::OpCode op) {
    std::vector<Request> reqs;
    for (int round = 0; round < 4; ++round)
      for (const Request& r : blocks(op, 64, PRIO_LOW)) reqs.push_back(r);
    size_t untouched = 0;
    Status st = submitThenCancel(*engine, reqs, untouched);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_GT(untouched, 0u) << "256 MiB finished before a cancel issued right after the submit";
  }

  PeerProcess peer;
  std::vector<uint8_t> mem;  // before the engine: it stops before its memory goes
  std::unique_ptr<TransferEngine> engine;
  SegmentID seg = 0;
};

TEST_P(PeerControl, CanceledWritesNeverLandAfterTheCall) {
  fillPattern(mem.data(), kSpan, 1);
  submitAndCancel(Request::WRITE);
  // Reuse at once: new bytes over the whole range; a late byte of the old batch would show.
  fillPattern(mem.data(), kSpan, 2);
  ASSERT_TRUE(runBatch(*engine, blocks(Request::WRITE, 64, PRIO_HIGH)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(peer.hash(peer.rw, kSpan), hashHex(mem.data(), kSpan));
}

TEST_P(PeerControl, CanceledReadsNeverLandAfterTheCall) {
  submitAndCancel(Request::READ);
  std::memset(mem.data(), 0xEE, kSpan);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(std::count(mem.begin(), mem.begin() + kSpan, 0xEE), static_cast<long>(kSpan))
      << "read data landed after cancelTransfer returned";
}

TEST_P(PeerControl, PassedDeadlineMovesNothing) {
  const std::string before = peer.hash(peer.rw, kMiB);
  fillPattern(mem.data(), kMiB, 3);
  Request r = request(Request::WRITE, 0, 0, kMiB);
  r.deadline_ns = static_cast<uint64_t>(nowNs() - 1);
  TransferStatus ts;
  EXPECT_FALSE(runBatch(*engine, {r}, std::chrono::seconds(10), &ts).ok());
  EXPECT_EQ(ts.s, TIMEOUT);
  EXPECT_EQ(peer.hash(peer.rw, kMiB), before);
}

TEST_P(PeerControl, HighPriorityOvertakesQueuedLowBulk) {
  fillPattern(mem.data(), 2 * kSpan, 4);
  std::vector<Request> bulk = blocks(Request::WRITE, 128, PRIO_LOW);  // 128 MiB
  BatchID b = engine->allocateBatch(bulk.size());
  ASSERT_TRUE(engine->submitTransfer(b, bulk).ok());
  ASSERT_TRUE(runBatch(*engine, {request(Request::WRITE, 0, 0, 4096, PRIO_HIGH)}).ok());
  TransferStatus bulk_status;
  ASSERT_TRUE(engine->getTransferStatus(b, bulk_status).ok());
  EXPECT_EQ(bulk_status.s, PENDING) << "the HIGH write waited for all " << bulk_status.transferred_bytes << " bulk bytes";
  ASSERT_TRUE(engine->waitTransfer(b, bulk_status, std::chrono::seconds(60)).ok());
  EXPECT_EQ(bulk_status.s, COMPLETED);
  ASSERT_TRUE(engine->freeBatch(b).ok());
}

TEST_P(PeerControl, PagedTransferAndDigestOfWhatLanded) {
  constexpr size_t kPage = 16 << 10, kPages = 512, kLayers = 4, kLayer = kPages * kPage;
  fillPattern(mem.data(), kLayers * kLayer, 5);
  std::vector<int32_t> pages(kPages);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), std::mt19937(5));
  PagedRequest p;
  p.opcode = Request::WRITE;
  p.local_base = mem.data();
  p.target_id = seg;
  p.remote_base = peer.rw;
  p.page_size = kPage;
  p.local_pages = p.remote_pages = pages.data();  // the same scattered order at both ends
  p.num_pages = kPages;
  p.index_type = PagedRequest::INT32;
  p.num_layers = kLayers;
  p.local_layer_stride = p.remote_layer_stride = kLayer;
  p.transport_hint = GetParam();
  BatchID b = engine->allocateBatch(1);
  ASSERT_TRUE(engine->submitPagedTransfer(b, p).ok());
  TransferStatus ts;
  ASSERT_TRUE(engine->waitTransfer(b, ts, std::chrono::seconds(60)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_EQ(ts.transferred_bytes, kLayers * kLayer);
  ASSERT_TRUE(engine->freeBatch(b).ok());
  // Every page is in place: the peer's whole span hashes as ours.
  EXPECT_EQ(peer.hash(peer.rw, kLayers * kLayer), hashHex(mem.data(), kLayers * kLayer));
  uint64_t sum = 0;
  ASSERT_TRUE(engine->digest(seg, peer.rw, kLayers * kLayer, sum).ok());
  EXPECT_EQ(sum, checksum::xxh3(mem.data(), kLayers * kLayer));
  // And back into another place, in another order.
  std::reverse(pages.begin(), pages.end());
  p.opcode = Request::READ;
  p.local_base = mem.data() + kSpan;
  std::vector<int32_t> remote = pages;
  p.remote_pages = remote.data();
  b = engine->allocateBatch(1);
  ASSERT_TRUE(engine->submitPagedTransfer(b, p).ok());
  ASSERT_TRUE(engine->waitTransfer(b, ts, std::chrono::seconds(60)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  ASSERT_TRUE(engine->freeBatch(b).ok());
  EXPECT_EQ(std::memcmp(mem.data() + kSpan, mem.data(), kLayers * kLayer), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, PeerControl, ::testing::Values("tcp", "shm"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ferry::test
