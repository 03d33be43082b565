// The native API end to end between two in-process engines over TCP.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "engine_pair.h"

namespace ferry::test {

using EngineTest = EnginePair;

TEST_F(EngineTest, NamesAndAddresses) {
  EXPECT_EQ(b->getRpcServerAddress(), "127.0.0.1");
  EXPECT_GT(b->getRpcServerPort(), 0);
  EXPECT_EQ(b->getSegmentName(), "127.0.0.1:" + std::to_string(b->getRpcServerPort()));
  EXPECT_NE(a->getSegmentName(), b->getSegmentName());
}

TEST_F(EngineTest, ConfiguredNameAndPort) {
  auto c = loopbackConfig();
  c->set("local_segment_name", "prefill-0");
  TransferEngine e(c);
  ASSERT_TRUE(e.available());
  EXPECT_EQ(e.getSegmentName(), "prefill-0");
  // A second engine on a taken port fails to start, clearly.
  auto d = loopbackConfig();
  d->set<int64_t>("rpc/port", e.getRpcServerPort());
  TransferEngine clash(d);
  EXPECT_FALSE(clash.available());
  EXPECT_TRUE(clash.initStatus().IsUnavailable()) << clash.initStatus().ToString();
  void* p = nullptr;
  EXPECT_TRUE(clash.allocateLocalMemory(&p, 4096).IsUnavailable());
  EXPECT_EQ(clash.allocateBatch(1), 0u);
}

TEST_F(EngineTest, BadMetadataConfigFailsClearly) {
  auto c = loopbackConfig();
  c->set("metadata/type", "zookeeper");
  TransferEngine e(c);
  EXPECT_FALSE(e.available());
  EXPECT_TRUE(e.initStatus().IsInvalidArgument()) << e.initStatus().ToString();
  auto d = loopbackConfig();
  d->set("metadata/type", "http");  // no servers given
  TransferEngine f(d);
  EXPECT_TRUE(f.initStatus().IsInvalidArgument()) << f.initStatus().ToString();
}

TEST_F(EngineTest, ConfigFromFilePathAndEnvironment) {
  std::string path = ::testing::TempDir() + "/ferry_engine.json";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(R"({"rpc": {"bind_address": "127.0.0.1"}, "local_segment_name": "from-file"})", f);
  std::fclose(f);
  TransferEngine e(path);
  ASSERT_TRUE(e.available()) << e.initStatus().ToString();
  EXPECT_EQ(e.getSegmentName(), "from-file");
  TransferEngine missing(std::string("/nonexistent/ferry.json"));
  EXPECT_FALSE(missing.available());
  ::setenv("FERRY_CONF", R"({"rpc": {"bind_address": "127.0.0.1"}, "local_segment_name": "env"})", 1);
  TransferEngine from_env;
  ::unsetenv("FERRY_CONF");
  ASSERT_TRUE(from_env.available());
  EXPECT_EQ(from_env.getSegmentName(), "env");
}

TEST_F(EngineTest, WriteThenReadBack) {
  size_t n = 1 << 20;
  ASSERT_TRUE(runBatch(*a, {write(0, addr(rw, 100), n)}).ok());
  EXPECT_EQ(std::memcmp(rw.data() + 100, local.data(), n), 0);
  std::memset(local.data() + n, 0, n);
  ASSERT_TRUE(runBatch(*a, {read(n, addr(rw, 100), n)}).ok());
  EXPECT_EQ(std::memcmp(local.data() + n, local.data(), n), 0);
}

TEST_F(EngineTest, ReadFromReadOnlyBuffer) {
  ASSERT_TRUE(runBatch(*a, {read(0, addr(ro), ro.size())}).ok());
  EXPECT_EQ(std::memcmp(local.data(), ro.data(), ro.size()), 0);
}

TEST_F(EngineTest, StatusForms) {
  BatchID bid = a->allocateBatch(4);
  ASSERT_NE(bid, 0u);
  TransferStatus overall;
  ASSERT_TRUE(a->getTransferStatus(bid, overall).ok());
  EXPECT_EQ(overall.s, INITIAL);
  std::vector<Request> reqs = {write(0, addr(rw), 1000), write(1000, addr(rw, 5000), 3000),
                               read(8000, addr(rw, 9000), 10)};
  ASSERT_TRUE(a->submitTransfer(bid, reqs).ok());
  ASSERT_TRUE(a->waitTransfer(bid, overall, std::chrono::seconds(10)).ok());
  EXPECT_EQ(overall.s, COMPLETED);
  EXPECT_EQ(overall.transferred_bytes, 4010u);
  std::vector<TransferStatus> list;
  ASSERT_TRUE(a->getTransferStatus(bid, list).ok());
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1].s, COMPLETED);
  EXPECT_EQ(list[1].transferred_bytes, 3000u);
  TransferStatus one;
  ASSERT_TRUE(a->getTransferStatus(bid, 2, one).ok());
  EXPECT_EQ(one.transferred_bytes, 10u);
  // Polling as the spec's example does works too.
  ASSERT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 64)}).ok());
  do {
    ASSERT_TRUE(a->getTransferStatus(bid, overall).ok());
  } while (overall.s == PENDING);
  EXPECT_EQ(overall.s, COMPLETED);
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

