#include "model/slice.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry {

TEST(Slicing, CutsIntoFullSlicesAndATail) {
  Batch b(1, 1);
  Task& t = b.tasks[0];
  t.batch = &b;
  std::vector<uint8_t> mem(10);
  Request r{Request::WRITE, mem.data(), 1, 0x5000, (5u << 20) + 3};
  makeSlices(t, r, 1 << 20, 0);
  ASSERT_EQ(t.num_slices, 6u);
  uint64_t total = 0;
  for (uint32_t i = 0; i < t.num_slices; ++i) {
    EXPECT_EQ(t.slices[i].remote, 0x5000 + uint64_t(i) * (1 << 20));
    EXPECT_EQ(t.slices[i].local, mem.data() + uint64_t(i) * (1 << 20));
    total += t.slices[i].length;
  }
  EXPECT_EQ(t.slices[5].length, 3u);
  EXPECT_EQ(total, r.length);
}

TEST(Slicing, SmallRequestIsOneSlice) {
  Batch b(1, 1);
  Task& t = b.tasks[0];
  uint8_t x;
  makeSlices(t, Request{Request::READ, &x, 1, 7, 1}, 1 << 20, 0);
  ASSERT_EQ(t.num_slices, 1u);
  EXPECT_EQ(t.slices[0].length, 1u);
  EXPECT_EQ(t.slices[0].op, Request::READ);
}

TEST(Completion, TaskSettlesAfterLastSlice) {
  Batch b(1, 2);
  b.size = 2;
  b.pending = 2;
  std::vector<uint8_t> mem(3 << 20);
  for (int i = 0; i < 2; ++i) {
    b.tasks[i].batch = &b;
    b.tasks[i].state = PENDING;
    makeSlices(b.tasks[i], Request{Request::WRITE, mem.data(), 1, 0, 3u << 20}, 1 << 20, 0);
  }
  Task& t = b.tasks[0];
  completeSlice(&t.slices[0], Status::OK());
  completeSlice(&t.slices[1], Status::OK());
  EXPECT_EQ(t.state.load(), PENDING);
  EXPECT_EQ(overallStatus(b).s, PENDING);
  completeSlice(&t.slices[2], Status::OK());
  EXPECT_EQ(t.state.load(), COMPLETED);
  EXPECT_EQ(t.transferred.load(), 3u << 20);
  // One failed slice fails the task; the batch reports the failure.
  Task& u = b.tasks[1];
  completeSlice(&u.slices[0], Status::OK());
  completeSlice(&u.slices[1], Status::Timeout("slow"));
  completeSlice(&u.slices[2], Status::OK());
  EXPECT_EQ(u.state.load(), TIMEOUT);
  EXPECT_EQ(u.transferred.load(), 2u << 20);
  EXPECT_EQ(b.pending.load(), 0u);
  TransferStatus o = overallStatus(b);
  EXPECT_EQ(o.s, TIMEOUT);
  EXPECT_EQ(o.transferred_bytes, 5u << 20);
}

TEST(Completion, GroupFiresOnceWithOutcome) {
  Batch b(1, 2);
  b.pending = 2;
  auto g = std::make_shared<CompletionGroup>();
  g->tasks_left = 2;
  int fired = 0;
  bool ok = true;
  g->on_done = [&](bool all_ok) {
    ++fired;
    ok = all_ok;
  };
  uint8_t x[2];
  for (int i = 0; i < 2; ++i) {
    b.tasks[i].batch = &b;
    b.tasks[i].group = g;
    makeSlices(b.tasks[i], Request{Request::WRITE, x, 1, 0, 1}, 1 << 20, 0);
  }
  completeSlice(&b.tasks[0].slices[0], Status::OK());
  EXPECT_EQ(fired, 0);
  failTask(b.tasks[1], Status::Unavailable("gone"));
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(ok);
  EXPECT_EQ(b.tasks[1].state.load(), FAILED);
}

TEST(Completion, StatusMapping) {
  EXPECT_EQ(stateFor(Status::OK()), COMPLETED);
  EXPECT_EQ(stateFor(Status::Timeout("")), TIMEOUT);
  EXPECT_EQ(stateFor(Status::Canceled("")), CANCELED);
  EXPECT_EQ(stateFor(Status::InvalidArgument("")), INVALID);
  EXPECT_EQ(stateFor(Status::Unavailable("")), FAILED);
  EXPECT_EQ(stateFor(Status::PermissionDenied("")), FAILED);
}

}  // namespace ferry
