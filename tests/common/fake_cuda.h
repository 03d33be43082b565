// A fake of the CUDA driver table (common/cuda_driver.h) over host memory, so that CI runs
// Ferry's GPU logic without a GPU. What it keeps of the real thing, because the logic under
// test depends on it:
//  - Device memory is not host memory: an allocation is an address range reserved with no
//    access (PROT_NONE), backed by a shared-memory file mapped elsewhere. A transport that
//    memcpy's or sendmsg's a "GPU pointer" faults or gets EFAULT, as with a real GPU; only
//    the driver calls (copy, copy_async) reach the bytes.
//  - Calls that need a context fail without a current one; contexts are counted, so a test
//    can prove that probing host pointers created none.
//  - Streams run their work in order on a worker thread each; events complete when the
//    stream reaches them; a copy fault makes the stream's later events report it.
//  - IPC handles name the backing file: another process opens the allocation at a new
//    address (as cuIpcOpenMemHandle does), the exporting process cannot open its own, and
//    opening one allocation twice gives kAlreadyMapped.
#pragma once

#include <cstdint>
#include <string>

#include "common/cuda_driver.h"

namespace ferry::test {

struct FakeCudaStats {
  int contexts_retained = 0;  // primary contexts ever retained in this process
  uint64_t context_pushes = 0;  // times a context was made current
  int live_allocations = 0;   // device allocations not yet freed (mem_alloc)
  int live_ipc_mappings = 0;  // opened and not yet closed (ipc_open)
  int live_streams = 0;
  int live_events = 0;
  uint64_t async_copies = 0;
  uint64_t live_pinned_bytes = 0;  // host memory page-locked now (host_register)
};

/// Registers the fake as CUDA driver provider "fake" with `devices` GPUs (config:
/// cuda/provider = "fake"). Idempotent; the device count is the last one asked for.
void installFakeCuda(int devices = 2);
FakeCudaStats fakeCudaStats();
/// Delays every asynchronous copy by up to `max_us` (random), to shake out ordering bugs.
void setFakeCudaCopyDelay(int max_us);
/// Every ipc_close waits `us` before it unmaps (a close that is still under way).
void setFakeCudaCloseDelay(int us);
/// The copy_async call `after` calls from now (0: the next) is refused with
/// CUDA_ERROR_INVALID_VALUE, once, as a driver refuses a copy it cannot queue; -1: none.
void setFakeCudaRefuseCopy(int64_t after);
/// Streams report that they are being captured into a CUDA graph (or not).
void setFakeCudaCapturing(bool capturing);
/// Device memory made outside any engine (as a framework would), and its release.
uint64_t fakeCudaAlloc(int ordinal, size_t size);
void fakeCudaFree(uint64_t address);
/// An IPC handle of the device allocation at `address`, made as if another process had
/// exported it, so that this process can open it (tests of the opening side in one process).
cuda::IpcHandle fakeCudaForeignHandle(uint64_t address);
/// Reads/writes device or host memory as the fake driver would (tests checking bytes).
void fakeCudaRead(uint64_t address, void* out, size_t n);
void fakeCudaWrite(uint64_t address, const void* in, size_t n);

}  // namespace ferry::test
