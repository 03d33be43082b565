// The transport selector: default order, policy rules, hints, and failover proven with the
// fault-injecting transport wrapper.
#include "core/selector.h"
#include "core/segment_table.h"
#include "common/http.h"
#include "ferry/engine_ext.h"
#include "ferry/log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>

#include "test_util.h"

namespace ferry::test {

// A transport that only answers the selector's questions.
class FakeTransport : public Transport {
 public:
  FakeTransport(const char* name, bool same_machine_only, MemoryKinds local = kHostMemory,
                MemoryKinds remote = kHostMemory, double latency_us = 10, double bandwidth_GBps = 1)
      : name_(name), same_only_(same_machine_only) {
    caps_.local_kinds = local;
    caps_.remote_kinds = remote;
    caps_.latency_us = latency_us;
    caps_.bandwidth_GBps = bandwidth_GBps;
  }
  const char* name() const override { return name_; }
  TransportCaps caps() const override { return caps_; }
  Status start(TransportContext&) override { return Status::OK(); }
  void stop() override {}
  bool canReach(const PeerEndpoint& p) const override { return !same_only_ || p.machine_id == "here"; }
  uint64_t sliceSize() const override { return 1 << 20; }
  Status connect(const PeerEndpoint&, std::shared_ptr<Endpoint>&) override { return Status::OK(); }

  TransportCaps caps_;

