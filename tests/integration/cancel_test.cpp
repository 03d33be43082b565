// Fenced cancel, request deadlines and priority classes (issue 16), over each transport a
// pair of engines in one process can use: tcp and shm to the other engine, local to our own
// segment. A cancel is "fenced" when, once it returns, no byte of the batch lands anywhere:
// every test here reuses the memory at once and checks, after giving late bytes time to
// arrive, that none did.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "ferry/transfer_engine.h"
#include "model/slice.h"
#include "test_util.h"

namespace ferry::test {
namespace {

constexpr size_t kMiB = 1 << 20;
constexpr size_t kSize = 64 * kMiB;

struct CancelCase {
  const char* hint;
  Request::OpCode op;
};

std::string caseName(const ::testing::TestParamInfo<CancelCase>& info) {
  return std::string(info.param.hint) + (info.param.op == Request::WRITE ? "_write" : "_read");
}

class CancelTest : public ::testing::TestWithParam<CancelCase> {
 protected:
  void SetUp() override { start(0); }

  // connections: transports/tcp/connections_per_peer (0: the default).
  void start(int connections) {
    auto config = [&] {
      auto c = loopbackConfig();
      if (connections) c->set("transports/tcp/connections_per_peer", connections);
      return c;
    };
    a = std::make_unique<TransferEngine>(config());
    b = std::make_unique<TransferEngine>(config());
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    ASSERT_TRUE(b->available()) << b->initStatus().ToString();
    local.assign(kSize, 0);
    remote.assign(kSize, 0);
    ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
    self = std::string(hint()) == "local";
    // local: our own segment, with a second buffer as the target.
    TransferEngine& owner = self ? *a : *b;
    ASSERT_TRUE(owner.registerLocalMemory(remote.data(), remote.size()).ok());
    Status st = a->openSegment(seg, owner.getSegmentName());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  const char* hint() const { return GetParam().hint; }

  // `count` requests of `each` bytes from offset 0 of both buffers.
  std::vector<Request> requests(size_t count, size_t each, int priority, Request::OpCode op) {
    std::vector<Request> out;
    for (size_t i = 0; i < count; ++i) {
      Request r{op, local.data() + i * each, seg, reinterpret_cast<uint64_t>(remote.data()) + i * each, each,
                hint()};
      r.priority = priority;
      out.push_back(r);
    }
    return out;
  }

  // The buffer the data lands in for `op` (the target for writes, ours for reads).
  std::vector<uint8_t>& landing(Request::OpCode op) { return op == Request::WRITE ? remote : local; }
  std::vector<uint8_t>& source(Request::OpCode op) { return op == Request::WRITE ? local : remote; }

  // Buffers before engines: the engines stop before the memory goes.
  std::vector<uint8_t> local, remote;
  std::unique_ptr<TransferEngine> a, b;
  SegmentID seg = 0;
  bool self = false;
};

// Submits 64 MiB, cancels at once, then reuses both buffers: the landing side is overwritten
// with a marker and must still hold only the marker after late bytes had time to arrive; the
// source side is refilled and moved again, and exactly that arrives.
TEST_P(CancelTest, CancelIsFencedAndBuffersAreReusable) {
  const Request::OpCode op = GetParam().op;
  fillPattern(source(op).data(), kSize, 1);
  // The 64 MiB four times over (shm copies 64 MiB in a few ms: a cancel must find work left
  // even when the machine is busy).
  std::vector<Request> reqs;
  for (int round = 0; round < 4; ++round)
    for (const Request& r : requests(64, kMiB, PRIO_LOW, op)) reqs.push_back(r);
  BatchID batch = a->allocateBatch(reqs.size());
  ASSERT_NE(batch, 0u);
  ASSERT_TRUE(a->submitTransfer(batch, reqs).ok());
  Status st = a->cancelTransfer(batch);
  ASSERT_TRUE(st.ok()) << st.ToString();

  // Every task has settled: the batch frees at once, and each one is either whole or CANCELED.
  std::vector<TransferStatus> tasks;
  ASSERT_TRUE(a->getTransferStatus(batch, tasks).ok());
  ASSERT_EQ(tasks.size(), reqs.size());
  size_t canceled = 0, untouched = 0;
  for (const TransferStatus& t : tasks) {
    ASSERT_TRUE(t.s == COMPLETED || t.s == CANCELED) << ToString(t.s);
    if (t.s == CANCELED) ++canceled;
    if (t.s == CANCELED && t.transferred_bytes == 0) ++untouched;
  }
  TransferStatus overall;
  ASSERT_TRUE(a->getTransferStatus(batch, overall).ok());
  if (self) {  // the local transport copies inside submitTransfer: nothing is left to cancel
    EXPECT_EQ(overall.s, COMPLETED);
  } else {
    EXPECT_GT(untouched, 0u) << "256 MiB finished before a cancel issued right after the submit";
    EXPECT_EQ(overall.s, CANCELED);
  }
  ASSERT_TRUE(a->freeBatch(batch).ok());

  std::memset(landing(op).data(), 0xEE, kSize);
  fillPattern(source(op).data(), kSize, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // time for any late byte
  EXPECT_EQ(std::count(landing(op).begin(), landing(op).end(), 0xEE), static_cast<long>(kSize))
      << canceled << " canceled task(s): bytes of the canceled batch landed after cancelTransfer returned";

  TransferStatus again;
  ASSERT_TRUE(runBatch(*a, requests(64, kMiB, PRIO_HIGH, op), std::chrono::seconds(30), &again).ok());
  EXPECT_EQ(hashHex(landing(op).data(), kSize), hashHex(source(op).data(), kSize));
}

TEST_P(CancelTest, OneTaskOfABatchAndBadIds) {
  const Request::OpCode op = GetParam().op;
  fillPattern(source(op).data(), kSize, 3);
  BatchID batch = a->allocateBatch(2);
  ASSERT_NE(batch, 0u);
  auto reqs = requests(2, 32 * kMiB, PRIO_LOW, op);
  ASSERT_TRUE(a->submitTransfer(batch, reqs).ok());
  ASSERT_TRUE(a->cancelTransfer(batch, 0).ok());
  TransferStatus first, overall;
  ASSERT_TRUE(a->getTransferStatus(batch, 0, first).ok());
  EXPECT_TRUE(first.s == CANCELED || first.s == COMPLETED) << ToString(first.s);
  ASSERT_TRUE(a->waitTransfer(batch, overall, std::chrono::seconds(30)).ok());
  TransferStatus second;
  ASSERT_TRUE(a->getTransferStatus(batch, 1, second).ok());
  EXPECT_EQ(second.s, COMPLETED) << "canceling task 0 stopped task 1";
  EXPECT_EQ(std::memcmp(landing(op).data() + 32 * kMiB, source(op).data() + 32 * kMiB, 32 * kMiB), 0);

  EXPECT_EQ(a->cancelTransfer(batch, 2).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(a->cancelTransfer(batch).ok()) << "canceling finished work is a no-op";
  ASSERT_TRUE(a->freeBatch(batch).ok());
  EXPECT_EQ(a->cancelTransfer(batch).code(), Status::Code::kInvalidArgument);
}

// A request whose deadline has passed is dropped unsent: TIMEOUT, nothing moved.
TEST_P(CancelTest, PassedDeadlineSendsNothing) {
  const Request::OpCode op = GetParam().op;
  fillPattern(source(op).data(), kSize, 4);
  std::memset(landing(op).data(), 0xEE, kMiB);
  auto reqs = requests(1, kMiB, PRIO_HIGH, op);
  reqs[0].deadline_ns = static_cast<uint64_t>(nowNs() - 1);
  TransferStatus out;
  Status st = runBatch(*a, reqs, std::chrono::seconds(30), &out);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(out.s, TIMEOUT) << st.ToString();
  EXPECT_EQ(out.transferred_bytes, 0u);
  EXPECT_EQ(std::count(landing(op).begin(), landing(op).begin() + kMiB, 0xEE), static_cast<long>(kMiB));

  // A far deadline changes nothing.
  reqs[0].deadline_ns = static_cast<uint64_t>(nowNs() + 60'000'000'000);
  ASSERT_TRUE(runBatch(*a, reqs).ok());
  EXPECT_EQ(std::memcmp(landing(op).data(), source(op).data(), kMiB), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, CancelTest,
                         ::testing::Values(CancelCase{"tcp", Request::WRITE}, CancelCase{"tcp", Request::READ},
                                           CancelCase{"shm", Request::WRITE}, CancelCase{"shm", Request::READ},
                                           CancelCase{"local", Request::WRITE}, CancelCase{"local", Request::READ}),
                         caseName);

// On one TCP connection: a request queued behind 64 MiB of its own class cannot start
// within 1 ms, so it is dropped unsent; a HIGH one queued behind 128 MiB of LOW work
// overtakes it (done while the bulk is still moving; FIFO would finish the bulk first).
class TcpQueueTest : public CancelTest {
 protected:
  void SetUp() override { start(1); }
};

TEST_P(TcpQueueTest, DeadlineDropsWorkQueuedTooLong) {
  fillPattern(local.data(), kSize, 5);
  std::memset(remote.data(), 0xEE, kSize);
  BatchID bulk = a->allocateBatch(48);
  ASSERT_TRUE(a->submitTransfer(bulk, requests(48, kMiB, PRIO_LOW, Request::WRITE)).ok());
  Request late{Request::WRITE, local.data() + 60 * kMiB, seg,
               reinterpret_cast<uint64_t>(remote.data()) + 60 * kMiB, kMiB, "tcp"};
  late.priority = PRIO_LOW;
  late.deadline_ns = static_cast<uint64_t>(nowNs() + 1'000'000);
  TransferStatus out;
  Status st = runBatch(*a, {late}, std::chrono::seconds(30), &out);
  EXPECT_EQ(out.s, TIMEOUT) << st.ToString();
  EXPECT_EQ(out.transferred_bytes, 0u);
  TransferStatus bulk_status;
  ASSERT_TRUE(a->waitTransfer(bulk, bulk_status, std::chrono::seconds(30)).ok());
  EXPECT_EQ(bulk_status.s, COMPLETED);
  ASSERT_TRUE(a->freeBatch(bulk).ok());
  EXPECT_EQ(std::count(remote.begin() + 60 * kMiB, remote.begin() + 61 * kMiB, 0xEE), static_cast<long>(kMiB))
      << "the dropped request's bytes were sent";
}

TEST_P(TcpQueueTest, HighPriorityOvertakesQueuedBulk) {
  fillPattern(local.data(), kSize, 6);
  // 128 MiB of LOW work: the 64 MiB buffers twice over.
  std::vector<Request> bulk_reqs = requests(64, kMiB, PRIO_LOW, Request::WRITE);
  for (size_t i = 0; i < 64; ++i) bulk_reqs.push_back(bulk_reqs[i]);
  BatchID bulk = a->allocateBatch(bulk_reqs.size());
  ASSERT_TRUE(a->submitTransfer(bulk, bulk_reqs).ok());
  Request urgent{Request::WRITE, local.data(), seg, reinterpret_cast<uint64_t>(remote.data()), 4096, "tcp"};
  urgent.priority = PRIO_HIGH;
  ASSERT_TRUE(runBatch(*a, {urgent}).ok());
  TransferStatus bulk_status;
  ASSERT_TRUE(a->getTransferStatus(bulk, bulk_status).ok());
  EXPECT_EQ(bulk_status.s, PENDING) << "the HIGH write waited for all " << bulk_status.transferred_bytes
                                    << " bulk bytes";
  ASSERT_TRUE(a->waitTransfer(bulk, bulk_status, std::chrono::seconds(30)).ok());
  EXPECT_EQ(bulk_status.s, COMPLETED);
  ASSERT_TRUE(a->freeBatch(bulk).ok());
}

INSTANTIATE_TEST_SUITE_P(Tcp, TcpQueueTest, ::testing::Values(CancelCase{"tcp", Request::WRITE}), caseName);

}  // namespace
}  // namespace ferry::test
