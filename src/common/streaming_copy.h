// Copies that stream past the CPU caches (non-temporal stores) for bulk transfers.
//
// A transfer engine writes memory that this core will not read again: the peer reads it,
// later, or a GPU does. A plain memcpy reads every destination line into the cache before
// overwriting it (a third memory access per byte) and evicts what the cache held; stores
// that bypass the cache skip both. glibc switches to them only for single copies of about
// three quarters of the last-level cache (240 MiB on the VMs this project runs on: never, in
// practice), while a transfer's working set passes the cache in pieces of 16 KiB to 1 MiB.
// Measured here (2-vCPU AMD EPYC, two threads, 256 MiB): 1.4x memcpy in 256 KiB pieces,
// and 1.5x for scattered 16 KiB pages. Over a working set the cache holds, memcpy is 2-3x
// faster instead, so callers stream only transfers larger than the cache (defaultMinBytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::streaming {

/// The instruction sets a streaming copy may use, best first (probed at run time).
enum class Isa { kAvx2, kSse2, kNone };

/// The best instruction set this CPU offers for streaming stores (kNone: not x86-64).
Isa bestIsa();
/// Whether this CPU can run `isa` (kNone: always).
bool supported(Isa isa);
const char* isaName(Isa isa);

/// Copies `n` bytes from `src` to `dst` (not overlapping) with non-temporal stores where
/// the CPU has them (a plain memcpy otherwise, and for the unaligned head, the tail and
/// copies under 256 bytes). When it returns, the stores are ordered before any later store
/// of this thread (sfence): a completion published afterwards cannot overtake the data.
void copy(void* dst, const void* src, size_t n);
/// The same with a given instruction set (tests; `isa` must be supported()).
void copyWith(Isa isa, void* dst, const void* src, size_t n);
/// copy() without the fence, for a run of copies completed together: the caller calls
/// fence() after the last and before it publishes any of them. A fence waits for the
/// streamed lines to leave the core; once per 16 KiB page it cost ~7 % here.
void copyUnfenced(void* dst, const void* src, size_t n);
/// Two copyUnfenced of `n` bytes each, done together: the halves of both in turn, so a core
/// keeps four streams over two scattered pages rather than four over one (+3-4 % for shm's
/// paged 16 KiB copies here). Two plain copyUnfenced calls where that does not apply (no
/// AVX2, under 4 KiB, destinations aligned differently within a cache line).
void copyPairUnfenced(void* dst1, const void* src1, void* dst2, const void* src2, size_t n);
/// Orders the streaming stores of this thread before its later stores.
void fence();
/// Asks the CPU to start loading the first bytes of a copy's source (and its page's
/// translation) while it finishes the one before: a run of scattered pages then does not
/// wait for each page's first lines (~4 % for 16 KiB pages here).
void prefetchSource(const void* src, size_t n);

/// The last-level cache this CPU reports (sysfs), or 0 when it reports none.
uint64_t lastLevelCacheBytes();
/// The most last-level cache a process is credited per CPU it may run on. No server CPU has
/// more than 12 MiB per core (AMD Genoa-X: 1152 MiB for 96), while a VM reports its host's
/// whole cache: 480 MiB on a 2-vCPU Intel VM here, whose copies fall to memory speed past
/// ~100 MiB of working set (2026-12 micro-benchmark).
inline constexpr uint64_t kMaxCachePerCpu = 16ull << 20;
/// The cache a process on `cpus` CPUs can count on: `llc`, at most kMaxCachePerCpu per CPU
/// (0 when `llc` is unknown).
uint64_t cacheShareBytes(uint64_t llc, unsigned cpus);
/// The smallest transfer worth streaming by default: half this process's share of the
/// last-level cache (cacheShareBytes over the CPUs its affinity allows: a transfer with
/// source and destination both that large cannot stay cached), 16 MiB when unknown.
uint64_t defaultMinBytes();
/// The option same_machine/streaming_copy_bytes as a threshold: 0 is defaultMinBytes(), a
/// negative value never (UINT64_MAX).
uint64_t minBytesFromOption(int64_t option);

}  // namespace ferry::streaming
