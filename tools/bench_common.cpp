#include "bench_common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "common/streaming_copy.h"
#include "flags.h"

namespace ferry::tools {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

void fillPattern(uint8_t* p, size_t len, uint64_t offset, uint64_t seed) {
  for (size_t i = 0; i < len; ++i) {
    uint64_t o = offset + i;
    uint64_t w = ((o >> 3) + seed) * 0x9E3779B97F4A7C15ull;
    p[i] = static_cast<uint8_t>(w >> ((o & 7) * 8));
  }
}

bool checkPattern(const uint8_t* p, size_t len, uint64_t offset, uint64_t seed) {
  std::vector<uint8_t> want(len);
  fillPattern(want.data(), len, offset, seed);
  return std::memcmp(p, want.data(), len) == 0;
}

// The reference loop: `threads` threads each move their own per_thread range, block by block,
// with move(offset) (offset from the start of all ranges) until `until` or a move fails.
Moved referenceLoop(int threads, Clock::time_point until, size_t per_thread, size_t block,
                    const std::function<bool(size_t offset)>& move) {
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      uint64_t mine = 0;
      const size_t base = static_cast<size_t>(t) * per_thread;
      while (Clock::now() < until && !g_stop && !failed) {
        for (size_t off = 0; off < per_thread && !failed; off += block)
          if (!move(base + off)) failed = true;
        mine += per_thread;
      }
      bytes += mine;
    });
  for (auto& th : pool) th.join();
  return Moved{bytes, std::chrono::duration<double>(Clock::now() - start).count(), !failed};
}

Moved batchedReferenceLoop(int threads, Clock::time_point until, size_t per_thread, size_t block,
                           const std::function<bool(size_t offset)>& move) {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t round = 0;
  int busy = 0;
  bool done = false;
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const size_t base = static_cast<size_t>(t) * per_thread;
      uint64_t seen = 0;
      while (true) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return done || round != seen; });
          if (done) return;
          seen = round;
        }
        for (size_t off = 0; off < per_thread && !failed; off += block)
          if (!move(base + off)) failed = true;
        std::lock_guard lock(mu);
        if (--busy == 0) cv.notify_all();
      }
    });
  uint64_t bytes = 0;
  const auto start = Clock::now();
  while (Clock::now() < until && !g_stop && !failed) {
    std::unique_lock lock(mu);
    busy = threads;
    ++round;
    cv.notify_all();
    cv.wait(lock, [&] { return busy == 0; });
    bytes += per_thread * static_cast<uint64_t>(threads);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
  for (auto& th : pool) th.join();
  return Moved{bytes, seconds, !failed};
}

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// The reference for the shm figures: plain memcpy of the same blocks between two buffers of
// this process, `threads` threads each over its own block_size*batch_size range.
KvPages kvPages(size_t pages) {
  KvPages out{std::vector<int64_t>(pages), std::vector<int64_t>(pages)};
  std::iota(out.local.begin(), out.local.end(), 0);
  std::iota(out.remote.begin(), out.remote.end(), 0);
  std::shuffle(out.local.begin(), out.local.end(), std::mt19937_64(7));
  std::shuffle(out.remote.begin(), out.remote.end(), std::mt19937_64(11));
  return out;
}

namespace {
void plainCopy(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }

// Page-aligned bytes, as the engine's buffers and O_DIRECT have them, freed with the object;
// data() is null when there was no memory.
class PageBytes {
 public:
  explicit PageBytes(size_t n) : p_(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096))) {}
  ~PageBytes() { std::free(p_); }
  PageBytes(const PageBytes&) = delete;
  PageBytes& operator=(const PageBytes&) = delete;
  uint8_t* data() const { return p_; }

 private:
  uint8_t* const p_;
};
}  // namespace

const ReferenceCopy kReferenceCopies[kNumReferenceCopies] = {{"memcpy", &plainCopy, &plainCopy},
                                                             {"streaming copy", &streaming::copy, &streaming::copyUnfenced}};

