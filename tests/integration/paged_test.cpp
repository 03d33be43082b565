// Paged transfers (TransferEngine::submitPagedTransfer): the expansion into ranges and its
// coalescing, bad requests, and pages moved byte-exact over tcp, shm and local.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "core/paged_runs.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "test_util.h"

namespace ferry::test {
namespace {

PagedRequest paged(const std::vector<int64_t>& local, const std::vector<int64_t>& remote, size_t page_size,
                   size_t layers = 1, uint64_t local_stride = 0, uint64_t remote_stride = 0) {
  PagedRequest p;
  p.opcode = Request::WRITE;
  p.local_base = reinterpret_cast<void*>(0x100000);
  p.remote_base = 0x900000;
  p.page_size = page_size;
  p.local_pages = local.data();
  p.remote_pages = remote.data();
  p.num_pages = local.size();
  p.num_layers = layers;
  p.local_layer_stride = local_stride;
  p.remote_layer_stride = remote_stride;
  return p;
}

TEST(PageRuns, AdjacentPagesAtBothEndsMerge) {
  // A write taken in local (source) page order: 0 -> 12 alone; 3,4,5 -> 7,8,9 merge (listed
  // apart); 6 -> 11 breaks the remote run.
  std::vector<int64_t> local = {4, 6, 0, 3, 5}, remote = {8, 11, 12, 7, 9};
  std::vector<SliceRange> runs;
  ASSERT_TRUE(pageRuns(paged(local, remote, 4096), runs).ok());
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(reinterpret_cast<uint64_t>(runs[0].local), 0x100000u);
  EXPECT_EQ(runs[0].remote, 0x900000u + 12 * 4096);
  EXPECT_EQ(reinterpret_cast<uint64_t>(runs[1].local), 0x100000u + 3 * 4096);
  EXPECT_EQ(runs[1].remote, 0x900000u + 7 * 4096);
  EXPECT_EQ(runs[1].length, 3u * 4096);
  EXPECT_EQ(runs[2].length, 4096u);
  EXPECT_EQ(runs[2].remote, 0x900000u + 11 * 4096);

  // A read's source is the remote side: taken in remote page order, 7,8,9 <- 3,4,5 merge,
  // then 11 <- 6 and 12 <- 0.
  PagedRequest read = paged(local, remote, 4096);
  read.opcode = Request::READ;
  runs.clear();
  ASSERT_TRUE(pageRuns(read, runs).ok());
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].remote, 0x900000u + 7 * 4096);
  EXPECT_EQ(reinterpret_cast<uint64_t>(runs[0].local), 0x100000u + 3 * 4096);
  EXPECT_EQ(runs[0].length, 3u * 4096);
  EXPECT_EQ(runs[1].remote, 0x900000u + 11 * 4096);
  EXPECT_EQ(runs[2].remote, 0x900000u + 12 * 4096);
  EXPECT_EQ(reinterpret_cast<uint64_t>(runs[2].local), 0x100000u);

  // Layers: the same pages at each layer's offset; the contiguous whole of a layer is one run,
  // and layers that abut at both ends merge too.
  std::vector<int64_t> all(8);
  std::iota(all.begin(), all.end(), 0);
  runs.clear();
  ASSERT_TRUE(pageRuns(paged(all, all, 4096, 3, 8 * 4096, 8 * 4096), runs).ok());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].length, 3u * 8 * 4096);
  runs.clear();
  ASSERT_TRUE(pageRuns(paged(all, all, 4096, 3, 16 * 4096, 8 * 4096), runs).ok());
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(reinterpret_cast<uint64_t>(runs[2].local), 0x100000u + 2 * 16 * 4096);
  EXPECT_EQ(runs[2].remote, 0x900000u + 2 * 8 * 4096);

  // 32-bit indices read as such.
  std::vector<int32_t> l32 = {1, 2}, r32 = {5, 9};
  PagedRequest p = paged(local, remote, 4096);
  p.local_pages = l32.data();
  p.remote_pages = r32.data();
  p.num_pages = 2;
  p.index_type = PagedRequest::INT32;
  runs.clear();
  ASSERT_TRUE(pageRuns(p, runs).ok());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].remote, 0x900000u + 9 * 4096);
}

