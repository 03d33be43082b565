// ferry-bench: transfer throughput and batch latency between two engines (this file: the
// initiator's measurement and main; bench_engine.* the target and loopback modes).
//   --mode=target     serve a buffer until SIGINT/SIGTERM (prints "SEGMENT <name>")
//   --mode=initiator  drive READs or WRITEs against --segment_id
//   --mode=loopback   start a target child process on 127.0.0.1, run the initiator, stop it
//   --mode=memcpy / --mode=fileio   the references the bench scripts compare against
//   --reference=memcpy  (initiator, loopback) times memcpy of the same blocks in windows
//                       that alternate with the transfer's, and prints the ratio
//   --reference=tcp     the same with a plain TCP stream between the two processes over the
//                       same memory, on one connection and on --reference_connections
//                       (the target prints "REFERENCE host:port" for --reference_server)
// A file segment is measured with --mode=initiator --segment_id=file:///PATH.
// Flags follow Mooncake's transfer_engine_bench. --json ends the output with one JSON line.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "bench_common.h"
#include "bench_engine.h"
#include "bench_load.h"
#include "bench_sweep.h"
#include "flags.h"
#include "tcp_reference.h"

using namespace ferry;
using Clock = std::chrono::steady_clock;
using tools::g_stop;
using tools::fillPattern;
using tools::checkPattern;
using tools::kTargetSeed;
using tools::kInitiatorSeed;
using tools::Moved;
using tools::referenceLoop;
using tools::batchedReferenceLoop;
using tools::after;
using tools::makeConfig;
using tools::isGpu;
using tools::fillBuffer;
using tools::hostCopy;

namespace {

void onSignal(int) { tools::g_stop = true; }


// --priority / --background_priority: a Request::priority, or -1.
int priorityOf(const std::string& name) {
  if (name == "high") return PRIO_HIGH;
  if (name == "medium") return PRIO_MEDIUM;
  if (name == "low") return PRIO_LOW;
  return -1;
}

struct Result {
  uint64_t bytes = 0;
  std::vector<double> latencies_us;
  std::string error;
  bool verified = true;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(std::ceil(p / 100.0 * v.size())) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(std::min(k, v.size() - 1)), v.end());
  return v[std::min(k, v.size() - 1)];
}