// The spec's pattern: poll until the batch is no longer PENDING, then free it. The free
// must never be refused because the last completer is still settling.
TEST_F(EngineTest, FreeRightAfterPolledCompletion) {
  for (int i = 0; i < 2000; ++i) {
    BatchID bid = a->allocateBatch(2);
    ASSERT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 64), read(64, addr(rw, 64), 64)}).ok());
    TransferStatus overall;
    do {
      ASSERT_TRUE(a->getTransferStatus(bid, overall).ok());
    } while (overall.s == PENDING);
    ASSERT_EQ(overall.s, COMPLETED);
    Status st = a->freeBatch(bid);
    ASSERT_TRUE(st.ok()) << "iteration " << i << ": " << st.ToString();
  }
}

TEST_F(EngineTest, OwnSegmentUsesLocalCopy) {
  SegmentID self;
  ASSERT_TRUE(a->openSegment(self, a->getSegmentName()).ok());
  size_t half = kSize / 2;
  Request r{Request::WRITE, local.data(), self, addr(local, half), 4096};
  ASSERT_TRUE(runBatch(*a, {r}).ok());
  EXPECT_EQ(std::memcmp(local.data(), local.data() + half, 4096), 0);
  SegmentInfo info;
  ASSERT_TRUE(a->getSegmentInfo(self, info).ok());
  ASSERT_EQ(info.buffers.size(), 1u);
  EXPECT_EQ(info.buffers[0].base, addr(local));
  EXPECT_TRUE(a->closeSegment(self).ok());
}

// Own-segment copies streamed past the cache (threshold one byte): exact at every alignment,
// and overlapping ranges of one slice still move as memmove would.
TEST_F(EngineTest, OwnSegmentStreamingCopiesAreExact) {
  auto c = loopbackConfig();
  c->set<int64_t>("same_machine/streaming_copy_bytes", 1);
  TransferEngine e(c);
  ASSERT_TRUE(e.available());
  std::vector<uint8_t> buf(4 << 20);
  ASSERT_TRUE(e.registerLocalMemory(buf.data(), buf.size()).ok());
  SegmentID self;
  ASSERT_TRUE(e.openSegment(self, e.getSegmentName()).ok());
  const uint64_t base = reinterpret_cast<uint64_t>(buf.data());
  for (size_t n : {size_t{1}, size_t{300}, size_t{4097}, size_t{(1 << 20) + 7}}) {
    fillPattern(buf.data(), buf.size(), n);
    std::vector<uint8_t> expect(buf.begin() + 3, buf.begin() + 3 + n);
    ASSERT_TRUE(runBatch(e, {Request{Request::WRITE, buf.data() + 3, self, base + (2 << 20) + 61, n}}).ok()) << n;
    EXPECT_EQ(std::memcmp(buf.data() + (2 << 20) + 61, expect.data(), n), 0) << n;
    // Overlapping within one slice (a request is cut into slices of the route's smallest
    // slice size, 1 MiB here, copied in order): source [3, 3+n), destination [3+n/2+1, ...).
    if (n > (1 << 20)) continue;
    const size_t shift = n / 2 + 1;
    ASSERT_TRUE(runBatch(e, {Request{Request::READ, buf.data() + 3 + shift, self, base + 3, n}}).ok()) << n;
    EXPECT_EQ(std::memcmp(buf.data() + 3 + shift, expect.data(), n), 0) << n;
  }
}