 private:
  const char* name_;
  bool same_only_;
};

class Selector : public ::testing::Test {
 protected:
  Status configure(const std::string& policies, std::vector<Transport*> ts = {}) {
    Config c;
    Status st = c.load(R"({"selector": {"policies": )" + policies + "}}");
    if (!st.ok()) return st;
    if (ts.empty()) ts = {&shm, &tcp};
    return sel.configure(c, ts);
  }
  std::vector<std::string> names(const SelectionCase& c, const PeerEndpoint& p) {
    TransportSelector::Order order;
    bool pinned = false;
    std::vector<std::string> out;
    if (!sel.choose(c, sel.reachable(p), "", p.segment_name, order, pinned).ok()) return out;
    for (uint8_t i : order) out.push_back(sel.transports()[i]->name());
    return out;
  }
  Status pin(const std::string& hint, const PeerEndpoint& p, Transport*& out, const SelectionCase& c = {}) {
    TransportSelector::Order order;
    bool pinned = false;
    FERRY_RETURN_IF_ERROR(sel.choose(c, sel.reachable(p), hint, p.segment_name, order, pinned));
    out = sel.transports()[order.at(0)];
    return pinned ? Status::OK() : Status::InternalError("not pinned");
  }
  FakeTransport shm{"shm", true}, tcp{"tcp", false};
  TransportSelector sel;
  static PeerEndpoint endpoint(const char* machine) {
    PeerEndpoint p;
    p.segment_name = machine;
    p.machine_id = machine;
    return p;
  }
  PeerEndpoint near = endpoint("here"), far = endpoint("elsewhere");
};

TEST_F(Selector, DefaultOrderAmongWhatReaches) {
  ASSERT_TRUE(configure("[]").ok());
  EXPECT_EQ(names({true}, near), (std::vector<std::string>{"shm", "tcp"}));
  EXPECT_EQ(names({false}, far), (std::vector<std::string>{"tcp"}));
}

TEST_F(Selector, PolicyRulesMatchInOrder) {
  ASSERT_TRUE(configure(R"([
      {"match": {"same_machine": true, "max_size": 4096}, "transports": ["tcp", "shm"]},
      {"match": {"remote_location": "cuda"}, "transports": ["tcp"]},
      {"match": {"min_size": 1048576, "local_location": "cpu"}, "transports": ["shm"]}])").ok());
  SelectionCase small{true, 100};
  EXPECT_EQ(names(small, near), (std::vector<std::string>{"tcp", "shm"}));
  SelectionCase to_gpu{true, 8192, kHostMemory, kHostMemory, "cpu:0", "cuda:1"};
  EXPECT_EQ(names(to_gpu, near), (std::vector<std::string>{"tcp"}));
  SelectionCase big{true, 4 << 20};
  EXPECT_EQ(names(big, near), (std::vector<std::string>{"shm"}));
  // A rule naming only transports that cannot reach leaves nothing.
  EXPECT_TRUE(names(SelectionCase{false, 4 << 20}, far).empty());
  // No rule matches: default order.
  SelectionCase mid{true, 65536};
  EXPECT_EQ(names(mid, near), (std::vector<std::string>{"shm", "tcp"}));
}

TEST_F(Selector, BadPoliciesAreRejectedClearly) {
  EXPECT_EQ(configure(R"([{"transports": ["carrier-pigeon"]}])").code(), Status::Code::kInvalidArgument);
  // Names are checked against the registry, not a list in core: a transport this build lacks
  // is refused, one it has (rdma, inert without NICs) is accepted.
  EXPECT_TRUE(configure(R"([{"transports": ["rdma"]}])").ok());
  EXPECT_EQ(configure(R"([{"match": {"colour": 1}, "transports": ["tcp"]}])").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(configure(R"([{"match": {}}])").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(configure(R"("tcp")").code(), Status::Code::kInvalidArgument);
  // A registered transport that is not enabled here is fine: it matches nothing.
  EXPECT_TRUE(configure(R"([{"transports": ["file", "tcp"]}])").ok());
}

TEST_F(Selector, PinnedTransportMustReach) {
  ASSERT_TRUE(configure("[]").ok());
  Transport* t = nullptr;
  EXPECT_TRUE(pin("tcp", far, t).ok());
  EXPECT_EQ(t, &tcp);
  EXPECT_EQ(pin("shm", far, t).code(), Status::Code::kNotSupported);
  EXPECT_EQ(pin("rdma", near, t).code(), Status::Code::kNotSupported);
}

// The selector never hands a buffer to a transport that cannot touch its memory kind,
// whatever the policy or hint says.
TEST_F(Selector, MemoryKindsFilterEveryPath) {
  FakeTransport gpu{"shm", true, kHostMemory | kCudaMemory, kHostMemory | kCudaMemory};
  ASSERT_TRUE(configure(R"([{"match": {"min_size": 1}, "transports": ["tcp", "shm"]}])", {&gpu, &tcp}).ok());
  SelectionCase from_gpu{true, 4096, kCudaMemory, kHostMemory};
  EXPECT_EQ(names(from_gpu, near), (std::vector<std::string>{"shm"}));  // the rule's tcp drops out
  EXPECT_TRUE(names(from_gpu, far).empty());
  Transport* t = nullptr;
  Status st = pin("tcp", near, t, from_gpu);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("cuda"), std::string::npos) << st.ToString();
  ASSERT_TRUE(configure("[]", {&tcp}).ok());
  TransportSelector::Order order;
  bool pinned;
  st = sel.choose(SelectionCase{false, 64, kOtherDevice, kHostMemory}, sel.reachable(far), "", "peer", order, pinned);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("device memory"), std::string::npos) << st.ToString();
}

// A request whose bytes are checked end to end goes only to transports that check the
// memory kinds at both ends, by default, by policy and by hint.
TEST_F(Selector, ChecksumsNeedATransportThatChecksThem) {
  FakeTransport checks{"tcp", false, kHostMemory | kCudaMemory, kHostMemory | kCudaMemory};
  FakeTransport blind{"shm", true, kHostMemory | kCudaMemory, kHostMemory | kCudaMemory};
  checks.caps_.checksum_kinds = kHostMemory;
  ASSERT_TRUE(configure(R"([{"match": {"min_size": 1}, "transports": ["shm", "tcp"]}])", {&blind, &checks}).ok());
  SelectionCase checked{true, 4096};
  checked.checksum = true;
  EXPECT_EQ(names(checked, near), (std::vector<std::string>{"tcp"}));
  EXPECT_EQ(names(SelectionCase{true, 4096}, near), (std::vector<std::string>{"shm", "tcp"}));
  Transport* t = nullptr;
  Status st = pin("shm", near, t, checked);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.ToString();
  checked.remote_kind = kCudaMemory;  // tcp checks host memory only
  TransportSelector::Order order;
  bool pinned;
  st = sel.choose(checked, sel.reachable(near), "", "peer", order, pinned);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("checksum checked"), std::string::npos) << st.ToString();
}

