#include "compat/managed_allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <set>
#include <vector>

namespace ferry {

class ManagedAllocatorTest : public ::testing::Test {
 protected:
  ManagedAllocator make(size_t pool = 1 << 20) {
    return ManagedAllocator(
        [this](size_t size, void** base) {
          // Page aligned, as the engine's mmap'd pools are.
          auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096));
          live_pools.insert(p);
          *base = p;
          return Status::OK();
        },
        [this](void* base, size_t) {
          live_pools.erase(static_cast<uint8_t*>(base));
          std::free(base);
        },
        pool, 256);
  }
  std::set<uint8_t*> live_pools;
};

TEST_F(ManagedAllocatorTest, AllocatesAlignedDisjointRanges) {
  auto a = make();
  uint64_t x, y, z;
  ASSERT_TRUE(a.allocate(100, x).ok());
  ASSERT_TRUE(a.allocate(300, y).ok());
  ASSERT_TRUE(a.allocate(256, z).ok());
  EXPECT_EQ(x % 256, 0u);
  EXPECT_GE(y, x + 256);  // 100 rounds to 256
  EXPECT_EQ(a.bytesInUse(), 256u + 512 + 256);
  EXPECT_TRUE(a.free(y, 300).ok());
  EXPECT_TRUE(a.free(y, 300).IsInvalidArgument());  // double free
  EXPECT_TRUE(a.free(x, 99).IsInvalidArgument());   // wrong length
  EXPECT_TRUE(a.free(x + 1, 100).IsInvalidArgument());
  EXPECT_TRUE(a.allocate(0, x).IsInvalidArgument());
}

TEST_F(ManagedAllocatorTest, GrowsAndGivesPoolsBack) {
  auto a = make(1 << 20);
  uint64_t big, small;
  ASSERT_TRUE(a.allocate(900 << 10, small).ok());
  ASSERT_TRUE(a.allocate(5 << 20, big).ok());  // does not fit: a second, larger pool
  EXPECT_EQ(a.poolCount(), 2u);
  ASSERT_TRUE(a.free(big, 5 << 20).ok());
  EXPECT_EQ(a.poolCount(), 1u);  // returned once empty
  ASSERT_TRUE(a.free(small, 900 << 10).ok());
  EXPECT_EQ(a.poolCount(), 1u);  // the first pool stays
  EXPECT_EQ(a.bytesInUse(), 0u);
  uint64_t whole;
  ASSERT_TRUE(a.allocate(1 << 20, whole).ok());  // coalesced back into one range
  EXPECT_EQ(a.poolCount(), 1u);
}

TEST_F(ManagedAllocatorTest, RandomWorkloadLeavesNothingBehind) {
  std::mt19937 rng(7);
  {
    auto a = make(1 << 20);
    std::vector<std::pair<uint64_t, size_t>> live;
    for (int i = 0; i < 20000; ++i) {
      if (live.empty() || rng() % 3) {
        size_t len = 1 + rng() % 200000;
        uint64_t addr;
        ASSERT_TRUE(a.allocate(len, addr).ok());
        for (auto& [o, l] : live) ASSERT_TRUE(addr + len <= o || o + l <= addr) << "overlap";
        live.push_back({addr, len});
      } else {
        size_t k = rng() % live.size();
        ASSERT_TRUE(a.free(live[k].first, live[k].second).ok());
        live.erase(live.begin() + static_cast<long>(k));
      }
      if (live.size() > 60) {  // keep the overlap check cheap
        ASSERT_TRUE(a.free(live.front().first, live.front().second).ok());
        live.erase(live.begin());
      }
    }
    for (auto& [o, l] : live) ASSERT_TRUE(a.free(o, l).ok());
    EXPECT_EQ(a.bytesInUse(), 0u);
    EXPECT_EQ(a.poolCount(), 1u);
  }
  EXPECT_TRUE(live_pools.empty());  // the destructor released the last pool
}

}  // namespace ferry