TEST_F(EngineTest, ForceTcpServesOwnSegmentOverTcp) {
  auto c = loopbackConfig();
  c->set<bool>("transports/local/enable", false);  // what MC_FORCE_TCP sets
  TransferEngine e(c);
  ASSERT_TRUE(e.available());
  std::vector<uint8_t> mem(8192);
  fillPattern(mem.data(), 4096, 9);
  ASSERT_TRUE(e.registerLocalMemory(mem.data(), mem.size()).ok());
  SegmentID self;
  ASSERT_TRUE(e.openSegment(self, e.getSegmentName()).ok());
  EXPECT_EQ(ext::transportName(e, self), "tcp");
  ASSERT_TRUE(runBatch(e, {Request{Request::WRITE, mem.data(), self, addr(mem, 4096), 4096}}).ok());
  EXPECT_EQ(std::memcmp(mem.data(), mem.data() + 4096, 4096), 0);
}

TEST_F(EngineTest, SegmentInfoAndBuffersRegisteredLater) {
  SegmentInfo info;
  ASSERT_TRUE(a->getSegmentInfo(seg, info).ok());
  EXPECT_EQ(info.type, SegmentInfo::Memory);
  ASSERT_EQ(info.buffers.size(), 3u);
  // A buffer the peer registers after we opened it is usable without reopening.
  std::vector<uint8_t> later(4096);
  ASSERT_TRUE(b->registerLocalMemory(later.data(), later.size()).ok());
  ASSERT_TRUE(runBatch(*a, {write(0, addr(later), later.size())}).ok());
  EXPECT_EQ(std::memcmp(later.data(), local.data(), later.size()), 0);
  // Once unregistered, it is refused again.
  ASSERT_TRUE(b->unregisterLocalMemory(later.data()).ok());
  EXPECT_FALSE(runBatch(*a, {write(0, addr(later), later.size())}).ok());
}

// Any answer from the peer carries its registry version; once it differs from the cached
// descriptor's, the next submit refreshes first, so a buffer the peer removed or made
// read-only is refused at submit time, not only by the target after the bytes were sent.
TEST_F(EngineTest, PeerRegistrationChangeIsSeenWithoutAMiss) {
  auto submitCode = [&](const Request& r) {
    BatchID bid = a->allocateBatch(1);
    Status st = a->submitTransfer(bid, {r});
    TransferStatus ts;
    if (st.ok()) {
      EXPECT_TRUE(a->waitTransfer(bid, ts, std::chrono::seconds(5)).ok());
    }
    EXPECT_TRUE(a->freeBatch(bid).ok());
    return st.code();
  };
  std::vector<uint8_t> x(4096);
  ASSERT_TRUE(b->registerLocalMemory(x.data(), x.size()).ok());
  ASSERT_EQ(submitCode(write(0, addr(x), x.size())), Status::Code::kOk);  // fetched, cached
  // x becomes read-only at the same address: no miss in our cache.
  ASSERT_TRUE(b->unregisterLocalMemory(x.data()).ok());
  ASSERT_TRUE(b->registerLocalMemory(x.data(), x.size(), kGlobalReadOnly).ok());
  ASSERT_TRUE(runBatch(*a, {write(0, addr(rw), 64)}).ok());  // its ack tells us the version
  EXPECT_EQ(submitCode(write(0, addr(x), x.size())), Status::Code::kPermissionDenied);
  EXPECT_EQ(submitCode(read(0, addr(x), x.size())), Status::Code::kOk);
  // x removed: refused at submit as not registered.
  ASSERT_TRUE(b->unregisterLocalMemory(x.data()).ok());
  ASSERT_TRUE(runBatch(*a, {read(0, addr(ro), 64)}).ok());  // a read's answer tells us too
  EXPECT_EQ(submitCode(read(0, addr(x), x.size())), Status::Code::kInvalidArgument);
}

TEST_F(EngineTest, OpenIsCountedAndCloseReleases) {
  SegmentID again;
  ASSERT_TRUE(a->openSegment(again, b->getSegmentName()).ok());
  EXPECT_EQ(again, seg);
  EXPECT_TRUE(a->closeSegment(again).ok());
  EXPECT_TRUE(runBatch(*a, {write(0, addr(rw), 8)}).ok());  // still open once
  EXPECT_TRUE(a->closeSegment(seg).ok());
  EXPECT_TRUE(a->closeSegment(seg).IsNotFound());
}

