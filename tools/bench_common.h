// What ferry-bench's modes share: the data pattern both ends check, the stop flag its
// signal handlers set, and the loop that times a reference (memcpy, file I/O, raw TCP).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace ferry::tools {

class Flags;

/// Set by SIGINT/SIGTERM: every loop ends at its next step.
extern std::atomic<bool> g_stop;

/// Deterministic content: 8-byte words that depend on their offset and a seed.
void fillPattern(uint8_t* p, size_t len, uint64_t offset, uint64_t seed);
bool checkPattern(const uint8_t* p, size_t len, uint64_t offset, uint64_t seed);
constexpr uint64_t kTargetSeed = 1, kInitiatorSeed = 2;

/// What a reference loop moved, and in how long.
struct Moved {
  uint64_t bytes = 0;
  double seconds = 0;
  bool ok = true;  // every move succeeded
  double gbps() const { return seconds > 0 ? bytes / seconds / 1e9 : 0; }
};

/// `threads` threads each move their own per_thread range, block by block, with
/// move(offset) (offset from the start of all ranges) until `until` or a move fails.
Moved referenceLoop(int threads, std::chrono::steady_clock::time_point until, size_t per_thread, size_t block,
                    const std::function<bool(size_t offset)>& move);
/// The same, shaped like a synchronous batch: each round, a coordinating thread releases the
/// `threads` workers, each moves its whole range once, and the round ends when the last is
/// done (a barrier and two thread hand-offs per round, as a caller waiting for its batch has).
Moved batchedReferenceLoop(int threads, std::chrono::steady_clock::time_point until, size_t per_thread,
                           size_t block, const std::function<bool(size_t offset)>& move);
std::chrono::steady_clock::time_point after(double seconds);

/// --workload=kv's scattered pages: page local[i] at the initiator pairs with page remote[i]
/// at the target; two independent fixed random permutations of [0, pages), as the block
/// allocators of a decode and a prefill node leave a KV cache.
struct KvPages {
  std::vector<int64_t> local, remote;
};
KvPages kvPages(size_t pages);

/// The copies the memcpy references time: glibc's memcpy, and the streaming copy the engine
/// uses for large submits (common/streaming_copy.h).
struct ReferenceCopy {
  const char* name;
  void (*copy)(void* dst, const void* src, size_t n);
  // One copy of a run that ends with streaming::fence() (the engine's way with a run of
  // slices): the same as `copy` for memcpy.
  void (*copy_in_run)(void* dst, const void* src, size_t n);
};
constexpr size_t kNumReferenceCopies = 2;
extern const ReferenceCopy kReferenceCopies[kNumReferenceCopies];

/// --mode=memcpy: memcpy of the same blocks between two buffers of this process; with
/// --workload=kv, the kv workload's pages copied one by one in its scattered order vs each
/// layer in one copy, in alternating windows, with each of kReferenceCopies (what scattering
/// costs the memory system).
int runMemcpy(const Flags& f);
/// --mode=fileio: plain pread/pwrite of the same blocks of --file.
int runFileIo(const Flags& f);

}  // namespace ferry::tools
