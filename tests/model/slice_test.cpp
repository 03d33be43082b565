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

// A paged transfer's runs: with multi_range, short runs in a row share slices of at most
// slice_size bytes and kMaxSliceRanges pieces, a run of slice_size or more is cut alone, and
// every byte appears once, in order; without it, one slice per run (or per slice_size).
TEST(Slicing, ShortRunsShareSlicesOnlyWhereTheRouteCarriesThem) {
  constexpr uint64_t kSlice = 64 << 10, kPage = 4096;
  std::vector<uint8_t> mem(1 << 20);
  std::vector<SliceRange> runs;
  for (int i = 0; i < 40; ++i) runs.push_back({mem.data() + i * 2 * kPage, 0x100000u + i * 3 * kPage, kPage});
  runs.push_back({mem.data() + 0x80000, 0x900000, 2 * kSlice + 5});  // cut alone: 3 slices
  for (int i = 0; i < 3; ++i) runs.push_back({mem.data() + 0xc0000 + i * kPage, 0xa00000u + i * 2 * kPage, kPage});
  const uint64_t total = 43 * kPage + 2 * kSlice + 5;
  const Request like{Request::READ, nullptr, 1, 0, 0};

  auto check = [&](bool multi_range, uint32_t expect_slices) {
    Batch b(1, 1);
    Task& t = b.tasks[0];
    std::vector<SliceRange> copy = runs;
    makeSlices(t, std::move(copy), like, kSlice, 0, kHostMemory, kHostMemory, multi_range);
    ASSERT_EQ(t.num_slices, expect_slices);
    EXPECT_EQ(t.length, total);
    // Walking every slice's pieces gives the runs back, cut where a run was longer than a slice.
    std::vector<SliceRange> walked;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t.num_slices; ++i) {
      const Slice& s = t.slices[i];
      EXPECT_EQ(s.op, Request::READ);
      EXPECT_LE(s.length, kSlice);
      uint64_t bytes = 0;
      const SliceRanges pieces(s);
      EXPECT_LE(pieces.size(), kMaxSliceRanges);
      EXPECT_EQ(s.ranges != nullptr, pieces.size() > 1);
      EXPECT_EQ(pieces[0].local, s.local);
      EXPECT_EQ(pieces[0].remote, s.remote);
      for (const SliceRange& r : pieces) {
        bytes += r.length;
        if (!walked.empty() && walked.back().local + walked.back().length == r.local &&
            walked.back().remote + walked.back().length == r.remote)
          walked.back().length += r.length;  // the pieces of one long run
        else
          walked.push_back(r);
      }
      EXPECT_EQ(bytes, s.length);
      sum += bytes;
    }
    EXPECT_EQ(sum, total);
    ASSERT_EQ(walked.size(), runs.size());
    for (size_t i = 0; i < runs.size(); ++i) {
      EXPECT_EQ(walked[i].local, runs[i].local) << i;
      EXPECT_EQ(walked[i].remote, runs[i].remote) << i;
      EXPECT_EQ(walked[i].length, runs[i].length) << i;
    }
  };
  check(false, 40 + 3 + 3);
  // 40 pages: 16 a slice (64 KiB) -> 16, 16, 8; the long run's 3; the last 3 pages together.
  check(true, 3 + 3 + 1);

  // Small pages stop at kMaxSliceRanges pieces a slice, below slice_size.
  std::vector<SliceRange> tiny;
  for (uint32_t i = 0; i < kMaxSliceRanges + 1; ++i) tiny.push_back({mem.data() + i * 64, 0x100000u + i * 128, 16});
  Batch b(1, 1);
  makeSlices(b.tasks[0], std::move(tiny), like, kSlice, 0, kHostMemory, kHostMemory, true);
  ASSERT_EQ(b.tasks[0].num_slices, 2u);
  EXPECT_EQ(b.tasks[0].slices[0].range_count, kMaxSliceRanges);
  EXPECT_EQ(b.tasks[0].slices[1].ranges, nullptr);  // the one left over is a plain slice
  EXPECT_EQ(b.tasks[0].slices[1].length, 16u);
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
