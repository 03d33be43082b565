// Every API call from several threads at once on one engine, bounded in iterations.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "engine_pair.h"

namespace ferry::test {

using Concurrency = EnginePair;

TEST_F(Concurrency, AllCallsFromManyThreads) {
  std::atomic<int> failures{0};
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      ++failures;
      ADD_FAILURE() << what;
    }
  };
  std::vector<std::thread> threads;
  // Transfer threads: each its own region, write then read back and compare.
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      size_t region = 256 << 10, off = t * region;
      for (int i = 0; i < 40; ++i) {
        fillPattern(local.data() + off, region / 2, t * 1000 + i);
        check(runBatch(*a, {write(off, addr(rw, off), region / 2)}).ok(), "write");
        check(runBatch(*a, {read(off + region / 2, addr(rw, off), region / 2)}).ok(), "read");
        check(std::memcmp(local.data() + off, local.data() + off + region / 2, region / 2) == 0,
              "data");
      }
    });
  }
  // Registration churn on both engines, plus allocate/free.
  threads.emplace_back([&] {
    for (int i = 0; i < 100; ++i) {
      std::vector<uint8_t> x(8192);
      check(a->registerLocalMemory(x.data(), x.size()).ok(), "register a");
      check(b->registerLocalMemory(x.data(), x.size()).ok(), "register b");
      check(a->unregisterLocalMemory(x.data()).ok(), "unregister a");
      check(b->unregisterLocalMemory(x.data()).ok(), "unregister b");
      void* p = nullptr;
      check(a->allocateLocalMemory(&p, 65536).ok(), "allocate");
      check(a->freeLocalMemory(p).ok(), "free");
    }
  });
  // Segment and notification calls.
  threads.emplace_back([&] {
    for (int i = 0; i < 100; ++i) {
      SegmentID h;
      check(a->openSegment(h, b->getSegmentName()).ok(), "open");
      SegmentInfo info;
      check(a->getSegmentInfo(h, info).ok(), "info");
      check(a->sendNotification(h, {"t", std::to_string(i)}).ok(), "notify");
      check(a->closeSegment(h).ok(), "close");
      std::vector<Notification> ns;
      check(b->receiveNotification(ns).ok(), "receive");
      std::string handle;
      check(b->exportLocalSegment(handle).ok(), "export");
    }
  });
  // Several threads filling one shared batch: capacity holds exactly.
  BatchID shared = a->allocateBatch(64);
  std::atomic<int> accepted{0}, refused{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        size_t off = (1 << 20) + (t * 20 + i) * 256;
        Status st = a->submitTransfer(shared, {write(off, addr(rw, off), 256)});
        (st.ok() ? accepted : refused)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(accepted.load(), 64);
  EXPECT_EQ(refused.load(), 16);
  TransferStatus ts;
  ASSERT_TRUE(a->waitTransfer(shared, ts, std::chrono::seconds(10)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_EQ(ts.transferred_bytes, 64u * 256);
  EXPECT_TRUE(a->freeBatch(shared).ok());
}

}  // namespace ferry::test
