// Streaming (non-temporal) copies: every instruction set this CPU has, every alignment of
// both ends, sizes around each block and head boundary, and nothing written outside.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <sched.h>

#include "common/streaming_copy.h"
#include "test_util.h"

namespace ferry::test {
namespace {

using streaming::Isa;

std::vector<Isa> isasHere() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx2, Isa::kSse2, Isa::kNone})
    if (streaming::supported(isa)) out.push_back(isa);
  return out;
}

// Copies n bytes from src+src_off to dst+dst_off with `isa`, and checks the copy and the
// guard bytes on both sides of it.
void expectExactCopy(Isa isa, size_t n, size_t src_off, size_t dst_off) {
  constexpr size_t kGuard = 192;
  std::vector<uint8_t> src(n + src_off + 64), dst(n + dst_off + 2 * kGuard);
  fillPattern(src.data(), src.size(), n * 131 + src_off);
  std::memset(dst.data(), 0xA5, dst.size());
  uint8_t* at = dst.data() + kGuard + dst_off;
  streaming::copyWith(isa, at, src.data() + src_off, n);
  ASSERT_EQ(std::memcmp(at, src.data() + src_off, n), 0)
      << streaming::isaName(isa) << " n=" << n << " src+" << src_off << " dst+" << dst_off;
  for (uint8_t* p = dst.data(); p < at; ++p) ASSERT_EQ(*p, 0xA5) << "written before the destination";
  for (uint8_t* p = at + n; p < dst.data() + dst.size(); ++p) ASSERT_EQ(*p, 0xA5) << "written past the destination";
}

TEST(StreamingCopy, TheBestInstructionSetIsSupported) {
  EXPECT_TRUE(streaming::supported(streaming::bestIsa()));
  EXPECT_TRUE(streaming::supported(Isa::kNone));
#if defined(__x86_64__)
  EXPECT_NE(streaming::bestIsa(), Isa::kNone);  // SSE2 is part of x86-64
  EXPECT_TRUE(streaming::supported(Isa::kSse2));
#endif
}

TEST(StreamingCopy, EverySizeAndAlignmentCopiesExactly) {
  // Around each block, head and stream-split boundary (two halves from 4 KiB, quarters from
  // 16 KiB), and bodies that leave a remainder after the split.
  const size_t sizes[] = {0,    1,    63,   64,   127,  128,   255,   256,   257,       319,
                          320,  383,  1000, 4095, 4096, 4097,  16383, 16384, 16384 + 5, 16384 + 448,
                          20000};
  for (Isa isa : isasHere())
    for (size_t n : sizes)
      for (size_t src_off = 0; src_off < 64; src_off += 7)
        for (size_t dst_off = 0; dst_off < 64; ++dst_off) expectExactCopy(isa, n, src_off, dst_off);
}

// Two copies done together: every size around the split, destinations alike and unlike
// within a line (the latter two plain copies), both exact and nothing written outside.
TEST(StreamingCopy, PairsOfCopiesAreExact) {
  constexpr size_t kGuard = 192;
  for (size_t n : {0, 1, 255, 4095, 4096, 4096 + 63, 4096 + 64 + 5, 16384, 16384 + 448, 20000})
    for (size_t off1 : {0, 5, 63})
      for (size_t off2 : {off1, (off1 + 7) % 64}) {
        std::vector<uint8_t> src1(n + 64), src2(n + 64), dst(2 * (n + off1 + off2 + 2 * kGuard) + 128);
        fillPattern(src1.data(), src1.size(), n + off1);
        fillPattern(src2.data(), src2.size(), n + off2 + 1000);
        std::memset(dst.data(), 0xA5, dst.size());
        // Both destinations in one buffer, each with guards around it, at 64-byte-aligned bases.
        auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(dst.data()) + 63) / 64 * 64);
        uint8_t* d1 = base + kGuard + off1;
        uint8_t* d2 = base + (kGuard + off1 + n + kGuard + 63) / 64 * 64 + off2;
        streaming::copyPairUnfenced(d1, src1.data() + 3, d2, src2.data() + 1, n);
        streaming::fence();
        ASSERT_EQ(std::memcmp(d1, src1.data() + 3, n), 0) << "n=" << n << " dst+" << off1 << "/" << off2;
        ASSERT_EQ(std::memcmp(d2, src2.data() + 1, n), 0) << "n=" << n << " dst+" << off1 << "/" << off2;
        for (uint8_t* p = dst.data(); p < dst.data() + dst.size(); ++p)
          if ((p < d1 || p >= d1 + n) && (p < d2 || p >= d2 + n)) ASSERT_EQ(*p, 0xA5) << "written outside, n=" << n;
      }
}