// Two transports of one preference group: the cheaper for the request's size goes first.
TEST_F(Selector, CostBreaksTiesBySize) {
  FakeTransport quick{"quick", false, kHostMemory, kHostMemory, 1, 1};   // low latency, slow
  FakeTransport wide{"wide", false, kHostMemory, kHostMemory, 50, 50};   // high latency, fast
  ASSERT_TRUE(configure("[]", {&quick, &wide}).ok());
  EXPECT_EQ(names(SelectionCase{false, 64}, far), (std::vector<std::string>{"quick", "wide"}));
  EXPECT_EQ(names(SelectionCase{false, 64 << 20}, far), (std::vector<std::string>{"wide", "quick"}));
  EXPECT_TRUE(sel.orderDependsOnSize(kHostMemory, kHostMemory));
  // One that starts sooner and moves bytes no slower is first at every size: the order is
  // fixed, and requests of different sizes (a paged transfer's runs) may share one route.
  FakeTransport better{"better", false, kHostMemory, kHostMemory, 5, 50};
  ASSERT_TRUE(configure("[]", {&wide, &better}).ok());
  EXPECT_FALSE(sel.orderDependsOnSize(kHostMemory, kHostMemory));
  EXPECT_EQ(names(SelectionCase{false, 1}, far), (std::vector<std::string>{"better", "wide"}));
  EXPECT_EQ(names(SelectionCase{false, 1ll << 40}, far), (std::vector<std::string>{"better", "wide"}));
  FakeTransport twin{"twin", false, kHostMemory, kHostMemory, 50, 50};  // the same costs: registry order
  ASSERT_TRUE(configure("[]", {&wide, &twin}).ok());
  EXPECT_FALSE(sel.orderDependsOnSize(kHostMemory, kHostMemory));
  FakeTransport same_start{"same_start", false, kHostMemory, kHostMemory, 50, 60};  // ties only at 0 bytes
  ASSERT_TRUE(configure("[]", {&wide, &same_start}).ok());
  EXPECT_TRUE(sel.orderDependsOnSize(kHostMemory, kHostMemory));
  ASSERT_TRUE(configure("[]").ok());  // shm and tcp: different groups, size never matters
  EXPECT_FALSE(sel.orderDependsOnSize(kHostMemory, kHostMemory));
  EXPECT_EQ(names(SelectionCase{true, 64 << 20}, near), (std::vector<std::string>{"shm", "tcp"}));
}

