// Peers that die, stall and come back. Nothing hangs; every task settles in bounded time.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "peer_process.h"

namespace ferry::test {

using Clock = std::chrono::steady_clock;

class Failure : public BackendTest {
 protected:
  // These are TCP's failure modes (a frozen peer stalls a socket, not shared memory), so
  // the same-machine shortcut is off here; shm has its own failure tests.
  void startEngine(int64_t timeout_ms) {
    auto c = engineConfig(timeout_ms);
    c->set<bool>("transports/shm/enable", false);
    engine = std::make_unique<TransferEngine>(c);
    ASSERT_TRUE(engine->available()) << engine->initStatus().ToString();
    mem.resize(64 << 20);
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
  }
  // Starts a peer process and opens its segment.
  void startAndOpen(PeerProcess& peer, SegmentID& seg) {
    ASSERT_TRUE(startPeer(peer));
    Status st = engine->openSegment(seg, peer.segment);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::vector<Request> bigWrites(SegmentID seg, uint64_t target, int count) {
    std::vector<Request> reqs;  // the same 4 MiB, many times: long enough to interrupt
    for (int i = 0; i < count; ++i) reqs.push_back({Request::WRITE, mem.data(), seg, target, 4 << 20});
    return reqs;
  }
  std::vector<uint8_t> mem;  // before the engine: it is stopped before its memory is freed
  std::unique_ptr<TransferEngine> engine;
};
FERRY_INSTANTIATE_ON_ALL_BACKENDS(Failure);

TEST_P(Failure, PeerKilledMidTransferThenRestarted) {
  startEngine(5000);
  PeerProcess peer;
  SegmentID seg;
  startAndOpen(peer, seg);
  BatchID bid = engine->allocateBatch(256);
  ASSERT_TRUE(engine->submitTransfer(bid, bigWrites(seg, peer.rw, 256)).ok());  // 1 GiB
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  peer.proc.signal(SIGKILL);
  auto t0 = Clock::now();
  TransferStatus ts;
  ASSERT_TRUE(engine->waitTransfer(bid, ts, std::chrono::seconds(10)).ok());
  EXPECT_EQ(ts.s, FAILED);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));  // detected, not timed out
  EXPECT_LT(ts.transferred_bytes, 1ull << 30);
  EXPECT_TRUE(engine->freeBatch(bid).ok());
  peer.proc.wait();

  // The peer comes back under the same name: the same handle works again, at the new
  // process's addresses, after a descriptor refresh. With p2p the name is host:port, so it
  // must come back on that port; through a store it comes back on another one.
  PeerProcess again;
  ASSERT_TRUE(startPeer(again, p2p() ? peer.port : 0));
  ASSERT_EQ(again.segment, peer.segment);
  if (!p2p()) {
    EXPECT_NE(again.port, peer.port);
  }
  fillPattern(mem.data(), 1 << 20, 77);
  Status st = runBatch(*engine, {Request{Request::WRITE, mem.data(), seg, again.rw, 1 << 20}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(again.hash(again.rw, 1 << 20), hashHex(mem.data(), 1 << 20));
}

TEST_P(Failure, StalledPeerTimesOut) {
  startEngine(1000);
  PeerProcess peer;
  SegmentID seg;
  startAndOpen(peer, seg);
  ASSERT_TRUE(runBatch(*engine, {Request{Request::WRITE, mem.data(), seg, peer.rw, 4096}}).ok());
  peer.proc.signal(SIGSTOP);
  BatchID bid = engine->allocateBatch(64);
  auto t0 = Clock::now();
  ASSERT_TRUE(engine->submitTransfer(bid, bigWrites(seg, peer.rw, 64)).ok());
  Status busy = engine->freeBatch(bid);
  EXPECT_EQ(busy.code(), Status::Code::kBusy) << busy.ToString();  // in flight: refused
  TransferStatus ts;
  ASSERT_TRUE(engine->waitTransfer(bid, ts, std::chrono::seconds(10)).ok());
  auto took = Clock::now() - t0;
  EXPECT_EQ(ts.s, TIMEOUT);
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_TRUE(engine->freeBatch(bid).ok());
  // The peer wakes up; new transfers work on a new connection. (Elsewhere in its buffer:
  // the timed-out writes still queued on the old connection may land late, as on any
  // network, and would race with this one.)
  peer.proc.signal(SIGCONT);
  Status st = runBatch(*engine, {Request{Request::WRITE, mem.data(), seg, peer.rw + (32 << 20), 1 << 20}});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(Failure, WaitTransferItselfIsBounded) {
  startEngine(3000);
  PeerProcess peer;
  SegmentID seg;
  startAndOpen(peer, seg);
  peer.proc.signal(SIGSTOP);
  BatchID bid = engine->allocateBatch(1);
  ASSERT_TRUE(engine->submitTransfer(bid, {Request{Request::WRITE, mem.data(), seg, peer.rw, 64 << 20}}).ok());
  TransferStatus ts;
  Status st = engine->waitTransfer(bid, ts, std::chrono::milliseconds(200));
  EXPECT_TRUE(st.IsTimeout()) << st.ToString();
  EXPECT_EQ(ts.s, PENDING);
  peer.proc.signal(SIGKILL);
  ASSERT_TRUE(engine->waitTransfer(bid, ts, std::chrono::seconds(10)).ok());
  EXPECT_EQ(ts.s, FAILED);
  EXPECT_TRUE(engine->freeBatch(bid).ok());
}

TEST_P(Failure, OpenSegmentOfStoppedPeerIsBounded) {
  startEngine(1000);
  PeerProcess peer;
  ASSERT_TRUE(startPeer(peer));
  peer.proc.signal(SIGSTOP);  // accepts connections (kernel), never answers
  SegmentID seg;
  auto t0 = Clock::now();
  Status st = engine->openSegment(seg, peer.segment);
  if (p2p()) {
    EXPECT_TRUE(st.IsTimeout()) << st.ToString();  // the descriptor comes from the peer
  } else {
    // The store answers for the frozen peer; the first transfer is what times out.
    ASSERT_TRUE(st.ok()) << st.ToString();
    TransferStatus ts;
    runBatch(*engine, {Request{Request::WRITE, mem.data(), seg, peer.rw, 4096}},
             std::chrono::seconds(10), &ts).IgnoreError();
    EXPECT_EQ(ts.s, TIMEOUT);
  }
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  peer.proc.signal(SIGKILL);
}

}  // namespace ferry::test