TEST(PageRuns, BadRequestsAreRefused) {
  std::vector<int64_t> ok = {0, 1}, negative = {0, -1}, huge = {0, INT64_MAX / 2};
  std::vector<SliceRange> runs;
  EXPECT_TRUE(pageRuns(paged(ok, negative, 4096), runs).IsInvalidArgument());
  EXPECT_TRUE(pageRuns(paged(huge, ok, 4096), runs).IsInvalidArgument());  // index * page_size overflows
  EXPECT_TRUE(pageRuns(paged(ok, ok, 0), runs).IsInvalidArgument());
  EXPECT_TRUE(pageRuns(paged(ok, ok, 4096, 0), runs).IsInvalidArgument());
  EXPECT_TRUE(pageRuns(paged(ok, ok, 4096, 1ull << 24), runs).IsInvalidArgument());  // 2^25 pages
  EXPECT_TRUE(pageRuns(paged(ok, ok, 4096, 2, UINT64_MAX), runs).IsInvalidArgument());  // layer 1's address overflows
  PagedRequest p = paged(ok, ok, 4096);
  p.remote_pages = nullptr;
  EXPECT_TRUE(pageRuns(p, runs).IsInvalidArgument());
  EXPECT_TRUE(runs.empty());
  p = paged(ok, ok, 4096);
  p.num_pages = 0;
  EXPECT_TRUE(pageRuns(p, runs).ok());
  EXPECT_TRUE(runs.empty());
}

class PagedTransfer : public ::testing::TestWithParam<const char*> {
 protected:
  static constexpr size_t kLayers = 4, kPagesPerLayer = 256, kPage = 16 << 10;
  static constexpr size_t kLayerBytes = kPagesPerLayer * kPage, kSize = kLayers * kLayerBytes;

  void SetUp() override { start(loopbackConfig()); }
  void TearDown() override {
    if (shared_remote) {
      EXPECT_TRUE(owner().freeLocalMemory(shared_remote).ok());
    }
  }

  TransferEngine& owner() { return std::string(GetParam()) == "local" ? *a : *b; }

  // Engines a and b with `config` for a, the buffers registered and the owner's segment open;
  // with `shared`, the remote buffer is the owner's allocateLocalMemory (a shared-memory file
  // the shm transport maps and copies into itself, not the kernel's cross-memory attach).
  void start(std::shared_ptr<Config> config, bool shared = false) {
    a = std::make_unique<TransferEngine>(config);
    b = std::make_unique<TransferEngine>(loopbackConfig());
    ASSERT_TRUE(a->available() && b->available());
    local.assign(kSize, 0);
    remote.assign(kSize, 0);
    ASSERT_TRUE(a->registerLocalMemory(local.data(), kSize).ok());
    if (shared) {
      ASSERT_TRUE(owner().allocateLocalMemory(&shared_remote, kSize, "cpu:0").ok());
      rbase = static_cast<uint8_t*>(shared_remote);
      std::memset(rbase, 0, kSize);
    } else {
      ASSERT_TRUE(owner().registerLocalMemory(remote.data(), kSize).ok());
      rbase = remote.data();
    }
    ASSERT_TRUE(a->openSegment(seg, owner().getSegmentName()).ok());
  }

  PagedRequest request(Request::OpCode op, const std::vector<int64_t>& lp, const std::vector<int64_t>& rp) {
    PagedRequest p = paged(lp, rp, kPage, kLayers, kLayerBytes, kLayerBytes);
    p.opcode = op;
    p.local_base = local.data();
    p.target_id = seg;
    p.remote_base = reinterpret_cast<uint64_t>(rbase);
    p.transport_hint = GetParam();
    return p;
  }