// Two engines in this process (same machine: shm first, tcp next); b's memory is shared.
class Failover : public ::testing::Test {
 protected:
  void start(const std::string& initiator_conf) {
    auto ca = loopbackConfig(5000);
    if (!initiator_conf.empty()) {
      ASSERT_TRUE(ca->load(initiator_conf).ok());
    }
    a = std::make_unique<TransferEngine>(ca);
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    b = std::make_unique<TransferEngine>(loopbackConfig(5000));
    src.resize(8 << 20);
    fillPattern(src.data(), src.size(), 17);
    ASSERT_TRUE(a->registerLocalMemory(src.data(), src.size()).ok());
    ASSERT_TRUE(b->allocateLocalMemory(&dst, src.size()).ok());
    ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
    ASSERT_EQ(ext::transportName(*a, seg), "shm");
  }
  Status write(size_t len, const char* hint = nullptr) {
    std::memset(dst, 0, len);
    Status st = runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), len, hint}},
                         std::chrono::seconds(10));
    if (st.ok() && std::memcmp(dst, src.data(), len) != 0) return Status::Corrupted("data differs");
    return st;
  }
  // Pages lp[i] of src written to pages rp[i] of dst in one unpinned paged call: it must
  // complete with every page in place.
  void pagedWrite(const std::vector<int64_t>& lp, const std::vector<int64_t>& rp, size_t page_size) {
    PagedRequest p;
    p.opcode = Request::WRITE;
    p.local_base = src.data();
    p.target_id = seg;
    p.remote_base = reinterpret_cast<uint64_t>(dst);
    p.page_size = page_size;
    p.local_pages = lp.data();
    p.remote_pages = rp.data();
    p.num_pages = lp.size();
    std::memset(dst, 0, src.size());
    BatchID batch = a->allocateBatch(1);
    ASSERT_TRUE(a->submitPagedTransfer(batch, p).ok());
    TransferStatus ts;
    ASSERT_TRUE(a->waitTransfer(batch, ts, std::chrono::seconds(10)).ok());
    EXPECT_EQ(ts.s, COMPLETED);
    ASSERT_TRUE(a->freeBatch(batch).ok());
    for (size_t i = 0; i < lp.size(); ++i)
      ASSERT_EQ(std::memcmp(static_cast<uint8_t*>(dst) + rp[i] * page_size, src.data() + lp[i] * page_size, page_size),
                0)
          << "page " << i;
  }
  std::vector<uint8_t> src;
  std::unique_ptr<TransferEngine> a, b;
  void* dst = nullptr;
  SegmentID seg = 0;
};

TEST_F(Failover, FailedSlicesMoveToTheNextTransport) {
  start(R"({"transports": {"shm": {"fault": {"fail_slice_every": 2}}}})");
  Status st = write(8 << 20);  // 8 slices, half fail on shm and finish on tcp
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(Failover, RefusedSubmitMovesToTheNextTransport) {
  start(R"({"transports": {"shm": {"fault": {"fail_submit_every": 1}}}})");
  Status st = write(8 << 20);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(Failover, PinnedRequestsDoNotFailOver) {
  start(R"({"transports": {"shm": {"fault": {"fail_slice_every": 1}}}})");
  EXPECT_FALSE(write(1 << 20, "shm").ok());
  EXPECT_TRUE(write(1 << 20, "tcp").ok());
  EXPECT_TRUE(write(1 << 20).ok());  // unpinned: fails over
  BatchID bid = a->allocateBatch(1);
  Status st = a->submitTransfer(bid, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), 16, "rdma"}});
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(Failover, NoAttemptsLeftMeansFailed) {
  start(R"({"selector": {"max_failover_attempts": 0},
            "transports": {"shm": {"fault": {"fail_slice_every": 1}}}})");
  TransferStatus ts;
  EXPECT_FALSE(runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), 4096}},
                        std::chrono::seconds(10), &ts).ok());
  EXPECT_EQ(ts.s, FAILED);
}

// A downgrade is said (a WARN naming the pair, both transports and why, at most once per 10 s
// per segment) and counted in /metrics; selector/strict fails the transfer instead.
class Downgrades : public Failover {
 protected:
  void TearDown() override { setLogSink(nullptr); }
  void captureWarnings() {
    setLogSink([this](const LogRecord& r) {
      if (r.level < LogLevel::kWarn) return;
      std::lock_guard lock(mu);
      warnings.emplace_back(r.message);
    });
  }
  std::vector<std::string> said(const std::string& needle) {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& w : warnings)
      if (w.find(needle) != std::string::npos) out.push_back(w);
    return out;
  }
  double scraped(const std::string& series) {
    http::Response resp;
    EXPECT_TRUE(http::call("127.0.0.1", ext::metricsPort(*a), "GET", "/metrics", "", 5000, resp).ok());
    return metricValue(resp.body, series);
  }
  std::string series(const char* reason) {
    return "ferry_downgrades_total{engine=\"" + a->getSegmentName() + "\",from=\"shm\",to=\"tcp\",reason=\"" +
           reason + "\"}";
  }
  std::mutex mu;
  std::vector<std::string> warnings;
};