TEST_F(EngineTest, AllocateLocalMemory) {
  void* p = nullptr;
  ASSERT_TRUE(a->allocateLocalMemory(&p, 1 << 20).ok());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  std::memset(p, 0x5a, 1 << 20);
  Request r{Request::WRITE, p, seg, addr(rw), 1 << 20};
  ASSERT_TRUE(runBatch(*a, {r}).ok());
  EXPECT_EQ(rw[12345], 0x5a);
  MemoryOptions opts;
  opts.location = "cuda:0";
  void* g = nullptr;
  EXPECT_EQ(a->allocateLocalMemory(&g, 4096, opts).code(), Status::Code::kNotSupported);
  EXPECT_TRUE(a->freeLocalMemory(p).ok());
  EXPECT_TRUE(a->freeLocalMemory(p).IsInvalidArgument());  // double free is refused
  EXPECT_TRUE(a->allocateLocalMemory(&p, 0).IsInvalidArgument());
}

TEST_F(EngineTest, BatchRegistrationIsAllOrNothing) {
  std::vector<uint8_t> x(4096), y(4096);
  // y overlaps `local`'s registration? No: overlap inside the list itself.
  std::vector<void*> addrs = {x.data(), y.data(), x.data() + 100};
  Status st = a->registerLocalMemory(addrs, {x.size(), y.size(), 10});
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists) << st.ToString();
  // Nothing of the failed batch stayed registered.
  EXPECT_TRUE(a->registerLocalMemory(x.data(), x.size()).ok());
  EXPECT_TRUE(a->registerLocalMemory(y.data(), y.size()).ok());
  EXPECT_TRUE(a->unregisterLocalMemory({x.data(), y.data()}, {x.size(), y.size()}).ok());
  EXPECT_TRUE(a->registerLocalMemory({x.data(), y.data()}, {x.size(), y.size()}).ok());
  EXPECT_TRUE(a->unregisterLocalMemory({x.data(), y.data()}).ok());
  EXPECT_TRUE(a->registerLocalMemory({x.data()}, {1, 2}).IsInvalidArgument());
  EXPECT_TRUE(a->unregisterLocalMemory(x.data()).IsNotFound());
}

TEST_F(EngineTest, NotificationsArrive) {
  ASSERT_TRUE(a->sendNotification(seg, {"a", "hello"}).ok());
  std::vector<Notification> got = awaitNotifications(*b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "a");
  EXPECT_EQ(got[0].msg, "hello");
}

TEST_F(EngineTest, NotificationWithBatchFollowsData) {
  BatchID bid = a->allocateBatch(2);
  std::string want = hashHex(local.data(), 1 << 20);
  ASSERT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 1 << 19), write(1 << 19, addr(rw, 1 << 19), 1 << 19)},
                                {"a", "done"})
                  .ok());
  std::vector<Notification> got = awaitNotifications(*b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].msg, "done");
  EXPECT_EQ(hashHex(rw.data(), 1 << 20), want);  // the data was there when it arrived
  TransferStatus st;
  ASSERT_TRUE(a->waitTransfer(bid, st, std::chrono::seconds(5)).ok());
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(EngineTest, ExportImportWithoutMetadata) {
  std::string handle;
  ASSERT_TRUE(b->exportLocalSegment(handle).ok());
  EXPECT_EQ(handle.rfind("ferry-segment:v1:", 0), 0u);
  TransferEngine c(loopbackConfig());
  std::vector<uint8_t> mine(4096, 0x11);
  ASSERT_TRUE(c.registerLocalMemory(mine.data(), mine.size()).ok());
  SegmentID imported;
  ASSERT_TRUE(c.importRemoteSegment(imported, handle).ok());
  SegmentInfo info;
  ASSERT_TRUE(c.getSegmentInfo(imported, info).ok());
  EXPECT_EQ(info.buffers.size(), 3u);
  ASSERT_TRUE(runBatch(c, {Request{Request::WRITE, mine.data(), imported, addr(rw, 7), 4096}}).ok());
  EXPECT_EQ(rw[7], 0x11);
  EXPECT_TRUE(c.importRemoteSegment(imported, "garbage").IsInvalidArgument());
  EXPECT_TRUE(c.importRemoteSegment(imported, "ferry-segment:v1:!!!!").IsInvalidArgument());
  EXPECT_TRUE(c.importRemoteSegment(imported, "ferry-segment:v1:e30=").IsInvalidArgument());  // "{}"
}

}  // namespace ferry::test
