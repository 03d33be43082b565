// The transport selector: default order, policy rules, hints, and failover proven with the
// fault-injecting transport wrapper.
#include "core/selector.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/engine.h"
#include "test_util.h"

namespace ferry::test {

namespace {
class FakeTransport : public Transport {
 public:
  FakeTransport(const char* name, bool same_machine_only) : name_(name), same_only_(same_machine_only) {}
  const char* name() const override { return name_; }
  TransportCaps caps() const override { return {false, true, !same_only_}; }
  Status start(TransportContext&) override { return Status::OK(); }
  void stop() override {}
  bool canReach(const PeerEndpoint& p) const override { return !same_only_ || p.machine_id == "here"; }
  uint64_t sliceSize() const override { return 1 << 20; }
  Status submit(const PeerEndpoint&, Slice* const*, size_t) override { return Status::OK(); }

 private:
  const char* name_;
  bool same_only_;
};

std::vector<std::string> names(const std::vector<Transport*>& ts) {
  std::vector<std::string> out;
  for (auto* t : ts) out.push_back(t->name());
  return out;
}
}  // namespace

class Selector : public ::testing::Test {
 protected:
  Status configure(const std::string& policies) {
    Config c;
    ASSERT_TRUE_OR(c.load(R"({"selector": {"policies": )" + policies + "}}"));
    return sel.configure(c, {&shm, &tcp});
  }
  static void ASSERT_TRUE_OR(const Status& st) { ASSERT_TRUE(st.ok()) << st.ToString(); }
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
  EXPECT_EQ(names(sel.candidates(near, {true})), (std::vector<std::string>{"shm", "tcp"}));
  EXPECT_EQ(names(sel.candidates(far, {false})), (std::vector<std::string>{"tcp"}));
}

TEST_F(Selector, PolicyRulesMatchInOrder) {
  ASSERT_TRUE(configure(R"([
      {"match": {"same_machine": true, "max_size": 4096}, "transports": ["tcp", "shm"]},
      {"match": {"remote_location": "cuda"}, "transports": ["tcp"]},
      {"match": {"min_size": 1048576, "local_location": "cpu"}, "transports": ["shm"]}])").ok());
  SelectionCase small{true, 100};
  EXPECT_EQ(names(sel.candidates(near, small)), (std::vector<std::string>{"tcp", "shm"}));
  SelectionCase to_gpu{true, 8192, "cpu:0", "cuda:1"};
  EXPECT_EQ(names(sel.candidates(near, to_gpu)), (std::vector<std::string>{"tcp"}));
  SelectionCase big{true, 4 << 20};
  EXPECT_EQ(names(sel.candidates(near, big)), (std::vector<std::string>{"shm"}));
  // A rule naming only transports that cannot reach leaves nothing.
  EXPECT_TRUE(sel.candidates(far, SelectionCase{false, 4 << 20}).empty());
  // No rule matches: default order.
  SelectionCase mid{true, 65536};
  EXPECT_EQ(names(sel.candidates(near, mid)), (std::vector<std::string>{"shm", "tcp"}));
}

TEST_F(Selector, BadPoliciesAreRejectedClearly) {
  EXPECT_EQ(configure(R"([{"transports": ["carrier-pigeon"]}])").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(configure(R"([{"match": {"colour": 1}, "transports": ["tcp"]}])").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(configure(R"([{"match": {}}])").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(configure(R"("tcp")").code(), Status::Code::kInvalidArgument);
}

TEST_F(Selector, PinnedTransportMustReach) {
  ASSERT_TRUE(configure("[]").ok());
  Transport* t = nullptr;
  EXPECT_TRUE(sel.pinned("tcp", far, t).ok());
  EXPECT_EQ(t, &tcp);
  EXPECT_EQ(sel.pinned("shm", far, t).code(), Status::Code::kNotSupported);
  EXPECT_EQ(sel.pinned("rdma", near, t).code(), Status::Code::kNotSupported);
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
    ASSERT_EQ(a->impl()->transportName(seg), "shm");
  }
  Status write(size_t len, const char* hint = nullptr) {
    std::memset(dst, 0, len);
    Status st = runBatch(*a, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst), len, hint}},
                         std::chrono::seconds(10));
    if (st.ok() && std::memcmp(dst, src.data(), len) != 0) return Status::Corrupted("data differs");
    return st;
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

// A policy sends small requests over tcp; shm (failing every slice, no failover) gets the rest.
TEST_F(Failover, PolicyChoosesBySize) {
  start(R"({"selector": {"max_failover_attempts": 0,
                         "policies": [{"match": {"max_size": 65536}, "transports": ["tcp"]}]},
            "transports": {"shm": {"fault": {"fail_slice_every": 1}}}})");
  EXPECT_TRUE(write(65536).ok());
  EXPECT_FALSE(write(65537).ok());
  std::string table;
  ASSERT_TRUE(a->impl()->describeSelection(seg, table).ok());
  EXPECT_NE(table.find("\"max_size\": 65536"), std::string::npos) << table;
}

}  // namespace ferry::test