TEST_F(Downgrades, FailedSlicesAreSaidOnceAndCounted) {
  start(R"({"metrics": {"port": 0}, "transports": {"shm": {"fault": {"fail_slice_every": 2}}}})");
  captureWarnings();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(write(8 << 20).ok());  // 8 slices each, half fail on shm
  auto lines = said("downgrade toward segment '" + b->getSegmentName() + "'");
  ASSERT_EQ(lines.size(), 1u);  // rate-limited
  EXPECT_NE(lines[0].find("shm failed a slice"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("going over tcp"), std::string::npos) << lines[0];
  EXPECT_EQ(scraped(series("failed_over")), 12);
}

// A paged transfer's pages share slices on the default route (shm, then tcp): the slices
// that fail on shm move to tcp whole, pages and all, and every page lands. Counted in
// slices, not pages.
TEST_F(Downgrades, SlicesOfManyPagesFailOverWhole) {
  start(R"({"metrics": {"port": 0}, "transports": {"shm": {"fault": {"fail_slice_every": 2}}}})");
  constexpr size_t kPage = 16 << 10, kPages = (8 << 20) / kPage;  // 8 slices of 64 pages
  std::vector<int64_t> lp(kPages), rp(kPages);
  std::iota(lp.begin(), lp.end(), 0);
  std::iota(rp.begin(), rp.end(), 0);
  std::shuffle(rp.begin(), rp.end(), std::mt19937_64(3));
  pagedWrite(lp, rp, kPage);
  EXPECT_EQ(scraped(series("failed_over")), 4);
  const std::string engine = "engine=\"" + a->getSegmentName() + "\"";
  EXPECT_EQ(scraped("ferry_slices_total{" + engine + ",transport=\"shm\",op=\"write\"}"), 4);
  EXPECT_EQ(scraped("ferry_slices_total{" + engine + ",transport=\"tcp\",op=\"write\"}"), 4);
}

// The peer split the buffer our paged call's pages lie in after we read its descriptor:
// slices cut for one buffer reach pieces in two. shm proves each piece against the peer's
// own word and refuses them; tcp, which checks every range, carries them.
TEST_F(Downgrades, PagesOfASliceSplitAcrossThePeersBuffersStillLand) {
  start(R"({"metrics": {"port": 0}})");
  ASSERT_TRUE(b->unregisterLocalMemory(dst).ok());
  const size_t half = src.size() / 2;
  ASSERT_TRUE(b->registerLocalMemory(dst, half).ok());
  ASSERT_TRUE(b->registerLocalMemory(static_cast<uint8_t*>(dst) + half, half).ok());
  constexpr size_t kPage = 16 << 10, kPages = 64;  // one slice, half its pages in each buffer
  std::vector<int64_t> lp(kPages), rp(kPages);
  std::iota(lp.begin(), lp.end(), 0);
  for (size_t i = 0; i < kPages; ++i) rp[i] = static_cast<int64_t>((i % 2 ? half / kPage : 0) + i);
  pagedWrite(lp, rp, kPage);
  EXPECT_EQ(scraped(series("refused_at_submit")), 1);
}

TEST_F(Downgrades, RefusedSubmitsAreCounted) {
  start(R"({"metrics": {"port": 0}, "transports": {"shm": {"fault": {"fail_submit_every": 1}}}})");
  captureWarnings();
  ASSERT_TRUE(write(8 << 20).ok());
  ASSERT_EQ(said("shm refused the transfer").size(), 1u);
  EXPECT_EQ(scraped(series("refused_at_submit")), 8);
}

TEST_F(Downgrades, StrictFailsInsteadOfFallingBack) {
  start(R"({"selector": {"strict": true}, "transports": {"shm": {"fault": {"fail_slice_every": 1}}}})");
  captureWarnings();
  TransferStatus ts;
  EXPECT_FALSE(runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), 4096}},
                        std::chrono::seconds(10), &ts)
                   .ok());
  EXPECT_EQ(ts.s, FAILED);
  EXPECT_EQ(said("not falling back to tcp (selector/strict)").size(), 1u);
  EXPECT_TRUE(write(4096, "tcp").ok());  // tcp itself still works
}