  Status run(const PagedRequest& p, size_t* tasks = nullptr) {
    BatchID batch = a->allocateBatch(1);
    Status st = a->submitPagedTransfer(batch, p);
    TransferStatus ts;
    if (st.ok()) st = a->waitTransfer(batch, ts, std::chrono::seconds(30));
    if (st.ok() && ts.s != COMPLETED) st = Status::InternalError(std::string("ended ") + ToString(ts.s));
    std::vector<TransferStatus> all;
    if (tasks && a->getTransferStatus(batch, all).ok()) *tasks = all.size();
    EXPECT_TRUE(a->freeBatch(batch).ok());
    return st;
  }

  // Pages lp[i] of ours written to pages rp[i] there, then read back from there into zeroed
  // pages: each time every pair must match.
  void writeThenReadBack(const std::vector<int64_t>& lp, const std::vector<int64_t>& rp, uint64_t seed) {
    fillPattern(local.data(), kSize, seed);
    Status st = run(request(Request::WRITE, lp, rp));
    ASSERT_TRUE(st.ok()) << st.ToString();
    expectPagesEqual(lp, rp);
    std::fill(local.begin(), local.end(), 0);
    st = run(request(Request::READ, rp, lp));
    ASSERT_TRUE(st.ok()) << st.ToString();
    expectPagesEqual(rp, lp);
  }

  // Page lp[i] of each layer here must equal page rp[i] of that layer there.
  void expectPagesEqual(const std::vector<int64_t>& lp, const std::vector<int64_t>& rp) {
    for (size_t l = 0; l < kLayers; ++l)
      for (size_t i = 0; i < lp.size(); ++i)
        ASSERT_EQ(std::memcmp(local.data() + l * kLayerBytes + lp[i] * kPage,
                              rbase + l * kLayerBytes + rp[i] * kPage, kPage),
                  0)
            << "layer " << l << " page " << i;
  }

  std::vector<uint8_t> local, remote;
  uint8_t* rbase = nullptr;          // the remote buffer: remote.data() or shared_remote
  void* shared_remote = nullptr;     // allocated by the owner (start(.., true))
  std::unique_ptr<TransferEngine> a, b;
  SegmentID seg = 0;
};

// Scattered pages over local and shm copied with stores that bypass the cache (the
// threshold at one byte), where shm copies two pages at a time: the same bytes land.
TEST_P(PagedTransfer, ScatteredPagesMoveByteExactWhenStreamed) {
  auto c = loopbackConfig();
  c->set<int64_t>("same_machine/streaming_copy_bytes", 1);
  start(c, true);
  std::vector<int64_t> lp(kPagesPerLayer), rp(kPagesPerLayer);
  std::iota(lp.begin(), lp.end(), 0);
  std::iota(rp.begin(), rp.end(), 0);
  std::shuffle(rp.begin(), rp.end(), std::mt19937_64(7));
  lp.resize(kPagesPerLayer - 1);  // an odd count: the last page of a take goes alone
  rp.resize(kPagesPerLayer - 1);
  writeThenReadBack(lp, rp, 17);
}

TEST_P(PagedTransfer, ScatteredPagesMoveByteExactAsOneTask) {
  std::mt19937_64 rng(42);
  std::vector<int64_t> lp(kPagesPerLayer), rp(kPagesPerLayer);
  std::iota(lp.begin(), lp.end(), 0);
  std::iota(rp.begin(), rp.end(), 0);
  std::shuffle(rp.begin(), rp.end(), rng);
  // Some runs that coalesce, the rest scattered.
  std::sort(rp.begin(), rp.begin() + 64);
  lp.resize(200);
  rp.resize(200);
  fillPattern(local.data(), kSize, 11);
  size_t tasks = 0;
  Status st = run(request(Request::WRITE, lp, rp), &tasks);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(tasks, 1u);
  expectPagesEqual(lp, rp);

  // And back into other pages of ours.
  std::vector<uint8_t> sent = local;
  std::fill(local.begin(), local.end(), 0);
  std::reverse(lp.begin(), lp.end());
  st = run(request(Request::READ, lp, rp));
  ASSERT_TRUE(st.ok()) << st.ToString();
  expectPagesEqual(lp, rp);
}

