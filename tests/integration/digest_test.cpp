// TransferEngine::digest: the XXH3-64 of a range, computed where the bytes are.
#include <gtest/gtest.h>

#include "common/checksum.h"
#include "engine_pair.h"

namespace ferry::test {
namespace {

class Digest : public EnginePair {};

TEST_F(Digest, PeerHashesWhatLandedAndOnlyWhatWeMayRead) {
  constexpr size_t n = (3 << 20) + 5;
  ASSERT_TRUE(runBatch(*a, {write(1, addr(rw, 7), n)}).ok());
  const uint64_t sent = checksum::xxh3(local.data() + 1, n);
  uint64_t got = 0;
  Status st = a->digest(seg, addr(rw, 7), n, got);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, sent);
  rw[7 + n / 2] ^= 0x20;  // one flipped bit where it landed is seen
  ASSERT_TRUE(a->digest(seg, addr(rw, 7), n, got).ok());
  EXPECT_NE(got, sent);

  EXPECT_TRUE(a->digest(seg, addr(ro), ro.size(), got).ok());  // read-only: readable
  EXPECT_EQ(got, checksum::xxh3(ro.data(), ro.size()));
  EXPECT_EQ(a->digest(seg, addr(lo), 64, got).code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(a->digest(seg, addr(rw, kSize - 10), 64, got).code(), Status::Code::kOutOfRange);
  EXPECT_TRUE(a->digest(seg, addr(rw), 0, got).IsInvalidArgument());
  EXPECT_TRUE(a->digest(seg, addr(rw), (1ull << 30) + 1, got).IsInvalidArgument());
  EXPECT_TRUE(a->digest(seg + 100, addr(rw), 8, got).IsNotFound());
}

TEST_F(Digest, OwnSegmentIsHashedHere) {
  SegmentID self;
  ASSERT_TRUE(a->openSegment(self, a->getSegmentName()).ok());
  uint64_t got = 0;
  ASSERT_TRUE(a->digest(self, addr(local, 3), 1000, got).ok());
  EXPECT_EQ(got, checksum::xxh3(local.data() + 3, 1000));
  std::vector<uint8_t> other(64);
  EXPECT_FALSE(a->digest(self, addr(other), 64, got).ok());  // not registered
}

}  // namespace
}  // namespace ferry::test