TEST_F(Downgrades, StrictRefusesWhatTheFirstTransportRefuses) {
  start(R"({"selector": {"strict": true}, "transports": {"shm": {"fault": {"fail_submit_every": 1}}}})");
  BatchID bid = a->allocateBatch(1);
  Status st = a->submitTransfer(bid, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), 4096}});
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

// A transport the peer offers but this engine cannot use (a missing device): the selector
// names what would have come first.
TEST_F(Selector, MissingTransportIsTheBestThePairSupports) {
  struct Unusable : FakeTransport {
    using FakeTransport::FakeTransport;
    bool canReach(const PeerEndpoint&) const override { return false; }
    std::string unusableFor(const PeerEndpoint&) const override { return "no device here"; }
  } rdma{"rdma", false};
  ASSERT_TRUE(configure("[]", {&rdma, &tcp}).ok());
  std::vector<std::string> why;
  const uint32_t unusable = sel.unusable(far, why);
  EXPECT_EQ(unusable, 1u);
  EXPECT_EQ(why[0], "no device here");
  TransportSelector::Order order;
  bool pinned = false;
  ASSERT_TRUE(sel.choose({}, sel.reachable(far), "", "peer", order, pinned).ok());
  auto best = sel.missedBest({}, sel.reachable(far), unusable, order);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(sel.transports()[*best]->name(), std::string("rdma"));
  // Under a policy rule the operator's order stands: no downgrade is claimed.
  ASSERT_TRUE(configure(R"([{"match": {}, "transports": ["tcp"]}])", {&rdma, &tcp}).ok());
  EXPECT_FALSE(sel.missedBest({}, sel.reachable(far), unusable, {1}).has_value());
}

// A policy sends small requests over tcp; shm (failing every slice, no failover) gets the rest.
TEST_F(Failover, PolicyChoosesBySize) {
  start(R"({"selector": {"max_failover_attempts": 0,
                         "policies": [{"match": {"max_size": 65536}, "transports": ["tcp"]}]},
            "transports": {"shm": {"fault": {"fail_slice_every": 1}}}})");
  EXPECT_TRUE(write(65536).ok());
  EXPECT_FALSE(write(65537).ok());
  std::string table;
  ASSERT_TRUE(ext::describeSelection(*a, seg, table).ok());
  EXPECT_NE(table.find("\"max_size\": 65536"), std::string::npos) << table;
}

}  // namespace ferry::test

namespace ferry::test {

// Reads of one peer may finish out of order (a reopen racing a refresh under registration
// churn): the older view of the same instance must not replace the newer one.
TEST_F(Selector, ReopeningWithAnOlderDescriptorKeepsTheNewer) {
  ASSERT_TRUE(configure("[]").ok());
  SegmentTable table(sel, 2);
  auto view = [&](const char* instance, uint64_t version) {
    PeerEndpoint p = far;
    auto desc = std::make_shared<SegmentDescriptor>();
    desc->name = "peer";
    desc->instance_id = instance;
    desc->version = version;
    p.desc = std::move(desc);
    return p;
  };
  SegmentID first = 0, again = 0;
  ASSERT_TRUE(table.open("peer", view("one", 5), "", nullptr, first).ok());
  ASSERT_TRUE(table.open("peer", view("one", 3), "", nullptr, again).ok());
  EXPECT_EQ(again, first);
  EXPECT_EQ(table.find(first)->snapshot()->desc->version, 5u);
  ASSERT_TRUE(table.open("peer", view("one", 7), "", nullptr, again).ok());
  EXPECT_EQ(table.find(first)->snapshot()->desc->version, 7u);
  // A restart starts versions over: the new instance's lower version wins.
  ASSERT_TRUE(table.open("peer", view("two", 1), "", nullptr, again).ok());
  EXPECT_EQ(table.find(first)->snapshot()->desc->instance_id, "two");
  EXPECT_EQ(table.find(first)->snapshot()->desc->version, 1u);
}

}  // namespace ferry::test
