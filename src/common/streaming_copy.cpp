#include "common/streaming_copy.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <sched.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ferry::streaming {

namespace {
// Below this a streaming copy is all head and tail: memcpy it.
constexpr size_t kMinStreamed = 256;
// The destination is aligned to a cache line first, so that each line is written whole by
// the streaming stores (a partly written line costs a read of the rest at the memory).
constexpr uintptr_t kLine = 64;

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline void blockAvx2(uint8_t* d, const uint8_t* s) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64));
  const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 96));
  _mm256_stream_si256(reinterpret_cast<__m256i*>(d), a);
  _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 32), b);
  _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 64), c);
  _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 96), e);
}

// Bodies are copied as several parts, a block of each in turn: one core then has several
// streams of loads and stores in flight instead of one, which the memory system serves
// faster. 2-vCPU Intel VM, 512 MiB, micro-benchmark, two threads: two halves from 4 KiB
// (+25 % for 1 MiB copies, +20-24 % for scattered 16 KiB pages over one stream); four
// quarters from 16 KiB (+14 % contiguous, +7-10 % scattered 16 and 64 KiB pages over two
// halves; 8 KiB pages lost 5 % that way, and eight streams lost to four everywhere).
constexpr size_t kTwoStreamsMin = 4096;
constexpr size_t kFourStreamsMin = 16384;

// Two bodies of `n` bytes (a multiple of 256) at once: the halves of both in turn, four
// streams (two scattered pages: +3-4 % for shm's 16 KiB pages over four quarters of one; the
// quarters of one body are its two halves' halves).
__attribute__((target("avx2"))) void pairAvx2(uint8_t* d1, const uint8_t* s1, uint8_t* d2, const uint8_t* s2,
                                              size_t n) {
  const size_t half = n / 2;
  for (size_t i = 0; i < half; i += 128) {
    blockAvx2(d1 + i, s1 + i);
    blockAvx2(d1 + half + i, s1 + half + i);
    blockAvx2(d2 + i, s2 + i);
    blockAvx2(d2 + half + i, s2 + half + i);
  }
}

__attribute__((target("avx2"))) void bodyAvx2(uint8_t* d, const uint8_t* s, size_t n) {
  size_t i = 0;
  if (n >= kFourStreamsMin) {
    const size_t half = n / 512 * 256;  // each quarter a whole number of blocks
    pairAvx2(d, s, d + half, s + half, half);
    i = 2 * half;
  } else if (n >= kTwoStreamsMin) {
    const size_t half = n / 256 * 128;  // each half a whole number of blocks
    for (; i < half; i += 128) {
      blockAvx2(d + i, s + i);
      blockAvx2(d + half + i, s + half + i);
    }
    i = 2 * half;
  }
  for (; i < n; i += 128) blockAvx2(d + i, s + i);
}

void bodySse2(uint8_t* d, const uint8_t* s, size_t n) {  // every x86-64 CPU has SSE2
  for (size_t i = 0; i < n; i += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 48), e);
  }
}
#endif

// How much of the next source prefetchSource asks for: the lines the hardware prefetcher
// would otherwise wait to see missed before it ramps up (512 B measured best of 0.5-4 KiB).
constexpr size_t kPrefetchBytes = 512;

// The bytes before `d`'s next cache-line boundary: copied plainly, so that the streaming
// stores write whole lines.
size_t headBytes(const uint8_t* d) { return (kLine - reinterpret_cast<uintptr_t>(d) % kLine) % kLine; }

// Whether it streamed (and so needs a fence before its bytes are published).
bool copyUnfencedWith(Isa isa, uint8_t* d, const uint8_t* s, size_t n) {
  if (isa == Isa::kNone || n < kMinStreamed) {
    std::memcpy(d, s, n);
    return false;
  }
#if defined(__x86_64__)
  const size_t head = headBytes(d);
  std::memcpy(d, s, head);
  const size_t block = isa == Isa::kAvx2 ? 128 : 64;
  const size_t body = (n - head) / block * block;
  if (isa == Isa::kAvx2)
    bodyAvx2(d + head, s + head, body);
  else
    bodySse2(d + head, s + head, body);
  std::memcpy(d + head + body, s + head + body, n - head - body);
#endif
  return true;
}

