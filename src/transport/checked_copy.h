// A slice's bytes copied by the CPU of this process (local, shm), checked end to end when
// its task asks (Task::checksum): the source is hashed before the copy and the destination
// after it, so a byte changed on the way, or written into the destination meanwhile by
// someone else, fails the slice instead of passing as data. Slices of submits larger than
// the cache are copied past it (common/streaming_copy.h) unless they are checked.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/checksum.h"
#include "common/streaming_copy.h"
#include "ferry/config.h"
#include "model/slice.h"

namespace ferry {

/// same_machine/streaming_copy_bytes as a threshold on a submit's bytes.
inline uint64_t streamingMinBytes(const Config& config) {
  return streaming::minBytesFromOption(config.get<int64_t>("same_machine/streaming_copy_bytes"));
}

/// Moves `len` bytes of the slice (one of its pieces: SliceRanges) from src to dst with
/// `copy(dst, src, n)` and checks the result when the slice's task asks; with `flip` (flipsIn)
/// the fault transport's flip lands between copy and check.
/// `large`: the slice's submit reached streamingMinBytes, so an unchecked copy of ranges
/// that do not overlap uses streaming::copyUnfenced instead (a checked one keeps `copy`:
/// its hash reads the destination straight back, from the cache). After large copies the
/// caller calls streaming::fence() before it completes any of their slices.
template <class Copy>
Status checkedCopy(Slice& s, uint8_t* dst, const uint8_t* src, uint64_t len, bool flip, Copy&& copy,
                   bool large = false) {
  const bool overlap = dst < src + len && src < dst + len;  // one buffer (local)
  if (!s.task->checksum) {
    if (large && !overlap)
      streaming::copyUnfenced(dst, src, len);
    else
      copy(dst, src, len);
    if (flip) {
      streaming::fence();  // the flip's plain store after the streamed ones
      flipByte(dst, len);
    }
    return Status::OK();
  }
  // Hash source, copy, hash destination piece by piece, so the second and third pass find
  // the bytes in cache (~10 % faster than three passes over a 1 MiB slice here; the two
  // hashes, at XXH3's ~15 GB/s per core, stay the bulk of the cost). Overlapping ranges (one
  // buffer, local) are done whole: a later source piece may be an earlier destination.
  constexpr uint64_t kPiece = 64 << 10;
  const uint64_t piece = overlap ? len : kPiece;
  const uint64_t flip_at = flip ? flipOffset(len) : UINT64_MAX;
  checksum::Stream sent, got;
  for (uint64_t off = 0; off < len; off += piece) {
    const uint64_t n = std::min(piece, len - off);
    sent.update(src + off, n);
    copy(dst + off, src + off, n);
    if (flip_at - off < n) dst[flip_at] ^= kFlipMask;
    got.update(dst + off, n);
  }
  return compareChecksums(s, s.op == Request::WRITE ? "target" : "initiator", sent.digest(), got.digest());
}

}  // namespace ferry
