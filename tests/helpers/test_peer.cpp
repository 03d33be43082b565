// ferry-test-peer: a target process for the multi-process tests.
// Flags: --port=N --buffer_size=B [--metadata=URI --name=SEGMENT] (default: p2p)
//        [--alloc]: buffers from allocateLocalMemory (shared-memory files) instead of the heap.
//        [--gpu]: buffers from allocateLocalMemory("cuda:0") over the fake CUDA driver.
//        [--config=JSON]: merged into the engine's config.
//        [--hold_notifications]: notifications stay in the inbox until `notifs`.
//        [--extra_buffers=N]: N more small read-only buffers (a large descriptor).
// Registers three buffers (read-write, read-only, local-only), prints one JSON line
// describing them, then serves commands on stdin, one per line:
//   notifs  -> {"notifs":[{"name":..,"msg":..,"check":"ok"|"bad"|""}...]}
//   hash ADDR LEN -> {"hash":"<fnv1a64 hex>"}
//   unregister ADDR -> {"status":"OK"|"<error>","ms":<how long it took>}
//   copy_delay US -> {"status":"OK"}: (--gpu) the fake driver's copies start up to US late
//   refuse_copy N -> {"status":"OK"}: (--gpu) the fake driver refuses its N-th next copy
//   quit
// A notification whose msg is "verify ADDR LEN HASH" is checked against our memory at the
// moment it is received, which is how the tests prove a notification follows its data.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_cuda.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "metadata_service.h"
#include "test_util.h"

using namespace ferry;

