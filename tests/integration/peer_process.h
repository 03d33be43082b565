// Starts ferry-test-peer as a separate process and reads its buffers from its first line;
// BackendTest runs a multi-process test once per metadata backend.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "metadata_service.h"
#include "test_util.h"

namespace ferry::test {

struct PeerProcess {
  ChildProcess proc;
  std::string segment, exported;
  uint16_t port = 0;
  uint64_t rw = 0, rw_len = 0, ro = 0, local = 0;
  // Set before start():
  ChildProcess::Options child;      // environment, stderr file, descriptor limit
  std::vector<std::string> prefix;  // runs the peer under this (e.g. unshare)
  std::string config;               // JSON merged into the peer's config
  bool hold_notifications = false;  // notifications wait in the inbox until `notifs`
  size_t extra_buffers = 0;         // more small buffers registered (a large descriptor)
  bool gpu = false;                 // buffers in (fake) GPU memory, cuda:0 of the peer

  /// port 0: any free port. With a metadata URI the peer publishes itself there as `name`.
  /// `alloc`: the peer's buffers come from allocateLocalMemory (shared-memory files).
  ::testing::AssertionResult start(uint16_t want_port = 0, size_t buffer_size = 64 << 20,
                                   const std::string& metadata = "", const std::string& name = "",
                                   bool alloc = false) {
    std::vector<std::string> argv = prefix;
    for (std::string a : {binPath("ferry-test-peer"), "--port=" + std::to_string(want_port),
                          "--buffer_size=" + std::to_string(buffer_size)})
      argv.push_back(a);
    if (alloc) argv.push_back("--alloc");
    if (gpu) argv.push_back("--gpu");
    if (!config.empty()) argv.push_back("--config=" + config);
    if (hold_notifications) argv.push_back("--hold_notifications");
    if (extra_buffers) argv.push_back("--extra_buffers=" + std::to_string(extra_buffers));
    if (!metadata.empty()) argv.push_back("--metadata=" + metadata);
    if (!name.empty()) argv.push_back("--name=" + name);
    if (!proc.start(argv, child)) return ::testing::AssertionFailure() << "cannot start ferry-test-peer";
    std::string line = proc.readLine();
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("segment"))
      return ::testing::AssertionFailure() << "peer said: '" << line << "'";
    segment = j["segment"];
    exported = j["export"];
    port = j["port"];
    rw = j["rw"];
    rw_len = j["rw_len"];
    ro = j["ro"];
    local = j["local"];
    return ::testing::AssertionSuccess();
  }

  nlohmann::json command(const std::string& cmd) {
    proc.writeLine(cmd);
    auto j = nlohmann::json::parse(proc.readLine(), nullptr, false);
    return j;
  }
  /// The peer's hash of its own bytes [addr, addr+len).
  std::string hash(uint64_t addr, uint64_t len) {
    auto j = command("hash " + std::to_string(addr) + " " + std::to_string(len));
    return j.is_object() && j.contains("hash") ? j["hash"].get<std::string>() : "";
  }
};

/// Writes then reads back 1 B .. 64 MiB between unaligned ranges of `mem` (>= 130 MiB,
/// registered) and the peer's read-write buffer, checking the peer's bytes and ours; over
/// the transport `hint` names, when given.
inline void expectRoundTripsAllSizes(TransferEngine& engine, SegmentID seg, PeerProcess& peer,
                                     std::vector<uint8_t>& mem, uint64_t seed, const char* hint = nullptr) {
  const size_t sizes[] = {1, 7, 4095, 4097, 65536 + 3, (1 << 20) + 13, (8 << 20) - 1, 64 << 20};
  uint8_t* out = mem.data() + 3;                // unaligned local source
  uint8_t* back = mem.data() + (65 << 20) + 1;  // unaligned local destination
  for (size_t n : sizes) {
    uint64_t target = peer.rw + (n == (64u << 20) ? 0 : 5);  // unaligned remote
    fillPattern(out, n, n + seed);
    ASSERT_TRUE(runBatch(engine, {Request{Request::WRITE, out, seg, target, n, hint}}).ok()) << n;
    EXPECT_EQ(peer.hash(target, n), hashHex(out, n)) << n;
    std::memset(back, 0, n);
    ASSERT_TRUE(runBatch(engine, {Request{Request::READ, back, seg, target, n, hint}}).ok()) << n;
    ASSERT_EQ(std::memcmp(back, out, n), 0) << n;
  }
}

/// A test run once per metadata backend: p2p (no service; segments are host:port), and a
/// real ferry-metadata, etcd and redis-server started for the test.
class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    service = std::make_unique<MetadataService>(GetParam());
    Status st = service->start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  bool p2p() const { return service->isP2p(); }
  /// This process's engine config on the test's backend.
  std::shared_ptr<Config> engineConfig(int64_t transfer_timeout_ms = 10000) {
    auto c = loopbackConfig(transfer_timeout_ms);
    if (!p2p()) service->configure(*c, "initiator");
    return c;
  }
  /// Starts a peer published on the test's backend (as "target" unless p2p).
  ::testing::AssertionResult startPeer(PeerProcess& peer, uint16_t port = 0) {
    return peer.start(port, 64 << 20, service->url(), p2p() ? "" : "target");
  }
  std::unique_ptr<MetadataService> service;
};

#define FERRY_INSTANTIATE_ON_ALL_BACKENDS(suite)                                                    \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("p2p", "http", "etcd", "redis"), \
                           [](const auto& info) { return info.param; })

}  // namespace ferry::test
