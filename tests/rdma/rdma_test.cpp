// The rdma transport's logic, driven through real engines over the in-process verbs
// emulation (fake_verbs.h), and its pure parts (GID choice, handshake codec) on their own.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/http.h"
#include "fake_verbs.h"
#include "ferry/engine_ext.h"
#include "ferry/log.h"
#include "ferry/transfer_engine.h"
#include "model/slice.h"
#include "test_util.h"
#include "transport/rdma/rdma_gid.h"
#include "transport/rdma/rdma_wire.h"

namespace ferry {
namespace {

using rdma::GidCandidate;
using rdma::fake::FakeFabric;
using rdma::fake::NicSpec;
using Clock = std::chrono::steady_clock;

// ---- GID choice ----

GidCandidate gid(uint32_t index, GidCandidate::Type type, std::initializer_list<uint8_t> head,
                 std::initializer_list<uint8_t> tail, bool netdev = true) {
  GidCandidate c;
  c.index = index;
  c.type = type;
  c.has_netdev = netdev;
  std::copy(head.begin(), head.end(), c.gid);
  std::copy(tail.begin(), tail.end(), c.gid + 16 - tail.size());
  return c;
}
const std::initializer_list<uint8_t> kLinkLocal = {0xfe, 0x80};
const std::initializer_list<uint8_t> kGlobal6 = {0xfd, 0x00};
const std::initializer_list<uint8_t> kNone = {};
GidCandidate v4(uint32_t index, GidCandidate::Type t, bool netdev = true) {
  return gid(index, t, kNone, {0xff, 0xff, 10, 0, 0, 1}, netdev);
}

uint32_t pick(const std::vector<GidCandidate>& t, bool ib = false, int wanted = -1) {
  uint32_t index = 999;
  std::string why;
  Status st = rdma::selectGid(t, ib, wanted, "mlx5_0", index, why);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return index;
}

TEST(RdmaGid, RoceV2Ipv4MappedWithNetdevWins) {
  EXPECT_EQ(pick({gid(0, GidCandidate::kRoceV1, kLinkLocal, {1}), gid(1, GidCandidate::kRoceV2, kLinkLocal, {1}),
                  v4(2, GidCandidate::kRoceV1), v4(3, GidCandidate::kRoceV2)}),
            3u);
}

TEST(RdmaGid, FallbacksInOrder) {
  // No IPv4-mapped: a global IPv6 RoCEv2 GID with a netdev, then one without, then link-local.
  EXPECT_EQ(pick({gid(0, GidCandidate::kRoceV2, kLinkLocal, {1}), gid(1, GidCandidate::kRoceV2, kGlobal6, {1}, false),
                  gid(2, GidCandidate::kRoceV2, kGlobal6, {2})}),
            2u);
  EXPECT_EQ(pick({gid(0, GidCandidate::kRoceV2, kLinkLocal, {1}), gid(1, GidCandidate::kRoceV2, kGlobal6, {1}, false)}),
            1u);
  EXPECT_EQ(pick({gid(0, GidCandidate::kRoceV1, kGlobal6, {1}), gid(4, GidCandidate::kRoceV2, kLinkLocal, {1})}), 4u);
}

TEST(RdmaGid, RoceV1AndNullGidsAreNeverChosen) {
  uint32_t index = 0;
  std::string why;
  GidCandidate null_v2;
  null_v2.type = GidCandidate::kRoceV2;
  Status st = rdma::selectGid({gid(0, GidCandidate::kRoceV1, kLinkLocal, {1}), v4(1, GidCandidate::kRoceV1), null_v2},
                              false, -1, "mlx5_3", index, why);
  EXPECT_EQ(st.code(), Status::Code::kNotFound);
  EXPECT_NE(st.message().find("mlx5_3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("gid_index"), std::string::npos) << "the message says how to override";
}

TEST(RdmaGid, InfinibandTakesTheFirstIbGidAndAnExplicitIndexIsHonoured) {
  EXPECT_EQ(pick({gid(0, GidCandidate::kIb, kLinkLocal, {7})}, true), 0u);
  EXPECT_EQ(pick({gid(0, GidCandidate::kRoceV2, kLinkLocal, {1}), gid(1, GidCandidate::kRoceV1, kGlobal6, {1})}, false,
                 1),
            1u);
  uint32_t index;
  std::string why;
  EXPECT_FALSE(rdma::selectGid({v4(0, GidCandidate::kRoceV2)}, false, 5, "x", index, why).ok())
      << "an index the table lacks is an error, not a silent fallback";
}

// ---- handshake codec ----

rdma_wire::ConnectInfo sampleInfo() {
  rdma_wire::ConnectInfo i;
  i.initiator_instance = "inst-a";
  i.target_instance = "inst-b";
  i.initiator_device = "mlx5_0";
  i.target_device = "mlx5_1";
  i.lid = 7;
  i.gid[15] = 9;
  i.mtu = IBV_MTU_1024;
  i.qp_nums = {0x123, 0xffffff};
  i.psns = {1, 0xabcdef};
  return i;
}

TEST(RdmaWire, RoundTrip) {
  rdma_wire::ConnectInfo in = sampleInfo(), out;
  ASSERT_TRUE(rdma_wire::decode(rdma_wire::encode(in), out).ok());
  EXPECT_EQ(out.initiator_instance, in.initiator_instance);
  EXPECT_EQ(out.target_instance, in.target_instance);
  EXPECT_EQ(out.initiator_device, in.initiator_device);
  EXPECT_EQ(out.target_device, in.target_device);
  EXPECT_EQ(out.lid, 7);
  EXPECT_EQ(out.gid[15], 9);
  EXPECT_EQ(out.mtu, IBV_MTU_1024);
  EXPECT_EQ(out.qp_nums, in.qp_nums);
  EXPECT_EQ(out.psns, in.psns);
}

TEST(RdmaWire, MalformedBodiesAreRefused) {
  const std::string good = rdma_wire::encode(sampleInfo());
  rdma_wire::ConnectInfo out;
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(rdma_wire::decode(std::string_view(good).substr(0, n), out).ok()) << "truncated at " << n;
  EXPECT_FALSE(rdma_wire::decode(good + "x", out).ok()) << "trailing bytes";
  auto mutate = [&](auto&& f) {
    rdma_wire::ConnectInfo i = sampleInfo();
    f(i);
    return rdma_wire::decode(rdma_wire::encode(i), out);
  };
  EXPECT_EQ(mutate([](auto& i) { i.version = 2; }).code(), Status::Code::kNotSupported);
  EXPECT_FALSE(mutate([](auto& i) { i.mtu = 6; }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.mtu = 0; }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.qp_nums.clear(); i.psns.clear(); }).ok());
  EXPECT_FALSE(mutate([](auto& i) {
                 i.qp_nums.assign(rdma_wire::kMaxQpsPerPath + 1, 5);
                 i.psns.assign(rdma_wire::kMaxQpsPerPath + 1, 5);
               }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.qp_nums[0] = 1u << 24; }).ok()) << "QP numbers are 24 bits";
  EXPECT_FALSE(mutate([](auto& i) { i.qp_nums[0] = 0; }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.psns[1] = 1u << 24; }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.target_device = ""; }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.initiator_device = "mlx5 0"; }).ok()) << "names are plain";
  EXPECT_FALSE(mutate([](auto& i) { i.initiator_device.assign(65, 'x'); }).ok());
  EXPECT_FALSE(mutate([](auto& i) { i.target_instance.assign(129, 'x'); }).ok());
}