namespace {
int runMemcpyKv(const tools::Flags& f) {
  const size_t page = static_cast<size_t>(f.i64("page_size")), pages = static_cast<size_t>(f.i64("pages")),
               layers = static_cast<size_t>(f.i64("layers")), layer = page * pages;
  if (page == 0 || pages == 0 || layers == 0) {
    std::cerr << "page_size, pages and layers must be positive\n";
    return 2;
  }
  // Page-aligned, as the engine's buffers are: a vector's bytes start 16 bytes into a page,
  // and every scattered page then begins and ends in a partly written line (streaming 16 KiB
  // pages: 0.72x contiguous that way, ~0.95x aligned).
  const PageBytes src_mem(layer * layers), dst_mem(layer * layers);
  if (!src_mem.data() || !dst_mem.data()) {
    std::cerr << "cannot allocate 2 x " << layer * layers << " bytes\n";
    return 1;
  }
  const std::span<uint8_t> src(src_mem.data(), layer * layers), dst(dst_mem.data(), layer * layers);
  fillPattern(src.data(), src.size(), 0, kInitiatorSeed);
  std::memset(dst.data(), 0, dst.size());
  // The pairs in the order the engine takes them (by the source page, pageRuns): the
  // source walked in address order, the destination scattered.
  const KvPages kv = kvPages(pages);
  std::vector<int64_t> to(pages);  // to[source page] = destination page
  for (size_t i = 0; i < pages; ++i) to[kv.local[i]] = kv.remote[i];
  Moved contiguous[kNumReferenceCopies], scattered[kNumReferenceCopies];  // by kReferenceCopies
  const auto window = std::chrono::milliseconds(std::max<int64_t>(f.i64("window_ms"), 10));
  for (auto end = after(f.f64("duration")); std::chrono::steady_clock::now() < end;) {
    for (size_t k = 0; k < kNumReferenceCopies; ++k) {
      const auto copy = kReferenceCopies[k].copy;
      Moved c = referenceLoop(1, std::chrono::steady_clock::now() + window, layer * layers, layer, [&](size_t off) {
        copy(dst.data() + off, src.data() + off, layer);
        return true;
      });
      // As the shm transport does: the next page's source prefetched, one fence per run.
      const auto copy_in_run = kReferenceCopies[k].copy_in_run;
      Moved s = referenceLoop(1, std::chrono::steady_clock::now() + window, layer * layers, layer, [&](size_t off) {
        for (size_t p = 0; p < pages; ++p) {
          if (p + 1 < pages) streaming::prefetchSource(src.data() + off + (p + 1) * page, page);
          copy_in_run(dst.data() + off + to[p] * page, src.data() + off + p * page, page);
        }
        streaming::fence();
        return true;
      });
      contiguous[k].bytes += c.bytes;
      contiguous[k].seconds += c.seconds;
      scattered[k].bytes += s.bytes;
      scattered[k].seconds += s.seconds;
    }
  }
  double ratio[kNumReferenceCopies];
  for (size_t k = 0; k < kNumReferenceCopies; ++k) {
    ratio[k] = contiguous[k].gbps() > 0 ? scattered[k].gbps() / contiguous[k].gbps() : 0;
    std::printf("%s kv pages (%zu layers x %zu pages of %zu bytes): scattered %.3f GB/s, contiguous %.3f GB/s; ratio %.3f\n",
                kReferenceCopies[k].name, layers, pages, page, scattered[k].gbps(), contiguous[k].gbps(), ratio[k]);
  }
  if (f.boolean("json"))
    std::printf("%s\n", nlohmann::json({{"mode", "memcpy"}, {"workload", "kv"}, {"throughput_GBps", scattered[0].gbps()},
                                        {"reference_GBps", contiguous[0].gbps()}, {"ratio", ratio[0]},
                                        {"streaming_GBps", scattered[1].gbps()},
                                        {"streaming_reference_GBps", contiguous[1].gbps()},
                                        {"streaming_ratio", ratio[1]}})
                             .dump()
                             .c_str());
  return 0;
}
}  // namespace

int runMemcpy(const tools::Flags& f) {
  if (f.str("workload") == "kv") return runMemcpyKv(f);
  const size_t block = static_cast<size_t>(f.i64("block_size"));
  const size_t per_thread = block * static_cast<size_t>(f.i64("batch_size"));
  const int threads = static_cast<int>(f.i64("threads"));
  const double duration = f.f64("duration");
  std::vector<uint8_t> src(per_thread * threads), dst(per_thread * threads);
  fillPattern(src.data(), src.size(), 0, kInitiatorSeed);
  std::memset(dst.data(), 0, dst.size());  // touch every page before timing
  double gbps = referenceLoop(threads, after(duration), per_thread, block, [&](size_t off) {
    std::memcpy(dst.data() + off, src.data() + off, block);
    return true;
  }).gbps();
  std::printf("memcpy block_size=%zu threads=%d: %.3f GB/s\n", block, threads, gbps);
  if (f.boolean("json"))
    std::printf("%s\n", nlohmann::json({{"mode", "memcpy"}, {"throughput_GBps", gbps}}).dump().c_str());
  return 0;
}

// The reference for the file figures: the same blocks moved with plain pread/pwrite from
// `threads` threads, one block at a time each, through O_DIRECT when block and buffer are
// aligned (as Ferry's file transport does), over the same ranges of --file.
int runFileIo(const tools::Flags& f) {
  const std::string path = f.str("file");
  const bool is_write = f.str("operation") == "write";
  const size_t block = static_cast<size_t>(f.i64("block_size"));
  const size_t per_thread = block * static_cast<size_t>(f.i64("batch_size"));
  const int threads = static_cast<int>(f.i64("threads"));
  const double duration = f.f64("duration");
  if (path.empty() || block == 0 || per_thread == 0 || threads <= 0) {
    std::cerr << "fileio mode needs --file and positive block_size, batch_size, threads\n";
    return 2;
  }
  const bool direct = block % 4096 == 0;
  int fd = ::open(path.c_str(), O_RDWR | (direct ? O_DIRECT : 0));
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  const PageBytes mem(per_thread * threads);
  uint8_t* const buf = mem.data();
  if (!buf) return 1;
  fillPattern(buf, per_thread * threads, 0, kInitiatorSeed);
  Moved moved = referenceLoop(threads, after(duration), per_thread, block, [&](size_t off) {
    ssize_t n = is_write ? ::pwrite(fd, buf + off, block, static_cast<off_t>(off))
                         : ::pread(fd, buf + off, block, static_cast<off_t>(off));
    if (n == static_cast<ssize_t>(block)) return true;
    std::perror("fileio");
    return false;
  });
  const double gbps = moved.gbps();
  ::close(fd);
  std::printf("fileio %s block_size=%zu threads=%d%s: %.3f GB/s\n", is_write ? "write" : "read", block,
              threads, direct ? " O_DIRECT" : "", gbps);
  if (f.boolean("json"))
    std::printf("%s\n", nlohmann::json({{"mode", "fileio"}, {"throughput_GBps", gbps}}).dump().c_str());
  return moved.ok ? 0 : 1;
}

}  // namespace ferry::tools