// One measurement against --segment_id. `result`: filled with the JSON line instead of
// printing (a sweep prints its own table).
int runInitiator(const tools::Flags& f, nlohmann::json* result) {
  std::string op = f.str("operation");
  if (op != "read" && op != "write") {
    std::cerr << "--operation must be read or write\n";
    return 2;
  }
  std::string protocol = f.str("protocol");
  if (protocol != "auto" && protocol != "tcp" && protocol != "shm" && protocol != "file" && protocol != "rdma" &&
      protocol != "nvlink") {
    std::cerr << "--protocol=" << protocol
              << " is not built in this Ferry (available: auto, shm, file, tcp, rdma, nvlink)\n";
    return 2;
  }
  if (f.str("reference") != "none" && (isGpu(f.str("location")) || isGpu(f.str("target_location")))) {
    std::cerr << "--reference times host memory: not with GPU buffers (scripts/gpu_check.sh has GPU baselines)\n";
    return 2;
  }
  // A named protocol pins every request onto that transport (Request::transport_hint).
  const char* hint = protocol == "auto" ? nullptr : protocol.c_str();
  // --workload=kv: each batch is one paged transfer of `layers` x `pages` pages, the same
  // scattered permutation of page indices at both ends (so the pattern checks hold); blocks
  // and batches are its pages.
  const bool kv = f.str("workload") == "kv";
  if (!kv && f.str("workload") != "blocks") {
    std::cerr << "--workload must be blocks or kv\n";
    return 2;
  }
  const size_t layers = static_cast<size_t>(f.i64("layers")), pages = static_cast<size_t>(f.i64("pages"));
  const size_t block = static_cast<size_t>(kv ? f.i64("page_size") : f.i64("block_size"));
  const size_t batch = kv ? layers * pages : static_cast<size_t>(f.i64("batch_size"));
  const int threads = static_cast<int>(f.i64("threads"));
  const double duration = f.f64("duration");
  const bool verify = f.boolean("verify");
  const bool checksum = f.boolean("checksum");
  if (block == 0 || batch == 0 || threads <= 0 || duration <= 0) {
    std::cerr << "block_size, batch_size (or page_size, layers, pages), threads and duration must be positive\n";
    return 2;
  }
  const int priority = priorityOf(f.str("priority")), background_priority = priorityOf(f.str("background_priority"));
  if (priority < 0 || background_priority < 0) {
    std::cerr << "--priority and --background_priority must be high, medium or low\n";
    return 2;
  }
  const size_t per_thread = block * batch;
  const size_t background_bytes = static_cast<size_t>(f.i64("background_bytes"));
  // The background load cycles over its own region after the measured ranges.
  const size_t background_region = background_bytes ? std::min<size_t>(background_bytes, 64 << 20) : 0;
  size_t size = static_cast<size_t>(f.i64("buffer_size"));
  if (per_thread * threads + background_region > size) {
    std::cerr << "buffer_size " << size << " is smaller than threads*batch_size*block_size = "
              << per_thread * threads << (background_region ? " plus the background region" : "") << "\n";
    return 2;
  }
  auto config = makeConfig(f, f.str("local_server_name"));
  TransferEngine engine(config);
  if (!engine.available()) {
    std::cerr << "initiator: " << engine.initStatus().ToString() << "\n";
    return 1;
  }
  SegmentID seg;
  Status st = engine.openSegment(seg, f.str("segment_id"));
  SegmentInfo info;
  if (st.ok()) st = engine.getSegmentInfo(seg, info);
  if (!st.ok()) {
    std::cerr << "initiator: " << st.ToString() << "\n";
    return 1;
  }
  if (info.buffers.empty() || info.buffers[0].length < per_thread * threads + background_region) {
    std::cerr << "initiator: segment '" << f.str("segment_id")
              << "' has no buffer of at least " << per_thread * threads + background_region << " bytes\n";
    return 1;
  }
  uint64_t remote_base = info.buffers[0].base;
  void* local = nullptr;
  st = engine.allocateLocalMemory(&local, size, f.str("location"));
  auto* lbuf = static_cast<uint8_t*>(local);
  if (st.ok()) st = fillBuffer(engine, lbuf, per_thread * threads, kInitiatorSeed, f.str("location"));
  if (!st.ok()) {
    std::cerr << "initiator: " << st.ToString() << "\n";
    return 1;
  }
  const bool is_write = op == "write";
  const auto wait_limit =
      std::chrono::milliseconds(config->get<int64_t>("transfer_timeout_ms", 30000) + 5000);
  std::string used_protocol = hint ? protocol : ext::transportName(engine, seg);

  // References are timed in windows that alternate with the transfer's: memory and
  // network bandwidth here drift by tens of percent within a minute, and adjacent windows
  // see the same drift.
  struct Reference {
    std::string name;
    std::function<Moved(Clock::time_point until)> window;
    Moved moved;
  };
  std::vector<Reference> references;
  const size_t working_set = per_thread * threads;
  // The memcpy reference moves the same blocks between the same local buffer and a private
  // one of the same size. Zero-filled on construction: every page is touched before timing.
  std::vector<uint8_t> reference_buf(f.str("reference") == "memcpy" ? working_set : 0);
  // Each of kReferenceCopies (glibc's memcpy and the engine's streaming copy): the ratio is
  // to the better, the best a program could do with the CPU.
  if (f.str("reference") == "memcpy")
    for (const tools::ReferenceCopy& rc : tools::kReferenceCopies)
      references.push_back({rc.name, [&, copy = rc.copy](Clock::time_point until) {
        return referenceLoop(threads, until, per_thread, block, [&](size_t o) {
          copy(is_write ? &reference_buf[o] : lbuf + o, is_write ? lbuf + o : &reference_buf[o], block);
          return true;
        });
      }, {}});
  // The raw TCP reference: plain streams between the same processes over the same memory
  // (our buffer and the target's), one connection and several.
  std::vector<std::unique_ptr<tools::TcpReferenceClient>> tcp_refs;
  if (f.str("reference") == "tcp") {
    if (f.str("reference_server").empty()) {
      std::cerr << "--reference=tcp needs --reference_server (the target prints it; loopback sets it)\n";
      return 2;
    }
    std::vector<int> counts = {1};
    if (f.i64("reference_connections") > 1) counts.push_back(static_cast<int>(f.i64("reference_connections")));
    for (int n : counts) {
      auto c = std::make_unique<tools::TcpReferenceClient>();
      st = c->connect(f.str("reference_server"), n, is_write, static_cast<size_t>(f.i64("reference_io")), lbuf,
                      working_set, 0);
      if (!st.ok()) {
        std::cerr << "initiator: tcp reference: " << st.ToString() << "\n";
        return 1;
      }
      tools::TcpReferenceClient* client = c.get();
      auto round = [client](size_t o) { return client->round(static_cast<int>(o / client->share())); };
      references.push_back({"tcp x" + std::to_string(n), [client, round](Clock::time_point until) {
        return referenceLoop(client->connections(), until, client->share(), client->share(), round);
      }, {}});
      // The same streams in lockstep rounds, as a synchronous batch API must run them.
      if (n > 1 && f.boolean("reference_batched"))
        references.push_back({"tcp x" + std::to_string(n) + " batched", [client, round](Clock::time_point until) {
          return batchedReferenceLoop(client->connections(), until, client->share(), client->share(), round);
        }, {}});
      tcp_refs.push_back(std::move(c));
    }
  }

  std::vector<Result> results(threads);
  std::atomic<uint64_t> live_bytes{0};
  // `count` requests of `each` bytes covering thread t's range.
  auto blockRequests = [&](int t, size_t count, size_t each) {
    const uint64_t off = static_cast<uint64_t>(t) * per_thread;
    std::vector<Request> reqs(count);
    for (size_t i = 0; i < count; ++i) {
      reqs[i] = Request{is_write ? Request::WRITE : Request::READ, lbuf + off + i * each, seg,
                        remote_base + off + i * each, each, hint};
      reqs[i].priority = priority;
      reqs[i].checksum = checksum;
    }
    return reqs;
  };
  const tools::KvPages kv_pages = kv ? tools::kvPages(pages) : tools::KvPages{};
  // Thread t's whole range in whole batches until `until`, each batch `tasks` tasks
  // submitted by `submit`; into r.
  auto batchesUntil = [&](int t, Clock::time_point until, size_t tasks,
                          const std::function<Status(BatchID)>& submit, Result& r) {
    const uint64_t off = static_cast<uint64_t>(t) * per_thread;
    while (r.error.empty() && Clock::now() < until && !g_stop) {
      BatchID b = engine.allocateBatch(tasks);
      auto t0 = Clock::now();
      Status s = submit(b);
      TransferStatus ts;
      // waitTransfer spins briefly (long in polling mode) before it sleeps.
      if (s.ok()) s = engine.waitTransfer(b, ts, wait_limit);
      auto t1 = Clock::now();
      if (s.ok() && ts.s != COMPLETED)
        s = Status::InternalError(std::string("batch ended ") + ToString(ts.s));
      // Wait for stragglers before freeing, so the batch can always be released.
      while (!engine.freeBatch(b).ok()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (!s.ok()) {
        r.error = s.ToString();
        return;
      }
      r.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      r.bytes += per_thread;
      live_bytes += per_thread;
      if (verify && !is_write) {
        const auto got = hostCopy(engine, lbuf + off, per_thread);
        if (got.size() != per_thread || !checkPattern(got.data(), per_thread, off, kTargetSeed)) r.verified = false;
      }
    }
  };
  auto transferUntil = [&](int t, Clock::time_point until) {
    if (!kv) {
      const std::vector<Request> reqs = blockRequests(t, batch, block);
      batchesUntil(t, until, batch, [&](BatchID b) { return engine.submitTransfer(b, reqs); }, results[t]);
      return;
    }
    PagedRequest p;
    p.opcode = is_write ? Request::WRITE : Request::READ;
    p.local_base = lbuf + static_cast<uint64_t>(t) * per_thread;
    p.target_id = seg;
    p.remote_base = remote_base + static_cast<uint64_t>(t) * per_thread;
    p.page_size = block;
    p.local_pages = kv_pages.local.data();
    p.remote_pages = kv_pages.remote.data();
    p.num_pages = pages;
    p.num_layers = layers;
    p.local_layer_stride = p.remote_layer_stride = pages * block;
    p.transport_hint = hint;
    p.priority = priority;
    p.checksum = checksum;
    batchesUntil(t, until, 1, [&](BatchID b) { return engine.submitPagedTransfer(b, p); }, results[t]);
  };
  // --workload=kv's reference: the same bytes as one contiguous request per layer.
  if (kv)
    references.push_back({"contiguous", [&](Clock::time_point until) {
      std::vector<Result> per(threads);
      auto w0 = Clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          const std::vector<Request> reqs = blockRequests(t, layers, pages * block);
          batchesUntil(t, until, layers, [&](BatchID b) { return engine.submitTransfer(b, reqs); }, per[t]);
        });
      for (auto& th : pool) th.join();
      Moved m;
      m.seconds = std::chrono::duration<double>(Clock::now() - w0).count();
      for (const Result& r : per) {
        m.bytes += r.bytes;
        m.ok &= r.error.empty();
      }
      return m;
    }, {}});
  // A window of transfers: every thread moves whole batches until `until`; its seconds.
  auto transferWindow = [&](Clock::time_point until) {
    auto w0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(transferUntil, t, until);
    for (auto& th : pool) th.join();
    return std::chrono::duration<double>(Clock::now() - w0).count();
  };
  auto anyError = [&] {
    return std::any_of(results.begin(), results.end(), [](const Result& r) { return !r.error.empty(); });
  };

  tools::BackgroundLoad background;
  if (background_bytes)
    background.start(engine, {.segment = seg,
                              .local = lbuf + working_set,
                              .remote = remote_base + working_set,
                              .region = background_region,
                              .batch_bytes = background_bytes,
                              .priority = background_priority,
                              .hint = hint});
  auto start = Clock::now();
  auto end_at = after(duration);
  double elapsed = 0;
  std::string total_error_reference;
  if (!references.empty()) {
    const auto window = std::chrono::milliseconds(std::max<int64_t>(f.i64("window_ms"), 10));
    // One untimed window of each first: the reference's pages are touched by its zero-fill,
    // the peer's (mapped here on first access) only by a first pass of transfers.
    transferWindow(Clock::now() + window);
    for (auto& ref : references) ref.window(Clock::now() + window);
    for (auto& r : results) {
      r.bytes = 0;
      r.latencies_us.clear();
    }
    end_at = after(duration);
    while (Clock::now() < end_at && !g_stop && !anyError()) {
      elapsed += transferWindow(Clock::now() + window);
      for (auto& ref : references) {
        Moved m = ref.window(Clock::now() + window);
        ref.moved.bytes += m.bytes;
        ref.moved.seconds += m.seconds;
        if (!m.ok && total_error_reference.empty()) total_error_reference = ref.name + " reference failed";
      }
    }
  } else {
    std::thread meter;
    if (::isatty(STDOUT_FILENO)) {
      meter = std::thread([&] {
        uint64_t last = 0;
        auto last_t = start;
        while (Clock::now() < end_at && !g_stop) {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          auto now = Clock::now();
          uint64_t b = live_bytes.load();
          double dt = std::chrono::duration<double>(now - last_t).count();
          std::printf("\r[%5.1fs] %s %8.3f GB/s   ", std::chrono::duration<double>(now - start).count(),
                      op.c_str(), (b - last) / dt / 1e9);
          std::fflush(stdout);
          last = b;
          last_t = now;
        }
        std::printf("\n");
      });
    }
    elapsed = transferWindow(end_at);
    if (meter.joinable()) meter.join();
  }

  const std::string background_error = background.stop();
  Result total;
  for (auto& r : results) {
    total.bytes += r.bytes;
    total.latencies_us.insert(total.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
    if (!r.error.empty() && total.error.empty()) total.error = r.error;
    total.verified &= r.verified;
  }
  if (total.error.empty()) total.error = total_error_reference;
  if (total.error.empty()) total.error = background_error;
  if (verify && is_write && total.error.empty()) {
    // Read every written range back and compare it with what we sent.
    std::vector<uint8_t> scratch_mem(per_thread * threads + 4096);
    uint8_t* scratch = scratch_mem.data();
    st = engine.registerLocalMemory(scratch, per_thread * threads, kLocalReadWrite);
    BatchID b = engine.allocateBatch(1);
    TransferStatus ts;
    if (st.ok()) st = engine.submitTransfer(b, {Request{Request::READ, scratch, seg, remote_base, per_thread * threads}});
    if (st.ok()) st = engine.waitTransfer(b, ts, std::chrono::seconds(60));
    if (!st.ok() || ts.s != COMPLETED) {
      total.verified = false;
      total.error = "read-back failed: " + st.ToString();
    } else {
      const auto sent = hostCopy(engine, lbuf, per_thread * threads);
      total.verified = sent.size() == per_thread * threads && std::memcmp(scratch, sent.data(), sent.size()) == 0;
    }
    engine.freeBatch(b).IgnoreError();
    engine.unregisterLocalMemory(scratch).IgnoreError();
  }
  double gbps = total.bytes / elapsed / 1e9;
  double p50 = percentile(total.latencies_us, 50), p90 = percentile(total.latencies_us, 90),
         p99 = percentile(total.latencies_us, 99), p999 = percentile(total.latencies_us, 99.9),
         max_us = total.latencies_us.empty() ? 0 : *std::max_element(total.latencies_us.begin(), total.latencies_us.end());
  double mean_us = 0;
  for (double l : total.latencies_us) mean_us += l;
  if (!total.latencies_us.empty()) mean_us /= static_cast<double>(total.latencies_us.size());
  const bool text = result == nullptr;
  if (text && kv)
    std::printf("operation=%s protocol=%s workload=kv layers=%zu pages=%zu page_size=%zu threads=%d\n", op.c_str(),
                used_protocol.c_str(), layers, pages, block, threads);
  else if (text)
    std::printf("operation=%s protocol=%s block_size=%zu batch_size=%zu threads=%d\n", op.c_str(),
                used_protocol.c_str(), block, batch, threads);
  if (text)
    std::printf("moved %.3f GB in %.2f s: %.3f GB/s; batch latency p50 %.1f us, p99 %.1f us%s\n",
                total.bytes / 1e9, elapsed, gbps, p50, p99,
                verify ? (total.verified ? "; verified" : "; VERIFY FAILED") : "");
  const double background_gbps = background.seconds() > 0 ? background.bytes() / background.seconds() / 1e9 : 0;
  if (text && background_bytes)
    std::printf("background: %s-priority bulk writes of %zu bytes per batch, %.3f GB/s alongside\n",
                f.str("background_priority").c_str(), background_bytes, background_gbps);
  // The ratio is to the best reference (for tcp: the best connection count).
  double reference_gbps = 0;
  nlohmann::json reference_json = nlohmann::json::object();
  for (auto& ref : references) {
    if (ref.name.find(" batched") == std::string::npos)  // reported only (--reference_batched)
      reference_gbps = std::max(reference_gbps, ref.moved.gbps());
    reference_json[ref.name] = ref.moved.gbps();
    if (text)
      std::printf("%s reference in alternating %lld ms windows: %.3f GB/s; ratio %.3f\n", ref.name.c_str(),
                static_cast<long long>(f.i64("window_ms")), ref.moved.gbps(),
                ref.moved.gbps() > 0 ? gbps / ref.moved.gbps() : 0.0);
  }
  const bool with_reference = !references.empty();
  if (text && !total.error.empty()) std::printf("error: %s\n", total.error.c_str());
  {
    nlohmann::json j = {{"operation", op},
                        {"workload", f.str("workload")},
                        {"protocol", used_protocol},
                        {"block_size", block},
                        {"batch_size", batch},
                        {"threads", threads},
                        {"duration_s", elapsed},
                        {"bytes", total.bytes},
                        {"throughput_GBps", gbps},
                        {"batch_latency_us_p50", p50},
                        {"batch_latency_us_p90", p90},
                        {"batch_latency_us_p99", p99},
                        {"batch_latency_us_p999", p999},
                        {"batch_latency_us_max", max_us},
                        {"batch_latency_us_mean", mean_us},
                        // nixlbench's "Avg Lat.": time per transfer (request) of a batch
                        {"avg_latency_us", mean_us / static_cast<double>(batch)},
                        {"batches", total.latencies_us.size()},
                        {"priority", f.str("priority")},
                        {"checksum", checksum},
                        {"background_priority",
                         background_bytes ? nlohmann::json(f.str("background_priority")) : nlohmann::json(nullptr)},
                        {"background_GBps", background_bytes ? nlohmann::json(background_gbps) : nlohmann::json(nullptr)},
                        {"verified", verify ? nlohmann::json(total.verified) : nlohmann::json(nullptr)},
                        {"reference_GBps", with_reference ? nlohmann::json(reference_gbps) : nlohmann::json(nullptr)},
                        {"references", reference_json},
                        {"ratio", with_reference && reference_gbps > 0 ? nlohmann::json(gbps / reference_gbps)
                                                                    : nlohmann::json(nullptr)},
                        {"error", total.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(total.error)}};
    if (result)
      *result = std::move(j);
    else if (f.boolean("json"))
      std::printf("%s\n", j.dump().c_str());
  }
  std::fflush(stdout);
  engine.closeSegment(seg).IgnoreError();
  engine.freeLocalMemory(local).IgnoreError();
  if (!total.error.empty()) return 1;
  if (verify && !total.verified) return 3;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::Flags f;
  f.define("mode", "loopback", "target | initiator | loopback | memcpy | fileio (references)");
  f.define("operation", "write", "read | write");
  f.define("protocol", "auto", "transport to use: auto | shm | file | tcp | rdma (NICs needed)");
  f.define("file_backend", "auto", "file segments: auto | io_uring | pread");
  f.define("file", "", "fileio mode: the file to read or write");
  f.define("copy_threads", "0", "shm copy workers (0: one per usable CPU, up to 4)");
  f.define("block_size", "65536", "bytes per request");
  f.define("batch_size", "128", "requests per batch");
  f.define("threads", "1", "initiator threads, each with its own range");
  f.define("duration", "5", "seconds to run");
  f.define("buffer_size", "1G", "bytes allocated on each side");
  f.define("location", "cpu:0", "where the initiator's buffer is (cpu:0, cuda:N)");
  f.define("target_location", "cpu:0", "where the target's buffer is (cpu:0, cuda:N)");
  f.define("metadata_server", "P2PHANDSHAKE", "metadata service (P2PHANDSHAKE: none)");
  f.define("segment_id", "", "target segment name (initiator mode)");
  f.define("local_server_name", "", "this engine's bind address as host[:port]");
  f.define("segment_name", "", "this engine's segment name (default host:port)");
  f.define("verify", "false", "check every byte moved", true);
  f.define("json", "false", "end with one JSON line of results", true);
  f.define("polling", "false", "busy-poll for completions (lower latency, burns a core)", true);
  f.define("connections", "0", "TCP connections per peer (0: auto from core count)");
  f.define("slice_size", "1M", "TCP slice size");
  f.define("reference", "none",
           "none | memcpy | tcp: also time memcpy of the same blocks, or a plain TCP stream between the "
           "same processes over the same memory, in windows alternating with the transfer's; with --sweep also "
           "auto (tcp for tcp, memcpy for the others)");
  f.define("reference_server", "", "--reference=tcp in initiator mode: the address the target printed");
  f.define("reference_connections", "2", "--reference=tcp: also time this many streams at once (1: only one)");
  f.define("reference_io", "1M", "--reference=tcp: bytes per send/recv call");
  f.define("reference_batched", "false",
           "--reference=tcp: also time the streams in lockstep rounds (a barrier and a hand-off to a waiting "
           "thread each round, the shape of a synchronous batch; reported, not used for the ratio)", true);
  f.define("window_ms", "200", "window length with a reference");
  f.define("workload", "blocks",
           "blocks: batches of --batch_size requests of --block_size; kv: one paged transfer per batch of "
           "--layers x --pages scattered pages of --page_size (as a decode node pulls a KV cache), timed "
           "against the same bytes as one contiguous request per layer in alternating windows");
  f.define("layers", "64", "--workload=kv: layers");
  f.define("pages", "512", "--workload=kv: pages per layer");
  f.define("page_size", "16K", "--workload=kv: bytes per page");
  f.define("priority", "high", "the measured requests' class: high | medium | low (Request::priority)");
  f.define("checksum", "false", "check the measured requests' bytes end to end (Request::checksum)");
  f.define("background_bytes", "0",
           "also keep bulk WRITE batches of this many bytes (1 MiB requests) moving to the same peer while "
           "measuring (0: none)");
  f.define("background_priority", "low", "the background batches' class: high | medium | low");
  f.define("exit_on_stdin_close", "false", "target: exit when stdin closes (loopback)", true);
  f.define("sweep", "false",
           "measure every protocol x block size x batch size x threads of the --sweep_* lists (page sizes with "
           "--workload=kv): one table (nixlbench's column names), JSON lines with --json",
           true);
  f.define("sweep_block_sizes", "4K,16K,64K,256K,1M,4M", "--sweep: block sizes (page sizes with --workload=kv)");
  f.define("sweep_batch_sizes", "1,32", "--sweep: batch sizes");
  f.define("sweep_threads", "1", "--sweep: initiator thread counts");
  f.define("sweep_protocols", "", "--sweep: protocols (empty: --protocol)");
  f.define("plot", "", "--sweep: draw throughput and p99 batch latency against block size into this PNG "
                       "(ferry-plot, python3-matplotlib), the reference series in the same picture");
  std::string err;
  if (!f.parse(argc, argv, err)) {
    std::cerr << "ferry-bench: " << err << "\n" << f.usage("ferry-bench");
    return 2;
  }
  ::signal(SIGINT, onSignal);
  ::signal(SIGTERM, onSignal);
  ::signal(SIGPIPE, SIG_IGN);
  std::string mode = f.str("mode");
  if (f.str("reference") != "none" && f.str("reference") != "memcpy" && f.str("reference") != "tcp" &&
      !(f.str("reference") == "auto" && f.boolean("sweep"))) {
    std::cerr << "--reference must be none, memcpy or tcp (or auto with --sweep)\n";
    return 2;
  }
  if (f.boolean("sweep") || !f.str("plot").empty()) {
    if (!f.boolean("sweep") || (mode != "loopback" && mode != "initiator") ||
        (mode == "initiator" && f.str("segment_id").empty())) {
      std::cerr << "--plot needs --sweep, and --sweep runs in loopback or initiator mode (with --segment_id)\n";
      return 2;
    }
    return tools::runSweep(f, argv[0], runInitiator);
  }
  if (mode == "target") return tools::runTarget(f);
  if (mode == "initiator") {
    if (f.str("segment_id").empty()) {
      std::cerr << "initiator mode needs --segment_id\n";
      return 2;
    }
    return runInitiator(f, nullptr);
  }
  if (mode == "loopback") return tools::runLoopback(f, argv[0], [](tools::Flags& g) { return runInitiator(g, nullptr); });
  if (mode == "memcpy") return tools::runMemcpy(f);
  if (mode == "fileio") return tools::runFileIo(f);
  std::cerr << "unknown --mode=" << mode << "\n" << f.usage("ferry-bench");
  return 2;
}