Isa probe() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? Isa::kAvx2 : Isa::kSse2;
#else
  return Isa::kNone;
#endif
}
}  // namespace

Isa bestIsa() {
  static const Isa best = probe();
  return best;
}

bool supported(Isa isa) {
  switch (isa) {
    case Isa::kNone:
      return true;
    case Isa::kSse2:
      return bestIsa() != Isa::kNone;
    case Isa::kAvx2:
      return bestIsa() == Isa::kAvx2;
  }
  return false;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return "avx2";
    case Isa::kSse2:
      return "sse2";
    case Isa::kNone:
      break;
  }
  return "none";
}

void copyWith(Isa isa, void* dst, const void* src, size_t n) {
  // Streaming stores are weakly ordered: without the fence a flag or counter written next
  // (the slice's completion) could become visible before the data.
  if (copyUnfencedWith(isa, static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), n)) fence();
}

void copy(void* dst, const void* src, size_t n) { copyWith(bestIsa(), dst, src, n); }

void copyUnfenced(void* dst, const void* src, size_t n) {
  copyUnfencedWith(bestIsa(), static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), n);
}

void copyPairUnfenced(void* dst1, const void* src1, void* dst2, const void* src2, size_t n) {
#if defined(__x86_64__)
  auto* d1 = static_cast<uint8_t*>(dst1);
  auto* d2 = static_cast<uint8_t*>(dst2);
  const auto* s1 = static_cast<const uint8_t*>(src1);
  const auto* s2 = static_cast<const uint8_t*>(src2);
  const size_t head = headBytes(d1);
  // One head, body and tail for both: the destinations must sit alike within a line.
  if (bestIsa() == Isa::kAvx2 && n >= kTwoStreamsMin + head &&
      reinterpret_cast<uintptr_t>(d1) % kLine == reinterpret_cast<uintptr_t>(d2) % kLine) {
    const size_t body = (n - head) / 256 * 256;  // halves of whole blocks
    if (head) {
      std::memcpy(d1, s1, head);
      std::memcpy(d2, s2, head);
    }
    pairAvx2(d1 + head, s1 + head, d2 + head, s2 + head, body);
    if (const size_t tail = n - head - body) {
      std::memcpy(d1 + head + body, s1 + head + body, tail);
      std::memcpy(d2 + head + body, s2 + head + body, tail);
    }
    return;
  }
#endif
  copyUnfenced(dst1, src1, n);
  copyUnfenced(dst2, src2, n);
}

void fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

void prefetchSource(const void* src, size_t n) {
  const auto* p = static_cast<const char*>(src);
  for (size_t off = 0; off < std::min(n, kPrefetchBytes); off += kLine) __builtin_prefetch(p + off, 0, 3);
}

uint64_t lastLevelCacheBytes() {
  uint64_t best_level = 0, bytes = 0;
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    uint64_t level = 0, size = 0;
    std::string unit;
    if (!(level_file >> level) || !(size_file >> size)) continue;
    size_file >> unit;  // "32768K"
    if (!unit.empty() && (unit[0] == 'K' || unit[0] == 'k')) size <<= 10;
    if (!unit.empty() && (unit[0] == 'M' || unit[0] == 'm')) size <<= 20;
    if (level > best_level || (level == best_level && size > bytes)) {
      best_level = level;
      bytes = size;
    }
  }
  return bytes;
}

uint64_t cacheShareBytes(uint64_t llc, unsigned cpus) {
  return std::min(llc, kMaxCachePerCpu * std::max(cpus, 1u));
}

namespace {
unsigned usableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(std::thread::hardware_concurrency(), 1u);
}
}  // namespace

uint64_t defaultMinBytes() {
  static const uint64_t share = cacheShareBytes(lastLevelCacheBytes(), usableCpus());
  return share ? share / 2 : 16 << 20;
}

uint64_t minBytesFromOption(int64_t option) {
  if (option < 0) return UINT64_MAX;
  return option == 0 ? defaultMinBytes() : static_cast<uint64_t>(option);
}

}  // namespace ferry::streaming
