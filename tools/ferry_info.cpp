// ferry-info: inspect Ferry's configuration and segments.
//   ferry-info --config            every config key with its default (JSON)
//   ferry-info --options           every config key and environment variable, as the
//                                  README's markdown tables (type, default, bounds, help)
//   ferry-info --effective         the config this environment produces (FERRY_CONF, MC_*)
//   ferry-info --segment=HOST:PORT a peer's buffers and exposed files (also SEGMENT#FILE)
//   ferry-info --probe=HOST:PORT   exit 0 when the peer's RPC server answers
//   ferry-info --selection=SEGMENT [--metadata_server=URI]
//                                  the transport selector's choices for that segment under
//                                  this environment's config (FERRY_CONF policies included)
//   ferry-info --transports        what each transport runs on here (rdma: NICs, GIDs, MTU,
//                                  NUMA node, speed; or why it is inert), JSON
//   ferry-info --gpu               the CUDA driver as Ferry finds it: devices, or why none (JSON;
//                                  no CUDA context is created)
//   ferry-info --latency=SEGMENT [--metadata_server=URI] [--iterations=N] [--json]
//                                  openSegment and descriptor-refresh latency, p50/p99
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/cuda_driver.h"
#include "ferry/config.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "flags.h"
#include "metadata/metadata_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

using namespace ferry;

namespace {
// A short-lived engine for looking at others: loopback, quiet, on the given metadata service
// (named ferry-info-<pid> there; with p2p its name is its address).
std::shared_ptr<Config> inspectorConfig(const tools::Flags& f) {
  auto c = std::make_shared<Config>();
  c->set("rpc/bind_address", "127.0.0.1");
  c->set("log_level", "warn");
  std::string type, servers;
  parseMetadataUri(f.str("metadata_server"), type, servers);
  c->set("metadata/type", type);
  c->set("metadata/servers", servers);
  if (type != "p2p") c->set("local_segment_name", "ferry-info-" + std::to_string(::getpid()));
  return c;
}
}  // namespace