// ---- engines over the emulation ----

int threadCount() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

std::shared_ptr<Config> rdmaConfig(const std::string& devices, int64_t timeout_ms = 10000) {
  auto c = test::loopbackConfig(timeout_ms);
  c->set<std::string>("transports/rdma/provider", "emulated");
  c->set<std::string>("transports/rdma/devices", devices);
  c->set<bool>("transports/shm/enable", false);  // same machine here: rdma before tcp
  c->set<int64_t>("transports/rdma/path_cooldown_ms", 200);
  c->set<int64_t>("transports/rdma/path_cooldown_max_ms", 400);
  return c;
}

class RdmaEngines : public ::testing::Test {
 protected:
  static constexpr size_t kSize = 48 << 20;

  void SetUp() override {
    for (const char* n : {"a0", "a1", "b0", "b1"}) fabric.addNic({.name = n});
    local.resize(kSize);
    remote.resize(kSize);
    ro.resize(1 << 20);
  }
  void TearDown() override {
    a.reset();
    b.reset();
    EXPECT_EQ(fabric.live().total(), 0) << "verbs objects leaked: qps " << fabric.live().qps << ", mrs "
                                        << fabric.live().mrs << ", cqs " << fabric.live().cqs;
    EXPECT_EQ(fabric.capacityViolations(), 0u) << "a send queue or a CQ was overrun";
  }

