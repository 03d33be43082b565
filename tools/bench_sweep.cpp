#include "bench_sweep.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_engine.h"
#include "flags.h"

namespace ferry::tools {

namespace {

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// A list of positive sizes ("4K,1M"); empty when one is malformed.
std::vector<std::string> sizeList(const std::string& s) {
  std::vector<std::string> out = splitList(s);
  for (const auto& v : out)
    if (parseSize(v) <= 0) return {};
  return out;
}

double number(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

void printTable(const std::vector<nlohmann::json>& rows, bool kv) {
  std::printf("%-10s %-16s %-12s %-9s %-14s %-14s %-12s %-12s %-12s %-12s %-14s %-8s\n", "Protocol",
              kv ? "Page Size (B)" : "Block Size (B)", kv ? "Pages" : "Batch Size", "Threads", "B/W (GB/Sec)",
              "Avg Lat. (us)", "P50 (us)", "P90 (us)", "P99 (us)", "P99.9 (us)", "Ref (GB/Sec)", "Ratio");
  for (const auto& r : rows)
    std::printf("%-10s %-16.0f %-12.0f %-9.0f %-14.3f %-14.2f %-12.1f %-12.1f %-12.1f %-12.1f %-14.3f %-8.3f\n",
                r.value("protocol", "?").c_str(), number(r, "block_size"), number(r, "batch_size"),
                number(r, "threads"), number(r, "throughput_GBps"), number(r, "avg_latency_us"),
                number(r, "batch_latency_us_p50"), number(r, "batch_latency_us_p90"),
                number(r, "batch_latency_us_p99"), number(r, "batch_latency_us_p999"), number(r, "reference_GBps"),
                number(r, "ratio"));
}

// ferry-plot beside this binary draws the rows (python3 with matplotlib).
int plot(const std::vector<nlohmann::json>& rows, const std::string& png) {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 1;
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  const std::string data = png + ".jsonl";
  {
    std::ofstream out(data);
    for (const auto& r : rows) out << r.dump() << "\n";
    if (!out) {
      std::cerr << "--plot: cannot write " << data << "\n";
      return 1;
    }
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string script = dir + "/ferry-plot";
    ::execl("/usr/bin/python3", "python3", script.c_str(), data.c_str(), png.c_str(), static_cast<char*>(nullptr));
    std::perror("execl /usr/bin/python3");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "--plot: ferry-plot failed (python3-matplotlib installed? scripts/setup.sh)\n";
    return 1;
  }
  std::remove(data.c_str());
  return 0;
}

}  // namespace

int runSweep(Flags& f, const char* self, const Measure& measure) {
  const bool kv = f.str("workload") == "kv";
  const std::vector<std::string> blocks = sizeList(f.str("sweep_block_sizes"));
  const std::vector<std::string> batches = kv ? std::vector<std::string>{f.str("batch_size")}
                                              : sizeList(f.str("sweep_batch_sizes"));
  const std::vector<std::string> threads = sizeList(f.str("sweep_threads"));
  std::vector<std::string> protocols = splitList(f.str("sweep_protocols"));
  if (protocols.empty()) protocols.push_back(f.str("protocol"));
  if (blocks.empty() || batches.empty() || threads.empty()) {
    std::cerr << "--sweep_block_sizes, --sweep_batch_sizes and --sweep_threads must be lists of positive "
                 "numbers (4K,64K,1M)\n";
    return 2;
  }
  const bool loopback = f.str("mode") == "loopback";
  std::vector<nlohmann::json> rows;
  int rc = 0;
  for (const std::string& protocol : protocols) {
    Flags with_protocol = f;
    with_protocol.set("protocol", protocol);
    // --reference=auto: each protocol against its own ceiling (a raw TCP stream for tcp,
    // memcpy for the memory transports).
    if (f.str("reference") == "auto") with_protocol.set("reference", protocol == "tcp" ? "tcp" : "memcpy");
    auto points = [&](Flags& g) {
      for (const auto& block : blocks)
        for (const auto& batch : batches)
          for (const auto& t : threads) {
            Flags point = g;
            point.set(kv ? "page_size" : "block_size", block);
            point.set("batch_size", batch);
            point.set("threads", t);
            nlohmann::json row;
            const int r = measure(point, &row);
            if (row.is_null()) return r ? r : 1;  // refused before measuring: the reason was printed
            std::fprintf(stderr, "sweep: %s %s x %.0f x %s threads: %.3f GB/s\n", protocol.c_str(), block.c_str(),
                         number(row, "batch_size"), t.c_str(), number(row, "throughput_GBps"));
            if (f.boolean("json")) std::printf("%s\n", row.dump().c_str());
            std::fflush(stdout);
            rows.push_back(std::move(row));
            if (r != 0) return r;
          }
      return 0;
    };
    rc = loopback ? runLoopback(with_protocol, self, points) : points(with_protocol);
    if (rc != 0) break;
  }
  printTable(rows, kv);
  std::fflush(stdout);  // before ferry-plot writes to the same stdout
  if (rc == 0 && !f.str("plot").empty()) rc = plot(rows, f.str("plot"));
  return rc;
}

}  // namespace ferry::tools