// The driver's own copy rates on cuda:0 (4 MiB blocks, one after another, as Ferry's staging
// copies run), and whether probing a host pointer left a context current on a fresh thread.
Status gpuCopyBaselines(double seconds, nlohmann::json& out) {
  cuda::Gpu gpu({});
  FERRY_RETURN_IF_ERROR(gpu.available());
  bool host_probe_made_context = true;
  std::thread([&] {
    std::vector<uint8_t> host(4096);
    gpu.pointerInfo(reinterpret_cast<uint64_t>(host.data()));
    cuda::Context current = nullptr;
    host_probe_made_context = gpu.api().ctx_current(&current) != 0 || current != nullptr;
  }).join();
  out["context_after_host_probe"] = host_probe_made_context;
  constexpr size_t kBlock = 4 << 20, kSpan = 64 << 20;
  uint64_t a = 0, b = 0;
  FERRY_RETURN_IF_ERROR(gpu.allocate(0, kSpan, a));
  FERRY_RETURN_IF_ERROR(gpu.allocate(0, kSpan, b));
  std::vector<uint8_t> host(kSpan, 1);
  auto rate = [&](auto copy) {
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t bytes = 0;
    double s = 0;
    for (size_t off = 0; s < seconds; off = (off + kBlock) % kSpan) {
      if (!copy(off).ok()) return -1.0;
      bytes += kBlock;
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return bytes / s / 1e9;
  };
  auto dev = [](uint64_t p, size_t off) { return reinterpret_cast<void*>(p + off); };
  out["d2d_GBps"] = rate([&](size_t off) { return gpu.copy(dev(b, off), dev(a, off), kBlock); });
  out["h2d_GBps"] = rate([&](size_t off) { return gpu.copy(dev(a, off), host.data() + off, kBlock); });
  out["d2h_GBps"] = rate([&](size_t off) { return gpu.copy(host.data() + off, dev(a, off), kBlock); });
  gpu.free(0, a).IgnoreError();
  gpu.free(0, b).IgnoreError();
  return Status::OK();
}

int main(int argc, char** argv) {
  tools::Flags f;
  f.define("config", "false", "print the default configuration", true);
  f.define("options", "false", "print every option and environment variable (markdown)", true);
  f.define("effective", "false", "print the configuration from this environment", true);
  f.define("segment", "", "print the descriptor of the segment HOST:PORT");
  f.define("probe", "", "probe the RPC server of HOST:PORT");
  f.define("selection", "", "print the transport selector's choices for this segment");
  f.define("latency", "", "time openSegment and descriptor refresh of this segment");
  f.define("transports", "false", "print what each transport runs on here (devices, or why it is inert)", true);
  f.define("gpu", "false", "print the CUDA driver's devices as Ferry finds them, or why there are none", true);
  f.define("gpu_copy", "0",
           "time the driver's own copies on cuda:0 for this many seconds each (device to device, host to "
           "device, device to host; 4 MiB blocks): the GPU check's baselines");
  f.define("metadata_server", "P2PHANDSHAKE", "metadata service (P2PHANDSHAKE, http://, etcd://, redis://)");
  f.define("iterations", "1000", "samples per latency figure");
  f.define("json", "false", "latency: one JSON line", true);
  std::string err;
  if (!f.parse(argc, argv, err) || argc < 2) {
    std::cerr << (err.empty() ? "" : "ferry-info: " + err + "\n") << f.usage("ferry-info");
    return 2;
  }
  if (f.boolean("config")) std::cout << Config::defaultsJson() << "\n";
  if (f.boolean("options")) std::cout << ext::optionsTable();
  if (f.boolean("effective")) {
    Config c;
    Status st = c.loadFromEnv();
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    std::cout << c.dump() << "\n";
  }
  if (f.boolean("gpu")) {
    std::shared_ptr<const cuda::DriverApi> api;
    Status st = cuda::loadDriver("system", api);
    cuda::Availability a;
    if (st.ok()) {
      a = cuda::probe(*api);
      st = a.status;
    }
    nlohmann::json j = {{"available", st.ok()}};
    if (!st.ok()) j["why"] = st.message();
    if (api) j["library"] = api->provider;
    if (a.driver_version) j["driver_version"] = a.driver_version;
    for (size_t i = 0; i < a.devices.size(); ++i)
      j["devices"].push_back(
          {{"ordinal", i}, {"name", a.devices[i]}, {"uuid", cuda::deviceUuid(*api, static_cast<int>(i))}});
    std::cout << j.dump(2) << "\n";
  }
  if (f.f64("gpu_copy") > 0) {
    nlohmann::json j;
    Status st = gpuCopyBaselines(f.f64("gpu_copy"), j);
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    std::cout << j.dump() << "\n";
  }
  if (f.boolean("transports")) {
    auto c = inspectorConfig(f);
    Status st = c->loadFromEnv();  // the devices and provider the user's engines would use
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    TransferEngine engine(c);
    if (!engine.available()) {
      std::cerr << engine.initStatus().ToString() << "\n";
      return 1;
    }
    std::cout << ext::inspectTransports(engine) << "\n";
  }
  if (!f.str("segment").empty() || !f.str("probe").empty()) {
    TransferEngine engine(inspectorConfig(f));
    if (!engine.available()) {
      std::cerr << engine.initStatus().ToString() << "\n";
      return 1;
    }
    if (!f.str("probe").empty()) {
      Status st = ext::probe(engine, f.str("probe"));
      std::cout << f.str("probe") << ": " << st.ToString() << "\n";
      if (!st.ok()) return 1;
    }
    if (!f.str("segment").empty()) {
      SegmentID id;
      Status st = engine.openSegment(id, f.str("segment"));
      SegmentInfo info;
      if (st.ok()) st = engine.getSegmentInfo(id, info);
      if (!st.ok()) {
        std::cerr << st.ToString() << "\n";
        return 1;
      }
      std::cout << "segment " << f.str("segment") << " (" << (info.type == SegmentInfo::File ? "file, " : "")
                << "transport " << ext::transportName(engine, id) << "): " << info.buffers.size()
                << " buffer(s)\n";
      for (auto& b : info.buffers)
        std::printf("  base 0x%llx  length %llu  %s\n", static_cast<unsigned long long>(b.base),
                    static_cast<unsigned long long>(b.length), b.location.c_str());
      std::vector<ext::ExposedFile> files;
      if (ext::exposedFiles(engine, id, files).ok())
        for (auto& fd : files)
          std::printf("  file '%s' (open as '%s#%s'): %s, %llu bytes, %s\n", fd.name.c_str(),
                      f.str("segment").c_str(), fd.name.c_str(), fd.path.c_str(),
                      static_cast<unsigned long long>(fd.length), fd.read_only ? "read-only" : "read-write");
    }
  }
  if (!f.str("selection").empty()) {
    auto c = inspectorConfig(f);
    Status st = c->loadFromEnv();  // the policies the user's engines would run with
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    TransferEngine engine(c);
    SegmentID id;
    st = engine.available() ? engine.openSegment(id, f.str("selection")) : engine.initStatus();
    std::string table;
    if (st.ok()) st = ext::describeSelection(engine, id, table);
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    std::cout << table << "\n";
  }
  if (!f.str("latency").empty()) {
    auto c = inspectorConfig(f);
    TransferEngine engine(c);
    if (!engine.available()) {
      std::cerr << engine.initStatus().ToString() << "\n";
      return 1;
    }
    const std::string seg_name = f.str("latency");
    const int64_t n = std::max<int64_t>(1, f.i64("iterations"));
    using Clock = std::chrono::steady_clock;
    auto us = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
    std::vector<double> open_us, refresh_us;
    for (int64_t i = 0; i < n; ++i) {  // open + close: every open is a fresh lookup
      SegmentID id;
      auto t0 = Clock::now();
      Status st = engine.openSegment(id, seg_name);
      open_us.push_back(us(Clock::now() - t0));
      if (!st.ok()) {
        std::cerr << st.ToString() << "\n";
        return 1;
      }
      engine.closeSegment(id).IgnoreError();
    }
    SegmentID id;
    if (!engine.openSegment(id, seg_name).ok()) return 1;
    for (int64_t i = 0; i < n; ++i) {  // getSegmentInfo re-fetches the descriptor
      SegmentInfo info;
      auto t0 = Clock::now();
      Status st = engine.getSegmentInfo(id, info);
      refresh_us.push_back(us(Clock::now() - t0));
      if (!st.ok()) return 1;
    }
    auto pct = [](std::vector<double> v, double p) {
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()))];
    };
    std::string type = c->get("metadata/type", "p2p");
    std::printf("%s: openSegment p50 %.1f us p99 %.1f us; refresh p50 %.1f us p99 %.1f us\n",
                f.str("metadata_server").c_str(), pct(open_us, 50), pct(open_us, 99), pct(refresh_us, 50),
                pct(refresh_us, 99));
    if (f.boolean("json"))
      std::printf("{\"metadata\":\"%s\",\"open_us_p50\":%.1f,\"open_us_p99\":%.1f,\"refresh_us_p50\":%.1f,"
                  "\"refresh_us_p99\":%.1f}\n",
                  type.c_str(), pct(open_us, 50), pct(open_us, 99), pct(refresh_us, 50), pct(refresh_us, 99));
  }
  return 0;
}