int main(int argc, char** argv) {
  std::string port = "0";
  std::string metadata, name;
  bool alloc = false, hold_notifications = false, gpu = false;
  std::string extra_config;
  size_t size = 64 << 20, extra_buffers = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--port=", 0) == 0) port = a.substr(7);
    if (a.rfind("--buffer_size=", 0) == 0) size = std::stoull(a.substr(14));
    if (a.rfind("--metadata=", 0) == 0) metadata = a.substr(11);
    if (a.rfind("--name=", 0) == 0) name = a.substr(7);
    if (a == "--alloc") alloc = true;
    if (a == "--gpu") gpu = true;
    if (a == "--hold_notifications") hold_notifications = true;
    if (a.rfind("--config=", 0) == 0) extra_config = a.substr(9);
    if (a.rfind("--extra_buffers=", 0) == 0) extra_buffers = std::stoull(a.substr(16));
  }
  auto config = std::make_shared<Config>();
  config->set("rpc/bind_address", "127.0.0.1");
  config->set<int64_t>("rpc/port", std::stoll(port));
  test::configureMetadata(*config, metadata, name);
  if (gpu) {
    test::installFakeCuda(2);
    config->set("cuda/provider", "fake");
    alloc = true;
  }
  if (!extra_config.empty()) {
    Status loaded = config->load(extra_config);
    if (!loaded.ok()) {
      std::printf("{\"error\":\"%s\"}\n", loaded.ToString().c_str());
      return 1;
    }
  }
  // Memory peers write into outlives the engine (declared first, destroyed last): the
  // engine's server threads are joined before it goes.
  std::vector<uint8_t> heap_rw, heap_ro, heap_local, extra(extra_buffers * 64);
  TransferEngine engine(config);
  if (!engine.available()) {
    std::printf("{\"error\":\"%s\"}\n", engine.initStatus().ToString().c_str());
    return 1;
  }
  // Heap buffers are registered; --alloc ones come registered from the engine.
  uint8_t *rw = nullptr, *ro = nullptr, *local = nullptr;
  Status st;
  if (alloc) {
    void *p1 = nullptr, *p2 = nullptr, *p3 = nullptr;
    const Location where = gpu ? "cuda:0" : kWildcardLocation;
    MemoryOptions o_rw{where, kGlobalReadWrite}, o_ro{where, kGlobalReadOnly},
        o_local{where, kLocalReadWrite};  // the API takes them by reference
    st = engine.allocateLocalMemory(&p1, size, o_rw);
    if (st.ok()) st = engine.allocateLocalMemory(&p2, 1 << 16, o_ro);
    if (st.ok()) st = engine.allocateLocalMemory(&p3, 1 << 16, o_local);
    rw = static_cast<uint8_t*>(p1), ro = static_cast<uint8_t*>(p2), local = static_cast<uint8_t*>(p3);
  } else {
    heap_rw.resize(size), heap_ro.resize(1 << 16), heap_local.resize(1 << 16);
    rw = heap_rw.data(), ro = heap_ro.data(), local = heap_local.data();
    test::fillPattern(rw, size, 7);  // set before it is offered
    test::fillPattern(ro, 1 << 16, 8);
    st = engine.registerLocalMemory(rw, size, kGlobalReadWrite);
    if (st.ok()) st = engine.registerLocalMemory(ro, 1 << 16, kGlobalReadOnly);
    if (st.ok()) st = engine.registerLocalMemory(local, 1 << 16, kLocalReadWrite);
  }
  // GPU memory (--gpu) is not the host's to touch: its bytes go in and out through the engine.
  // Host memory is filled and hashed in place (peers write it concurrently on purpose; the
  // helpers are not instrumented for TSan).
  auto fill = [&](uint8_t* p, size_t n, uint64_t seed) {
    if (!gpu) {
      test::fillPattern(p, n, seed);
      return Status::OK();
    }
    std::vector<uint8_t> bytes(n);
    test::fillPattern(bytes.data(), n, seed);
    return ext::copyLocal(engine, p, bytes.data(), n);
  };
  auto hashOf = [&](uint64_t addr, uint64_t len) {
    if (!gpu) return test::hashHex(reinterpret_cast<const uint8_t*>(addr), len);
    std::vector<uint8_t> bytes(len);
    Status copied = ext::copyLocal(engine, bytes.data(), reinterpret_cast<const void*>(addr), len);
    return copied.ok() ? test::hashHex(bytes.data(), len) : std::string("unreadable");
  };
  if (st.ok() && alloc) {  // allocated registered: filled before anyone is told where it is
    st = fill(rw, size, 7);
    if (st.ok()) st = fill(ro, 1 << 16, 8);
  }
  for (size_t i = 0; st.ok() && i < extra_buffers; ++i)
    st = engine.registerLocalMemory(extra.data() + 64 * i, 64, kGlobalReadOnly);
  std::string exported;
  if (st.ok()) st = engine.exportLocalSegment(exported);
  if (!st.ok()) {
    std::printf("{\"error\":\"%s\"}\n", st.ToString().c_str());
    return 1;
  }
  nlohmann::json hello = {{"segment", engine.getSegmentName()},
                          {"port", engine.getRpcServerPort()},
                          {"rw", reinterpret_cast<uint64_t>(rw)},
                          {"rw_len", size},
                          {"ro", reinterpret_cast<uint64_t>(ro)},
                          {"local", reinterpret_cast<uint64_t>(local)},
                          {"export", exported}};
  std::printf("%s\n", hello.dump().c_str());
  std::fflush(stdout);

  nlohmann::json seen = nlohmann::json::array();
  auto drain = [&] {
    std::vector<Notification> ns;
    engine.receiveNotification(ns).IgnoreError();
    for (auto& n : ns) {
      std::string check;
      std::istringstream is(n.msg);
      std::string word;
      uint64_t addr, len;
      std::string want;
      if (is >> word && word == "verify" && is >> addr >> len >> want) {
        bool inside = addr >= reinterpret_cast<uint64_t>(rw) &&
                      addr + len <= reinterpret_cast<uint64_t>(rw) + size;
        check = inside && hashOf(addr, len) == want ? "ok" : "bad";
      }
      seen.push_back({{"name", n.name}, {"msg", n.msg}, {"check", check}});
    }
  };
  std::string line;
  while (true) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int pr = ::poll(&p, 1, 1);
    if (!hold_notifications) drain();  // check notifications as soon as they land
    if (pr <= 0) continue;
    if (!std::getline(std::cin, line) || line == "quit") break;
    std::istringstream is(line);
    std::string cmd;
    is >> cmd;
    if (cmd == "notifs") {
      drain();
      std::printf("%s\n", nlohmann::json({{"notifs", seen}}).dump().c_str());
      seen = nlohmann::json::array();
    } else if (cmd == "hash") {
      uint64_t addr, len;
      is >> addr >> len;
      std::printf("{\"hash\":\"%s\"}\n", hashOf(addr, len).c_str());
    } else if (cmd == "unregister") {
      uint64_t addr = 0;
      is >> addr;
      auto t0 = std::chrono::steady_clock::now();
      Status st = engine.unregisterLocalMemory(reinterpret_cast<void*>(addr));
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s\n", nlohmann::json({{"status", st.ToString()}, {"ms", ms}}).dump().c_str());
    } else if (cmd == "copy_delay" && gpu) {
      int us = 0;
      is >> us;
      test::setFakeCudaCopyDelay(us);
      std::printf("{\"status\":\"OK\"}\n");
    } else if (cmd == "refuse_copy" && gpu) {
      int64_t after = -1;
      is >> after;
      test::setFakeCudaRefuseCopy(after);
      std::printf("{\"status\":\"OK\"}\n");
    } else {
      std::printf("{\"error\":\"unknown command\"}\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