  void start(std::shared_ptr<Config> ca = nullptr, std::shared_ptr<Config> cb = nullptr) {
    a = std::make_unique<TransferEngine>(ca ? ca : rdmaConfig("a0,a1"));
    b = std::make_unique<TransferEngine>(cb ? cb : rdmaConfig("b0,b1"));
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    ASSERT_TRUE(b->available()) << b->initStatus().ToString();
    ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
    ASSERT_TRUE(b->registerLocalMemory(remote.data(), remote.size(), kGlobalReadWrite).ok());
    ASSERT_TRUE(b->registerLocalMemory(ro.data(), ro.size(), kGlobalReadOnly).ok());
    Status st = a->openSegment(seg, b->getSegmentName());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  Request req(Request::OpCode op, size_t local_off, size_t remote_off, size_t len, const char* hint = "rdma") {
    Request r{op, local.data() + local_off, seg, reinterpret_cast<uint64_t>(remote.data() + remote_off), len};
    r.transport_hint = hint;
    return r;
  }

  // Moves `len` bytes both ways at the given offsets and checks every byte.
  void roundTrip(size_t off, size_t len, const char* hint = "rdma", uint64_t seed = 1) {
    test::fillPattern(local.data() + off, len, seed);
    Status st = test::runBatch(*a, {req(Request::WRITE, off, off, len, hint)});
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(std::memcmp(remote.data() + off, local.data() + off, len), 0);
    test::fillPattern(remote.data() + off, len, seed + 1);
    st = test::runBatch(*a, {req(Request::READ, off, off, len, hint)});
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(std::memcmp(remote.data() + off, local.data() + off, len), 0);
  }

  FakeFabric fabric;
  std::vector<uint8_t> local, remote, ro;  // before the engines: they outlive them
  std::unique_ptr<TransferEngine> a, b;
  SegmentID seg = 0;
};

// Fresh bytes a word at a time, and a plain comparison: the 1,000-request test moves ~2 GB,
// also in the sanitizer builds. Not instrumented for ThreadSanitizer (the emulated NIC's
// copies are, and they are what a race would involve).
__attribute__((no_sanitize("thread"))) void fastFill(uint8_t* p, size_t len, uint64_t seed) {
  uint64_t x = seed | 1;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(p + i, &x, 8);
  }
  for (; i < len; ++i) p[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
}

__attribute__((no_sanitize("thread"))) bool sameBytes(const uint8_t* a, const uint8_t* b, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y) return false;
  }
  for (; i < len; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

TEST_F(RdmaEngines, ThousandRandomRequestsVerifiedAndStripedOverBothNics) {
  start();
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_size(std::log(4096.0), std::log(16.0 * (1 << 20)));
  size_t requests = 0;
  uint64_t bytes = 0;
  while (requests < 1000) {
    const bool write = rng() & 1;
    const size_t want = std::min<size_t>(1000 - requests, 1 + rng() % 128);
    std::vector<Request> batch;
    std::vector<std::pair<size_t, size_t>> ranges;  // non-overlapping: every byte is checkable
    size_t cursor = rng() % 4096;
    for (size_t i = 0; i < want; ++i) {
      size_t len = static_cast<size_t>(std::exp(log_size(rng)));
      if (cursor + len > kSize) break;
      ranges.emplace_back(cursor, len);
      cursor += len + rng() % 8192;
    }
    if (ranges.empty()) continue;
    for (auto [off, len] : ranges) {
      // Sender bytes fresh for every request; the receiver's side poisoned.
      uint64_t seed = rng();
      fastFill((write ? local : remote).data() + off, len, seed);
      std::memset((write ? remote : local).data() + off, 0xee, len);
      batch.push_back(req(write ? Request::WRITE : Request::READ, off, off, len));
      bytes += len;
    }
    TransferStatus ts;
    Status st = test::runBatch(*a, batch, std::chrono::seconds(30), &ts);
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (auto [off, len] : ranges)
      ASSERT_TRUE(sameBytes(local.data() + off, remote.data() + off, len))
          << (write ? "write" : "read") << " of " << len << " at " << off;
    requests += ranges.size();
  }
  const double via0 = static_cast<double>(fabric.bytesVia("a0")), via1 = static_cast<double>(fabric.bytesVia("a1"));
  EXPECT_EQ(fabric.bytesVia("b0") + fabric.bytesVia("b1"), 0u) << "one-sided: the target posts nothing";
  EXPECT_EQ(static_cast<uint64_t>(via0 + via1), bytes);
  EXPECT_LT(std::abs(via0 - via1) / std::max(via0, via1), 0.10) << "a0 " << via0 << " a1 " << via1;
  // Selective signaling: far fewer completions asked for than requests posted.
  EXPECT_LT(fabric.signaledRequests() * 3, fabric.postedRequests())
      << fabric.signaledRequests() << " signaled of " << fabric.postedRequests();
  EXPECT_EQ(ext::transportName(*a, seg), "rdma");
}

TEST_F(RdmaEngines, MtuIsTheSmallerOfBothEnds) {
  // Mooncake #3868: mixed active MTUs must agree on the smaller; the emulated responder
  // refuses packets of another MTU than its own, so moving data proves both sides chose 1024.
  fabric.addNic({.name = "c0", .active_mtu = IBV_MTU_1024, .ipv4_last = 3});
  start(nullptr, rdmaConfig("c0"));
  roundTrip(4096, 3 << 20);
}

TEST_F(RdmaEngines, InfinibandPortsConnectByLid) {
  fabric.addNic({.name = "ib0", .infiniband = true, .ipv4_last = 5});
  fabric.addNic({.name = "ib1", .infiniband = true, .ipv4_last = 6});
  start(rdmaConfig("ib0"), rdmaConfig("ib1"));
  roundTrip(0, 1 << 20);
}

TEST_F(RdmaEngines, ReadOnlyAndUnregisteredTargetsAreRefusedByTheNic) {
  start();
  // The descriptor says read-only: refused before anything is posted.
  Request w{Request::WRITE, local.data(), seg, reinterpret_cast<uint64_t>(ro.data()), 4096};
  w.transport_hint = "rdma";
  TransferStatus ts;
  EXPECT_FALSE(test::runBatch(*a, {w}, std::chrono::seconds(10), &ts).ok());
  // A stale key: the target took its buffer back and registered it again (a new key). Our
  // descriptor is stale, the NIC refuses the old key, and the refusal is final: the task
  // fails, it is not retried elsewhere (over tcp it would have succeeded).
  roundTrip(0, 1 << 20);
  ASSERT_TRUE(b->unregisterLocalMemory(remote.data()).ok());
  ASSERT_TRUE(b->registerLocalMemory(remote.data(), remote.size(), kGlobalReadWrite).ok());
  Request stale = req(Request::WRITE, 0, 0, 1 << 20, nullptr);
  Status st = test::runBatch(*a, {stale}, std::chrono::seconds(10), &ts);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(ts.s, FAILED) << "not retried over tcp, where it would have succeeded";
  // Again, with nothing over tcp (whose answers would carry the peer's new version): one
  // slice pinned to rdma is refused; that makes us ask the peer's registry version, and the
  // next transfer runs on a refreshed descriptor, with the new key, over rdma.
  roundTrip(0, 1 << 20, "rdma", 8);
  ASSERT_TRUE(b->unregisterLocalMemory(remote.data()).ok());
  ASSERT_TRUE(b->registerLocalMemory(remote.data(), remote.size(), kGlobalReadWrite).ok());
  EXPECT_FALSE(test::runBatch(*a, {req(Request::WRITE, 0, 0, 64 << 10)}, std::chrono::seconds(10), &ts).ok());
  roundTrip(0, 64 << 10, "rdma", 9);
}

TEST_F(RdmaEngines, AForgedDescriptorCannotWidenWhatTheNicAllows) {
  // The peer's descriptor is a claim: forge one that makes the read-only buffer writable and
  // a registered buffer twice as long. The NIC checks the key's own registration, so neither
  // write lands (over rdma pinned: no other transport is involved).
  start();
  std::vector<uint8_t> arena(2 << 20, 0x5a);  // only the first half is registered
  ASSERT_TRUE(b->registerLocalMemory(arena.data(), 1 << 20, kGlobalReadWrite).ok());
  SegmentDescriptor d = test::localDescriptor(*b);
  for (auto& buf : d.buffers) {
    if (buf.base == reinterpret_cast<uint64_t>(ro.data())) buf.perm = kGlobalReadWrite;
    if (buf.base == reinterpret_cast<uint64_t>(arena.data())) buf.length = arena.size();
  }
  SegmentID forged;
  ASSERT_TRUE(a->importRemoteSegment(forged, "ferry-segment:v1:" + base64Encode(d.toJson())).ok());
  const std::vector<uint8_t> ro_before = ro;
  test::fillPattern(local.data(), 1 << 20, 77);
  for (uint64_t target : {reinterpret_cast<uint64_t>(ro.data()), reinterpret_cast<uint64_t>(arena.data()) + (1 << 20)}) {
    Request w{Request::WRITE, local.data(), forged, target, 64 << 10};
    w.transport_hint = "rdma";
    TransferStatus ts;
    EXPECT_FALSE(test::runBatch(*a, {w}, std::chrono::seconds(10), &ts).ok());
    EXPECT_EQ(ts.s, FAILED);
  }
  EXPECT_EQ(ro, ro_before) << "the read-only buffer was written";
  EXPECT_TRUE(std::all_of(arena.begin() + (1 << 20), arena.end(), [](uint8_t v) { return v == 0x5a; }))
      << "bytes landed outside what the owner registered";
  ASSERT_TRUE(a->closeSegment(forged).ok());
  b.reset();  // before `arena` goes
}

TEST_F(RdmaEngines, LinkLossMovesSlicesToTheOtherNicAndThePairComesBack) {
  start();
  roundTrip(0, 8 << 20);  // both paths up
  const uint64_t before0 = fabric.bytesVia("a0");
  fabric.setLinkDown("b0", true);
  for (int i = 0; i < 4; ++i) roundTrip(0, 8 << 20, "rdma", 10 + i);
  const uint64_t during0 = fabric.bytesVia("a0");
  EXPECT_LT(during0 - before0, 8u << 20) << "rail 0 was paused after its failure";
  fabric.setLinkDown("b0", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(450));  // past the (doubled) cooldown
  for (int i = 0; i < 4; ++i) roundTrip(0, 8 << 20, "rdma", 20 + i);
  EXPECT_GT(fabric.bytesVia("a0"), during0 + (4u << 20)) << "rail 0 is used again after its pause";
}

TEST_F(RdmaEngines, FirstContactConnectsEveryRailSoAFailedSliceStaysOnRdma) {
  start();
  roundTrip(0, 64 << 10);  // one slice: still both rail-aligned paths come up
  fabric.setLinkDown("b0", true);
  // Pinned to rdma (no failover to tcp): a slice lost on rail 0 is re-posted on rail 1.
  for (int i = 0; i < 4; ++i) roundTrip(0, 64 << 10, "rdma", 30 + i);
  EXPECT_GT(fabric.bytesVia("a1"), 0u);
  fabric.setLinkDown("b0", false);
}

TEST_F(RdmaEngines, OurPortGoingDownIsSeenAtOnceAndItsComebackToo) {
  start();
  roundTrip(0, 4 << 20);  // both paths up
  auto stateOf = [&](const std::string& nic) {
    auto j = nlohmann::json::parse(ext::inspectTransports(*a));
    for (auto& d : j["rdma"]["devices"])
      if (d["name"] == nic) return d["state"].get<std::string>();
    return std::string("?");
  };
  EXPECT_EQ(stateOf("a0"), "active");
  fabric.setLinkDown("a0", true);  // the port event, with no traffic to notice it
  auto t0 = Clock::now();
  while (stateOf("a0") != "down" && Clock::now() - t0 < std::chrono::seconds(2))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(stateOf("a0"), "down");
  const uint64_t before = fabric.bytesVia("a0");
  for (int i = 0; i < 3; ++i) roundTrip(0, 4 << 20, "rdma", 40 + i);  // all through a1, no failed post first
  EXPECT_EQ(fabric.bytesVia("a0"), before);
  fabric.setLinkDown("a0", false);
  t0 = Clock::now();
  while (stateOf("a0") != "active" && Clock::now() - t0 < std::chrono::seconds(2))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(stateOf("a0"), "active");
}

TEST_F(RdmaEngines, AFlappingLinkCausesNoReconnectStorm) {
  start();
  roundTrip(0, 1 << 20, nullptr);
  const uint64_t qps0 = fabric.createdQps();
  // The link flaps every 20 ms for 1.5 s while transfers keep coming (over tcp when rdma
  // has no path): each failed pair waits 200 ms, then 400, before it reconnects.
  std::atomic<bool> done{false};
  std::thread flapper([&] {
    for (int i = 0; !done; ++i) {
      fabric.setLinkDown("b0", i % 2 == 0);
      fabric.setLinkDown("b1", i % 2 == 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const auto end = Clock::now() + std::chrono::milliseconds(1500);
  int rounds = 0;
  while (Clock::now() < end) {
    test::fillPattern(local.data(), 256 << 10, rounds);
    Status st = test::runBatch(*a, {req(Request::WRITE, 0, 0, 256 << 10, nullptr)});
    ASSERT_TRUE(st.ok()) << st.ToString();  // rdma or, while paused, tcp: never lost
    ASSERT_EQ(std::memcmp(local.data(), remote.data(), 256 << 10), 0);
    ++rounds;
  }
  done = true;
  flapper.join();
  fabric.setLinkDown("b0", false);
  fabric.setLinkDown("b1", false);
  // At most one connect per NIC pair per 200 ms: 4 pairs (rail-aligned and crossed) x 8 x
  // (2 QPs on each side); without the pause it would be one per transfer.
  const uint64_t made = fabric.createdQps() - qps0;
  EXPECT_LE(made, 4u * 8 * 4) << made << " queue pairs created over " << rounds << " transfers";
  EXPECT_GT(rounds, 20);
}

TEST_F(RdmaEngines, PollingModeMovesDataToo) {
  auto ca = rdmaConfig("a0,a1");
  ca->set<bool>("polling", true);
  start(ca);
  roundTrip(0, 4 << 20);
}

TEST_F(RdmaEngines, AllNicsDownFailsOverToTcp) {
  start();
  roundTrip(0, 1 << 20, nullptr);
  ASSERT_EQ(ext::transportName(*a, seg), "rdma");
  fabric.setLinkDown("b0", true);
  fabric.setLinkDown("b1", true);
  auto t0 = Clock::now();
  roundTrip(0, 4 << 20, nullptr, 7);  // no hint: the selector's failover carries it over tcp
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  // Pinned to rdma there is nowhere to go: refused at submit (every pair is paused), saying why.
  Request pinned = req(Request::WRITE, 0, 0, 1 << 20);
  Status st = test::runBatch(*a, {pinned}, std::chrono::seconds(10));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("paused"), std::string::npos) << st.ToString();
}

TEST_F(RdmaEngines, DeadPeerEndsTasksWithinTheTimeout) {
  start(rdmaConfig("a0,a1", 1500), rdmaConfig("b0,b1", 1500));
  roundTrip(0, 1 << 20);
  b.reset();  // its QPs are gone: the NIC gets no answer
  auto t0 = Clock::now();
  TransferStatus ts;
  Status st = test::runBatch(*a, {req(Request::WRITE, 0, 0, 4 << 20, nullptr)}, std::chrono::seconds(10), &ts);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(ts.s == FAILED || ts.s == TIMEOUT) << ToString(ts.s);
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(1500 + 1000));
}

TEST_F(RdmaEngines, StuckCompletionsTimeOut) {
  start(rdmaConfig("a0,a1", 300), rdmaConfig("b0,b1", 300));
  roundTrip(0, 1 << 20);
  fabric.setCompletionDelay(std::chrono::milliseconds(600));
  auto t0 = Clock::now();
  TransferStatus ts;
  Status st = test::runBatch(*a, {req(Request::WRITE, 0, 0, 1 << 20)}, std::chrono::seconds(10), &ts);
  EXPECT_EQ(ts.s, TIMEOUT) << st.ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(300 + 1000));
  fabric.setCompletionDelay(std::chrono::microseconds(0));
}

// Cancel over rdma: work still in the backlog is never posted; posted work is waited for,
// so once cancelTransfer returns no byte of the batch lands. A request whose deadline has
// passed is not posted at all.
TEST_F(RdmaEngines, CancelDropsUnpostedWorkAndWaitsForPostedWork) {
  auto ca = rdmaConfig("a0,a1");
  ca->set<int64_t>("transports/rdma/max_qp_wr", 16);  // 64 slices posted at most: the rest wait
  start(ca);
  roundTrip(0, 1 << 20);
  fabric.setCompletionDelay(std::chrono::milliseconds(2));
  fastFill(local.data(), kSize, 9);
  std::vector<Request> reqs;
  for (size_t i = 0; i < 48; ++i) reqs.push_back(req(Request::WRITE, i << 20, i << 20, 1 << 20));
  size_t untouched = 0;
  Status st = test::submitThenCancel(*a, reqs, untouched);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(untouched, 0u) << "192 slices were all posted before the cancel";
  fabric.setCompletionDelay(std::chrono::microseconds(0));
  std::memset(remote.data(), 0xee, kSize);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(std::count(remote.begin(), remote.end(), 0xee), static_cast<long>(kSize))
      << "bytes of the canceled batch landed after cancelTransfer returned";

  Request late = req(Request::WRITE, 0, 0, 1 << 20);
  late.deadline_ns = static_cast<uint64_t>(nowNs() - 1);
  TransferStatus ts;
  EXPECT_FALSE(test::runBatch(*a, {late}, std::chrono::seconds(10), &ts).ok());
  EXPECT_EQ(ts.s, TIMEOUT);
  EXPECT_EQ(std::count(remote.begin(), remote.begin() + (1 << 20), 0xee), 1l << 20) << "a late request was posted";
}

TEST_F(RdmaEngines, StopWithWorkInFlightLeavesNothingBehind) {
  start();
  roundTrip(0, 1 << 20);
  fabric.setCompletionDelay(std::chrono::milliseconds(5));
  std::vector<Request> batch;
  for (size_t i = 0; i < 32; ++i) batch.push_back(req(Request::WRITE, i << 20, i << 20, 1 << 20));
  BatchID id = a->allocateBatch(batch.size());
  ASSERT_TRUE(a->submitTransfer(id, batch).ok());
  a.reset();  // mid-flight: completes what it can, cancels the rest; TearDown checks leaks
  fabric.setCompletionDelay(std::chrono::microseconds(0));
}

TEST_F(RdmaEngines, PeerRestartGetsFreshPaths) {
  auto cb = rdmaConfig("b0,b1");
  start(nullptr, cb);
  roundTrip(0, 1 << 20);
  const std::string name = b->getSegmentName();
  const int qps_before = fabric.live().qps;
  // Same name, same port, a new instance: the old paths' QPs go and new ones connect.
  const uint16_t port = static_cast<uint16_t>(std::stoi(name.substr(name.rfind(':') + 1)));
  cb->set<int64_t>("rpc/port", port);
  b.reset();
  b = std::make_unique<TransferEngine>(cb);
  ASSERT_TRUE(b->available()) << b->initStatus().ToString();
  ASSERT_EQ(b->getSegmentName(), name);
  ASSERT_TRUE(b->registerLocalMemory(remote.data(), remote.size(), kGlobalReadWrite).ok());
  Status st;
  for (int i = 0; i < 20; ++i) {  // the engine learns of the restart on first contact
    test::fillPattern(local.data(), 1 << 20, 99);
    st = test::runBatch(*a, {req(Request::WRITE, 0, 0, 1 << 20, nullptr)});
    if (st.ok()) break;
  }
  ASSERT_TRUE(st.ok()) << st.ToString();
  roundTrip(0, 2 << 20, "rdma", 5);
  EXPECT_LE(fabric.live().qps, qps_before) << "old paths are not kept beside the new ones";
}

TEST_F(RdmaEngines, TargetCapsItsQueuePairs) {
  auto cb = rdmaConfig("b0");
  cb->set<int64_t>("transports/rdma/max_qps", 4);  // two paths of two QPs
  start(rdmaConfig("a0"), cb);
  std::vector<std::unique_ptr<TransferEngine>> others;
  std::vector<SegmentID> segs;
  for (int i = 0; i < 3; ++i) {
    others.push_back(std::make_unique<TransferEngine>(rdmaConfig("a1")));
    ASSERT_TRUE(others.back()->available());
    ASSERT_TRUE(others.back()->registerLocalMemory(local.data(), 1 << 20).ok());
    SegmentID s;
    ASSERT_TRUE(others.back()->openSegment(s, b->getSegmentName()).ok());
    segs.push_back(s);
  }
  roundTrip(0, 1 << 20, nullptr);
  for (int i = 0; i < 3; ++i) {
    Request r{Request::WRITE, local.data(), segs[i], reinterpret_cast<uint64_t>(remote.data()), 1 << 20};
    Status st = test::runBatch(*others[i], {r});
    EXPECT_TRUE(st.ok()) << st.ToString();  // over rdma, or after an eviction over tcp
  }
  EXPECT_LE(fabric.qpsOn("b0"), 4) << "the target's NIC kept more queue pairs than its cap";
  others.clear();
}

TEST_F(RdmaEngines, ConnectionsGaugeCountsTheQueuePairsHeld) {
  auto ca = rdmaConfig("a0"), cb = rdmaConfig("b0");
  ca->set<int64_t>("metrics/port", 0);
  cb->set<int64_t>("metrics/port", 0);
  start(ca, cb);
  roundTrip(0, 1 << 20);
  for (auto [engine, nic] : {std::pair{a.get(), "a0"}, std::pair{b.get(), "b0"}}) {
    http::Response resp;
    ASSERT_TRUE(http::call("127.0.0.1", ext::metricsPort(*engine), "GET", "/metrics", "", 5000, resp).ok());
    const std::string series = "ferry_connections{engine=\"" + engine->getSegmentName() + "\",transport=\"rdma\"}";
    EXPECT_GT(fabric.qpsOn(nic), 0) << nic;
    EXPECT_EQ(test::metricValue(resp.body, series), fabric.qpsOn(nic)) << nic << "\n" << resp.body;
  }
}

TEST_F(RdmaEngines, InitiatorClosesIdlePathsPastItsCap) {
  // Mooncake #1845: QPs run out when every peer keeps its paths. With room for two paths on
  // a0, talking to three peers in turn closes the longest-idle path each time, over rdma.
  auto ca = rdmaConfig("a0");
  ca->set<int64_t>("transports/rdma/max_qps", 4);
  start(ca, rdmaConfig("b0"));
  std::vector<std::unique_ptr<TransferEngine>> peers;
  std::vector<SegmentID> segs = {seg};
  std::vector<std::vector<uint8_t>> mem(2, std::vector<uint8_t>(1 << 20));
  for (int i = 0; i < 2; ++i) {
    peers.push_back(std::make_unique<TransferEngine>(rdmaConfig("b1")));
    ASSERT_TRUE(peers.back()->available());
    ASSERT_TRUE(peers.back()->registerLocalMemory(mem[i].data(), mem[i].size()).ok());
    SegmentID s;
    ASSERT_TRUE(a->openSegment(s, peers.back()->getSegmentName()).ok());
    segs.push_back(s);
  }
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < segs.size(); ++i) {
      uint64_t target = i == 0 ? reinterpret_cast<uint64_t>(remote.data()) : reinterpret_cast<uint64_t>(mem[i - 1].data());
      Request r{Request::WRITE, local.data(), segs[i], target, 256 << 10};
      r.transport_hint = "rdma";
      Status st = test::runBatch(*a, {r});
      ASSERT_TRUE(st.ok()) << "peer " << i << " round " << round << ": " << st.ToString();
      EXPECT_LE(fabric.qpsOn("a0"), 4);
    }
  for (auto& p : peers) p.reset();
}

TEST_F(RdmaEngines, EveryFailedControlVerbIsCleanedUp) {
  // How many control calls a full run makes, then fail each of them in turn.
  start();
  roundTrip(0, 64 << 10);
  a.reset();
  b.reset();
  ASSERT_EQ(fabric.live().total(), 0);
  const int calls = static_cast<int>(fabric.controlCalls());
  ASSERT_GT(calls, 10);
  for (int n = 1; n <= calls; ++n) {
    fabric.failCall("*", n);
    auto ea = std::make_unique<TransferEngine>(rdmaConfig("a0,a1", 2000));
    auto eb = std::make_unique<TransferEngine>(rdmaConfig("b0,b1", 2000));
    if (ea->available() && eb->available() && ea->registerLocalMemory(local.data(), 1 << 20).ok() &&
        eb->registerLocalMemory(remote.data(), 1 << 20).ok()) {
      SegmentID s;
      if (ea->openSegment(s, eb->getSegmentName()).ok()) {
        Request r{Request::WRITE, local.data(), s, reinterpret_cast<uint64_t>(remote.data()), 64 << 10};
        test::runBatch(*ea, {r}, std::chrono::seconds(10)).IgnoreError();  // may fail over or fail
      }
    }
    ea.reset();
    eb.reset();
    ASSERT_EQ(fabric.live().total(), 0) << "leak after failing control call " << n;
    fabric.failCall("*", 0);
  }
}

TEST_F(RdmaEngines, SelectorPutsRdmaBeforeTcp) {
  start();
  std::string table;
  ASSERT_TRUE(ext::describeSelection(*a, seg, table).ok());
  const size_t r = table.find("\"rdma\""), t = table.find("\"tcp\"", table.find("\"default\""));
  ASSERT_NE(r, std::string::npos) << table;
  EXPECT_LT(table.find("\"rdma\"", table.find("\"default\"")), t) << table;
}

// The peer has NICs and we have none: tcp carries the transfer, and the engine says that
// rdma would have (a WARN with the reason); under selector/strict the transfer is refused.
TEST_F(RdmaEngines, APeerWithNicsReachedWithoutOursIsALoudDowngrade) {
  std::vector<std::string> warnings;
  std::mutex mu;
  setLogSink([&](const LogRecord& r) {
    std::lock_guard lock(mu);
    if (r.level >= LogLevel::kWarn) warnings.emplace_back(r.message);
  });
  auto expectOneLoudDowngrade = [&] {
    {
      std::lock_guard lock(mu);
      warnings.clear();  // the engine's start-up ones (the fault wrapper says it is on)
    }
    Status st = test::runBatch(*a, {req(Request::WRITE, 0, 0, 4096, nullptr)});
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::lock_guard lock(mu);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("rdma would carry it but cannot here (the peer has RDMA NICs, this engine none"),
              std::string::npos)
        << warnings[0];
    EXPECT_NE(warnings[0].find("going over tcp"), std::string::npos) << warnings[0];
  };
  auto inert = test::loopbackConfig();  // provider "system": no device on this machine
  inert->set<bool>("transports/shm/enable", false);
  start(inert);
  expectOneLoudDowngrade();
  // The same through the fault wrapper (transports/rdma/fault/*): the reason is the inner one's.
  auto wrapped = test::loopbackConfig();
  wrapped->set<bool>("transports/shm/enable", false);
  wrapped->set<int64_t>("transports/rdma/fault/fail_slice_every", 1'000'000);
  a = std::make_unique<TransferEngine>(wrapped);
  ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
  ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
  expectOneLoudDowngrade();
  setLogSink(nullptr);
  a.reset();
  auto strict = test::loopbackConfig();
  strict->set<bool>("transports/shm/enable", false);
  strict->set<bool>("selector/strict", true);
  a = std::make_unique<TransferEngine>(strict);
  ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
  ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
  BatchID id = a->allocateBatch(1);
  Status st = a->submitTransfer(id, {req(Request::WRITE, 0, 0, 4096, nullptr)});
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_NE(st.message().find("selector/strict"), std::string::npos) << st.ToString();
  EXPECT_TRUE(a->freeBatch(id).ok());
}