TEST(StreamingCopy, LargeCopiesAreExact) {
  for (Isa isa : isasHere()) {
    expectExactCopy(isa, (4 << 20) + 13, 3, 61);
    expectExactCopy(isa, 1 << 20, 0, 0);
  }
  std::vector<uint8_t> src(9 << 20), dst(9 << 20);
  fillPattern(src.data(), src.size(), 7);
  streaming::copy(dst.data() + 1, src.data() + 2, src.size() - 2);
  EXPECT_EQ(std::memcmp(dst.data() + 1, src.data() + 2, src.size() - 2), 0);
}

// The shm transport's way with a run of slices: each copied unfenced while the next one's
// source is prefetched, one fence before any completes. Pages scattered at both ends, some
// shorter than a streamed block, the last one ending where its buffer ends.
TEST(StreamingCopy, ARunOfUnfencedCopiesIsExactAfterOneFence) {
  constexpr size_t kPage = 16 << 10, kPages = 64;
  std::vector<uint8_t> src(kPage * kPages), dst(kPage * kPages, 0);
  fillPattern(src.data(), src.size(), 29);
  std::vector<size_t> to(kPages), len(kPages);
  for (size_t i = 0; i < kPages; ++i) {
    to[i] = (i * 37 + 11) % kPages;  // a permutation (37 and 64 are coprime)
    len[i] = i % 5 == 0 ? 100 + i : kPage - (i % 3) * 7;
  }
  streaming::prefetchSource(src.data(), 0);  // nothing to load, nothing touched
  for (size_t i = 0; i < kPages; ++i) {
    if (i + 1 < kPages) streaming::prefetchSource(src.data() + (i + 1) * kPage, len[i + 1]);
    streaming::copyUnfenced(dst.data() + to[i] * kPage, src.data() + i * kPage, len[i]);
  }
  streaming::fence();
  for (size_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(std::memcmp(dst.data() + to[i] * kPage, src.data() + i * kPage, len[i]), 0) << "page " << i;
    for (size_t b = len[i]; b < kPage; ++b) ASSERT_EQ(dst[to[i] * kPage + b], 0) << "past page " << i;
  }
}

TEST(StreamingCopy, ACacheIsCreditedAtMostItsSharePerCpu) {
  constexpr uint64_t kMiB = 1 << 20;
  EXPECT_EQ(streaming::cacheShareBytes(32 * kMiB, 2), 32 * kMiB);     // a 2-vCPU AMD VM's CCX
  EXPECT_EQ(streaming::cacheShareBytes(480 * kMiB, 2), 32 * kMiB);    // a VM shown its host's cache
  EXPECT_EQ(streaming::cacheShareBytes(480 * kMiB, 64), 480 * kMiB);  // the whole machine
  EXPECT_EQ(streaming::cacheShareBytes(480 * kMiB, 0), 16 * kMiB);    // no affinity reported: one CPU
  EXPECT_EQ(streaming::cacheShareBytes(0, 8), 0u);                     // unknown stays unknown
}

TEST(StreamingCopy, ThresholdFollowsTheOption) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const uint64_t share =
      streaming::cacheShareBytes(streaming::lastLevelCacheBytes(), static_cast<unsigned>(CPU_COUNT(&set)));
  EXPECT_EQ(streaming::defaultMinBytes(), share ? share / 2 : 16u << 20);
  EXPECT_EQ(streaming::minBytesFromOption(0), streaming::defaultMinBytes());
  EXPECT_EQ(streaming::minBytesFromOption(-1), UINT64_MAX);
  EXPECT_EQ(streaming::minBytesFromOption(4096), 4096u);
}

}  // namespace
}  // namespace ferry::test
