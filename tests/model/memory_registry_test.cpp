#include "model/memory_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace ferry {

BufferDesc buf(uint64_t base, uint64_t len, Permission p = kGlobalReadWrite) {
  BufferDesc d;
  d.base = base;
  d.length = len;
  d.perm = p;
  return d;
}

TEST(MemoryRegistry, RejectsOverlapsAcceptsNeighbours) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x1000, 0x1000)).ok());
  EXPECT_EQ(r.add(buf(0x1800, 0x100)).code(), Status::Code::kAlreadyExists);  // inside
  EXPECT_EQ(r.add(buf(0x0800, 0x1000)).code(), Status::Code::kAlreadyExists);  // tail overlaps
  EXPECT_EQ(r.add(buf(0x1fff, 0x10)).code(), Status::Code::kAlreadyExists);   // head overlaps
  EXPECT_EQ(r.add(buf(0x0800, 0x2000)).code(), Status::Code::kAlreadyExists);  // covers
  EXPECT_TRUE(r.add(buf(0x2000, 0x10)).ok());                                  // adjacent after
  EXPECT_TRUE(r.add(buf(0x0f00, 0x100)).ok());                                 // adjacent before
  EXPECT_EQ(r.size(), 3u);
}

TEST(MemoryRegistry, SnapshotInRegistrationOrderAndOverlapQuery) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x9000, 0x100)).ok());
  ASSERT_TRUE(r.add(buf(0x1000, 0x100)).ok());
  ASSERT_TRUE(r.add(buf(0x5000, 0x100)).ok());
  auto s = r.snapshot();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].base, 0x9000u);
  EXPECT_EQ(s[2].base, 0x5000u);
  EXPECT_TRUE(r.overlaps(0x0f00, 0x101));
  EXPECT_FALSE(r.overlaps(0x0f00, 0x100));
  EXPECT_TRUE(r.overlaps(0x50ff, 1));
  EXPECT_FALSE(r.overlaps(0x5100, 0x1000));
  EXPECT_FALSE(r.overlaps(0x5000, 0));
}

TEST(MemoryRegistry, RejectsDegenerateRanges) {
  MemoryRegistry r;
  EXPECT_TRUE(r.add(buf(0x1000, 0)).IsInvalidArgument());
  EXPECT_TRUE(r.add(buf(0, 10)).IsInvalidArgument());
  EXPECT_TRUE(r.add(buf(UINT64_MAX - 4, 10)).IsInvalidArgument());
}

TEST(MemoryRegistry, LocalLookup) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x10000, 0x1000)).ok());
  EXPECT_TRUE(r.checkLocal(0x10000, 0x1000).ok());
  EXPECT_TRUE(r.checkLocal(0x10fff, 1).ok());
  EXPECT_TRUE(r.checkLocal(0x10fff, 2).IsInvalidArgument());  // runs past the end
  EXPECT_TRUE(r.checkLocal(0xffff, 1).IsInvalidArgument());   // before
  EXPECT_TRUE(r.checkLocal(0x11000, 1).IsInvalidArgument());  // after
}

TEST(MemoryRegistry, RemotePermissions) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x1000, 0x100, kGlobalReadWrite)).ok());
  ASSERT_TRUE(r.add(buf(0x2000, 0x100, kGlobalReadOnly)).ok());
  ASSERT_TRUE(r.add(buf(0x3000, 0x100, kLocalReadWrite)).ok());
  MemoryRegistry::Pin pin;
  EXPECT_TRUE(r.pinForRemote(0x1000, 0x100, true, pin).ok());
  EXPECT_TRUE(r.pinForRemote(0x2000, 0x100, false, pin).ok());
  EXPECT_EQ(r.pinForRemote(0x2000, 0x10, true, pin).code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(r.pinForRemote(0x3000, 0x10, false, pin).code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(r.pinForRemote(0x1080, 0x100, false, pin).code(), Status::Code::kOutOfRange);
  EXPECT_EQ(r.pinForRemote(0x5000, 1, false, pin).code(), Status::Code::kOutOfRange);
}

TEST(MemoryRegistry, RemoveMatchesLengthAndBumpsVersion) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x1000, 0x100)).ok());
  uint64_t v = r.version();
  EXPECT_TRUE(r.remove(0x1000, 0x200).IsInvalidArgument());
  EXPECT_TRUE(r.remove(0x1010, 0).IsNotFound());
  BufferDesc removed;
  ASSERT_TRUE(r.remove(0x1000, 0, &removed).ok());
  EXPECT_EQ(removed.length, 0x100u);
  EXPECT_GT(r.version(), v);
  EXPECT_EQ(r.size(), 0u);
}

TEST(MemoryRegistry, RemoveWaitsForPins) {
  MemoryRegistry r;
  ASSERT_TRUE(r.add(buf(0x1000, 0x100)).ok());
  auto pin = std::make_unique<MemoryRegistry::Pin>();
  ASSERT_TRUE(r.pinForRemote(0x1000, 0x10, true, *pin).ok());
  std::atomic<bool> removed{false};
  std::thread t([&] {
    EXPECT_TRUE(r.remove(0x1000, 0).ok());
    removed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(removed.load());  // a peer is still writing into it
  MemoryRegistry::Pin other;
  EXPECT_FALSE(r.pinForRemote(0x1000, 0x10, true, other).ok());  // no new accesses
  pin.reset();
  t.join();
  EXPECT_TRUE(removed.load());
}

TEST(MemoryRegistry, ManyRegionsLookup) {
  MemoryRegistry r;
  for (uint64_t i = 0; i < 10000; ++i) ASSERT_TRUE(r.add(buf(0x100000 + i * 0x2000, 0x1000)).ok());
  for (uint64_t i = 0; i < 10000; i += 97) {
    EXPECT_TRUE(r.checkLocal(0x100000 + i * 0x2000 + 5, 0x100).ok());
    EXPECT_FALSE(r.checkLocal(0x100000 + i * 0x2000 + 0x1000, 1).ok());  // the gap
  }
}

}  // namespace ferry