// Checked end to end, pages that share slices land intact both ways; with the carrying
// transport flipping a byte of every slice, the task fails and the mismatches are counted.
// shm both ways: into a shared file it maps and into memory it reaches by cross-memory attach.
TEST_P(PagedTransfer, CheckedPagesLandIntactAndAFlippedByteFailsTheTask) {
  std::vector<int64_t> lp(kPagesPerLayer), rp(kPagesPerLayer);
  std::iota(lp.begin(), lp.end(), 0);
  std::iota(rp.begin(), rp.end(), 0);
  std::shuffle(rp.begin(), rp.end(), std::mt19937_64(9));
  for (bool shared : {false, true}) {
    for (int flip_every : {0, 1}) {
      SCOPED_TRACE(std::string(shared ? "shared" : "unshared") + (flip_every ? ", flipped" : ""));
      if (shared_remote) {
        ASSERT_TRUE(owner().freeLocalMemory(shared_remote).ok());
        shared_remote = nullptr;
      }
      auto c = loopbackConfig();
      c->set("checksum", true);
      if (flip_every) c->set<int64_t>(std::string("transports/") + GetParam() + "/fault/flip_byte_every", flip_every);
      start(c, shared);
      if (!flip_every) {
        writeThenReadBack(lp, rp, 23);
        continue;
      }
      for (Request::OpCode op : {Request::WRITE, Request::READ}) {
        const uint64_t before = ext::checksumMismatches(*a);
        fillPattern(local.data(), kSize, 29);
        Status st = op == Request::WRITE ? run(request(op, lp, rp)) : run(request(op, rp, lp));
        EXPECT_FALSE(st.ok()) << (op == Request::WRITE ? "write" : "read");
        EXPECT_GT(ext::checksumMismatches(*a), before) << (op == Request::WRITE ? "write" : "read");
      }
    }
  }
}

// Layers registered one by one at both ends (as vLLM registers each layer's cache): the
// pages' span is in no single buffer, so the engine checks the runs one by one, and the
// transfer is the same.
TEST_P(PagedTransfer, PagesInSeveralBuffersPerSide) {
  ASSERT_TRUE(a->unregisterLocalMemory(local.data()).ok());
  ASSERT_TRUE(owner().unregisterLocalMemory(remote.data()).ok());
  for (size_t l = 0; l < kLayers; ++l) {
    ASSERT_TRUE(a->registerLocalMemory(local.data() + l * kLayerBytes, kLayerBytes).ok());
    ASSERT_TRUE(owner().registerLocalMemory(remote.data() + l * kLayerBytes, kLayerBytes).ok());
  }
  std::vector<int64_t> lp(kPagesPerLayer), rp(kPagesPerLayer);
  std::iota(lp.begin(), lp.end(), 0);
  std::iota(rp.begin(), rp.end(), 0);
  std::shuffle(lp.begin(), lp.end(), std::mt19937_64(5));
  std::shuffle(rp.begin(), rp.end(), std::mt19937_64(6));
  writeThenReadBack(lp, rp, 13);
}

TEST_P(PagedTransfer, BadPagesAreRefusedBeforeAnythingMoves) {
  std::vector<int64_t> lp = {0, 1, 2}, rp = {0, 1, static_cast<int64_t>(kPagesPerLayer * kLayers)};  // last: past the buffer
  fillPattern(local.data(), kSize, 12);
  BatchID batch = a->allocateBatch(1);
  PagedRequest p = request(Request::WRITE, lp, rp);
  p.num_layers = 1;
  Status st = a->submitPagedTransfer(batch, p);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_EQ(std::count(remote.begin(), remote.end(), 0), static_cast<long>(kSize)) << "pages moved before the check";
  std::vector<TransferStatus> all;
  ASSERT_TRUE(a->getTransferStatus(batch, all).ok());
  EXPECT_TRUE(all.empty());
  p.num_pages = 0;
  EXPECT_TRUE(a->submitPagedTransfer(batch, p).ok());  // nothing to move
  EXPECT_TRUE(a->submitPagedTransfer(batch + 1000, p).IsInvalidArgument());
  ASSERT_TRUE(a->freeBatch(batch).ok());
}

INSTANTIATE_TEST_SUITE_P(Transports, PagedTransfer, ::testing::Values("tcp", "shm", "local"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ferry::test
