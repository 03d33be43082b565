// A slice's bytes copied by the CPU of this process (local, shm), checked end to end when
// its task asks (Task::checksum): the source is hashed before the copy and the destination
// after it, so a byte changed on the way, or written into the destination meanwhile by
// someone else, fails the slice instead of passing as data.
#pragma once

#include <cstdint>

#include "common/checksum.h"
#include "model/slice.h"

namespace ferry {

/// Runs `copy` (which moves s.length bytes from src to dst) and checks the result when the
/// slice's task asks; the fault transport's flip lands between the two.
template <class Copy>
Status checkedCopy(Slice& s, uint8_t* dst, const uint8_t* src, Copy&& copy) {
  const bool check = s.task->checksum;
  const uint64_t sent = check ? checksum::xxh3(src, s.length) : 0;
  copy();
  flipIfAsked(s, dst, s.length);
  if (!check) return Status::OK();
  const uint64_t got = checksum::xxh3(dst, s.length);
  if (got == sent) return Status::OK();
  return checksumMismatch(s, s.op == Request::WRITE ? "target" : "initiator", sent, got);
}

}  // namespace ferry