// ---- without the emulation: the machine's own libibverbs, or none ----

int threadsOfAnEngine(std::shared_ptr<Config> c) {
  TransferEngine e(c);
  EXPECT_TRUE(e.available()) << e.initStatus().ToString();
  return threadCount();
}

TEST(RdmaInert, EngineStartsWithoutDevicesAndRdmaRefusesClearly) {
  auto off = test::loopbackConfig();
  off->set<bool>("transports/rdma/enable", false);
  auto system = test::loopbackConfig();  // provider "system": this machine has no RDMA device
  auto missing = test::loopbackConfig();
  missing->set<std::string>("transports/rdma/provider", "no-such-provider");
  for (auto& c : {system, missing}) {
    EXPECT_EQ(threadsOfAnEngine(c), threadsOfAnEngine(off)) << "an inert rdma transport starts no thread";
    TransferEngine a(c), b(test::loopbackConfig());
    ASSERT_TRUE(a.available()) << a.initStatus().ToString();
    ASSERT_TRUE(b.available()) << b.initStatus().ToString();
    EXPECT_EQ(test::localDescriptor(a).attrs.count("rdma"), 0u) << "nothing to publish";
    std::vector<uint8_t> src(4096), dst(4096);
    ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
    ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size()).ok());
    SegmentID s;
    ASSERT_TRUE(a.openSegment(s, b.getSegmentName()).ok());
    Request r{Request::WRITE, src.data(), s, reinterpret_cast<uint64_t>(dst.data()), 4096};
    r.transport_hint = "rdma";
    BatchID id = a.allocateBatch(1);
    Status st = a.submitTransfer(id, {r});
    EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
    a.freeBatch(id).IgnoreError();
    r.transport_hint = nullptr;
    EXPECT_TRUE(test::runBatch(a, {r}).ok()) << "the other transports carry it";
  }
}

}  // namespace
}  // namespace ferry
