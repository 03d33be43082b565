// Cross-memory attach (process_vm_readv/writev): how the shm transport reaches a
// same-machine peer's memory that is not in a shared file (its heap, an mmap of its own).
// The kernel copies between the address spaces; the peer's pages are never mapped here.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "ferry/status.h"
#include "model/slice.h"

namespace ferry::cross_memory {

/// Moves `len` bytes between our `local` and the peer's `remote` (write: to the peer).
/// NotSupported when the kernel refuses the attach (ptrace rules; `*denied` set),
/// Unavailable when the process is gone, InternalError otherwise.
Status copy(pid_t pid, bool write, uint8_t* local, uint64_t remote, uint64_t len, bool* denied);

/// A slice's bytes moved, piece by piece (SliceRanges), checked end to end when its task
/// asks (Task::checksum): the source hashed before the copy and the destination after, the
/// peer's side read back through the kernel in pieces. The fault transport's flip lands in
/// between. The caller has proven every piece's remote range is the peer's to give.
Status checkedCopy(Slice& s, pid_t pid, bool* denied);

}  // namespace ferry::cross_memory
