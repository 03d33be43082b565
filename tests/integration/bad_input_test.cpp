// Every bad input gets a clear Status and leaves both engines working.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/checksum.h"
#include "common/endian.h"
#include "common/net.h"
#include "control/wire.h"
#include "transport/tcp/tcp_wire.h"
#include "engine_pair.h"

namespace ferry::test {

class BadInput : public EnginePair {
 protected:
  Status submitOne(const Request& r) {
    BatchID bid = a->allocateBatch(1);
    Status st = a->submitTransfer(bid, {r});
    TransferStatus ts;
    if (st.ok()) st = a->waitTransfer(bid, ts, std::chrono::seconds(10));
    if (st.ok() && ts.s != COMPLETED) st = Status::InternalError(ToString(ts.s));
    EXPECT_TRUE(a->freeBatch(bid).ok());
    return st;
  }
  void TearDown() override {
    // Whatever was refused, the pair still works.
    if (a && b && seg) {
      EXPECT_TRUE(runBatch(*a, {write(0, addr(rw), 4096)}).ok());
    }
  }
  static bool mentions(const Status& st, const std::string& text) {
    return st.message().find(text) != std::string::npos;
  }
};

TEST_F(BadInput, UnregisteredLocalAddress) {
  std::vector<uint8_t> stray(64);
  Status st = submitOne(Request{Request::WRITE, stray.data(), seg, addr(rw), 64});
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_TRUE(mentions(st, "not in registered memory")) << st.ToString();
  // Starts inside, runs past the end of the local registration.
  st = submitOne(Request{Request::WRITE, local.data() + kSize - 10, seg, addr(rw), 64});
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

TEST_F(BadInput, RangePastEndOfRemoteBuffer) {
  Status st = submitOne(write(0, addr(rw, kSize - 100), 200));
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_TRUE(mentions(st, "not inside a registered buffer")) << st.ToString();
  st = submitOne(read(0, 0x10, 8));  // nowhere near a buffer
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

TEST_F(BadInput, WriteToReadOnlyBuffer) {
  std::vector<uint8_t> before = ro;
  Status st = submitOne(write(0, addr(ro), 128));
  EXPECT_EQ(st.code(), Status::Code::kPermissionDenied) << st.ToString();
  EXPECT_EQ(ro, before);
}

TEST_F(BadInput, LocalOnlyBufferRefusesAllRemoteAccess) {
  EXPECT_EQ(submitOne(read(0, addr(lo), 16)).code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(submitOne(write(0, addr(lo), 16)).code(), Status::Code::kPermissionDenied);
}

TEST_F(BadInput, UnknownSegment) {
  Status st = submitOne(Request{Request::WRITE, local.data(), 424242, addr(rw), 8});
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  SegmentID h;
  EXPECT_TRUE(a->openSegment(h, "").IsInvalidArgument());
  EXPECT_TRUE(a->openSegment(h, "no-port-here").IsInvalidArgument());
  int fd;
  uint16_t free_port;
  ASSERT_TRUE(net::listenTcp("127.0.0.1", 0, fd, free_port).ok());
  ::close(fd);
  auto t0 = std::chrono::steady_clock::now();
  st = a->openSegment(h, "127.0.0.1:" + std::to_string(free_port));
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  SegmentInfo info;
  EXPECT_TRUE(a->getSegmentInfo(777, info).IsNotFound());
  EXPECT_TRUE(a->sendNotification(777, {"x", "y"}).IsNotFound());
}

TEST_F(BadInput, BadBatchId) {
  TransferStatus ts;
  std::vector<TransferStatus> list;
  EXPECT_TRUE(a->submitTransfer(99999, {write(0, addr(rw), 8)}).IsInvalidArgument());
  EXPECT_TRUE(a->getTransferStatus(99999, ts).IsInvalidArgument());
  EXPECT_TRUE(a->getTransferStatus(99999, 0, ts).IsInvalidArgument());
  EXPECT_TRUE(a->getTransferStatus(99999, list).IsInvalidArgument());
  EXPECT_TRUE(a->waitTransfer(99999, ts, std::chrono::milliseconds(10)).IsInvalidArgument());
  EXPECT_TRUE(a->freeBatch(99999).IsInvalidArgument());
  BatchID bid = a->allocateBatch(1);
  ASSERT_TRUE(a->freeBatch(bid).ok());
  EXPECT_TRUE(a->freeBatch(bid).IsInvalidArgument());  // already freed
  EXPECT_TRUE(a->getTransferStatus(bid, ts).IsInvalidArgument());
}

TEST_F(BadInput, TaskIdOutOfRange) {
  BatchID bid = a->allocateBatch(4);
  ASSERT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 8)}).ok());
  TransferStatus ts;
  EXPECT_TRUE(a->getTransferStatus(bid, 1, ts).IsInvalidArgument());  // only task 0 exists
  ASSERT_TRUE(a->waitTransfer(bid, ts, std::chrono::seconds(5)).ok());
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(BadInput, ZeroLengthAndNullSource) {
  EXPECT_TRUE(submitOne(write(0, addr(rw), 0)).IsInvalidArgument());
  EXPECT_TRUE(submitOne(Request{Request::WRITE, nullptr, seg, addr(rw), 8}).IsInvalidArgument());
  // An opcode outside the enum, as a C or Python caller could pass it.
  Request bad = write(0, addr(rw), 8);
  int seven = 7;
  std::memcpy(&bad.opcode, &seven, sizeof seven);
  EXPECT_TRUE(submitOne(bad).IsInvalidArgument());
}

TEST_F(BadInput, BatchOverCapacity) {
  EXPECT_EQ(a->allocateBatch(0), 0u);
  BatchID bid = a->allocateBatch(2);
  Status st = a->submitTransfer(bid, {write(0, addr(rw), 8), write(8, addr(rw, 8), 8), write(16, addr(rw, 16), 8)});
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_TRUE(mentions(st, "over capacity")) << st.ToString();
  ASSERT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 8), write(8, addr(rw, 8), 8)}).ok());
  EXPECT_TRUE(a->submitTransfer(bid, {write(0, addr(rw), 8)}).IsInvalidArgument());
  TransferStatus ts;
  ASSERT_TRUE(a->waitTransfer(bid, ts, std::chrono::seconds(5)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(BadInput, OneBadRequestSubmitsNone) {
  std::memset(rw.data(), 0, 64);
  BatchID bid = a->allocateBatch(2);
  Status st = a->submitTransfer(bid, {write(0, addr(rw), 64), write(0, addr(ro), 64)});
  EXPECT_EQ(st.code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(mentions(st, "request 1")) << st.ToString();
  TransferStatus ts;
  ASSERT_TRUE(a->getTransferStatus(bid, ts).ok());
  EXPECT_EQ(ts.s, INITIAL);  // nothing was submitted
  EXPECT_EQ(rw[0], 0);
  EXPECT_TRUE(a->freeBatch(bid).ok());
}

TEST_F(BadInput, RegistrationErrors) {
  EXPECT_EQ(a->registerLocalMemory(local.data() + 10, 100).code(), Status::Code::kAlreadyExists);
  EXPECT_TRUE(a->registerLocalMemory(nullptr, 100).IsInvalidArgument());
  std::vector<uint8_t> x(16);
  EXPECT_TRUE(a->registerLocalMemory(x.data(), 0).IsInvalidArgument());
  EXPECT_TRUE(a->unregisterLocalMemory(x.data()).IsNotFound());
  EXPECT_TRUE(a->unregisterLocalMemory(local.data(), 5).IsInvalidArgument());  // wrong length
  EXPECT_TRUE(a->freeLocalMemory(x.data()).IsInvalidArgument());
}

// Memory registered as a device's is never handed to a host transport, on either side, and
// the refusal names the kinds. (The bytes here are host memory labelled "cuda": a transport
// that ignored the label would move them, and a real GPU pointer would crash it.)
TEST_F(BadInput, DeviceMemoryIsNeverHandedToHostTransports) {
  // A location is a claim the CUDA driver checks: host memory said to be GPU memory is
  // refused (tests/cuda covers the other mismatches and GPU memory over the fake driver).
  std::vector<uint8_t> not_gpu(4096), npu_theirs(4096);
  MemoryOptions cuda;
  cuda.location = "cuda:0";
  EXPECT_FALSE(a->registerLocalMemory(not_gpu.data(), not_gpu.size(), cuda).ok());
  // Another device's memory, which no transport here touches: a peer's buffer of that kind
  // is never handed to a host transport, whatever the hint says.
  MemoryOptions npu;
  npu.location = "npu:0";
  ASSERT_TRUE(b->registerLocalMemory(npu_theirs.data(), npu_theirs.size(), npu).ok());
  BatchID bid = a->allocateBatch(4);
  Status st = a->submitTransfer(bid, {Request{Request::READ, local.data(), seg, reinterpret_cast<uint64_t>(npu_theirs.data()),
                                              64, "tcp"}});
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();  // a hint does not override kinds
  st = a->submitTransfer(bid, {write(0, reinterpret_cast<uint64_t>(npu_theirs.data()), 64)});
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_NE(st.message().find("host memory to device memory"), std::string::npos) << st.ToString();
  TransferStatus ts;
  EXPECT_TRUE(a->getTransferStatus(bid, ts).ok());
  EXPECT_EQ(ts.s, INITIAL);  // nothing was submitted
  EXPECT_TRUE(a->freeBatch(bid).ok());
  // Host memory still moves: the refusal was about kinds, not the segment.
  EXPECT_TRUE(runBatch(*a, {write(0, addr(rw), 64)}).ok());
}

TEST_F(BadInput, OversizedNotification) {
  Notification big{"x", std::string(wire::kMaxNotifyBytes + 1, 'm')};
  EXPECT_TRUE(a->sendNotification(seg, big).IsInvalidArgument());
}

TEST_F(BadInput, PeerGone) {
  b.reset();  // the target engine shuts down
  auto t0 = std::chrono::steady_clock::now();
  BatchID bid = a->allocateBatch(1);
  Status st = a->submitTransfer(bid, {write(0, 0x1000, 8)});  // cached descriptor says nothing
  TransferStatus ts;
  if (st.ok()) st = a->waitTransfer(bid, ts, std::chrono::seconds(10));
  EXPECT_FALSE(st.ok() && ts.s == COMPLETED);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ASSERT_TRUE(a->freeBatch(bid).ok());
  // A buffer that was valid before: the transfer fails, it does not hang.
  bid = a->allocateBatch(1);
  st = a->submitTransfer(bid, {write(0, addr(rw), 4096)});
  if (st.ok()) {
    ASSERT_TRUE(a->waitTransfer(bid, ts, std::chrono::seconds(10)).ok());
    EXPECT_EQ(ts.s, FAILED);
  } else {
    EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
    ASSERT_TRUE(a->getTransferStatus(bid, 0, ts).ok());
    EXPECT_EQ(ts.s, FAILED);
  }
  EXPECT_TRUE(a->freeBatch(bid).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  seg = 0;  // skip the TearDown round trip
}

// A peer that skips the client-side checks: the target itself enforces bounds and permissions.
class RawPeer : public BadInput {
 protected:
  // `file_id` != 0 sends the file variant (FileWrite/FileRead) of a WRITE/READ.
  wire::FrameHeader roundTrip(wire::MsgType type, uint64_t target, uint64_t len, std::string* body,
                              uint64_t file_id = 0, uint64_t sum = 0) {
    int fd = -1;
    EXPECT_TRUE(net::connectTcp("127.0.0.1", b->getRpcServerPort(), 1000, fd).ok());
    const bool write = type == tcp_wire::kWrite || type == tcp_wire::kWriteSum;
    if (file_id) type = write ? tcp_wire::kFileWrite : tcp_wire::kFileRead;
    const size_t range = tcp_wire::rangeSizeOf(type);
    std::string payload(write ? len : 0, 'Z');
    uint8_t hb[wire::kHeaderSize + tcp_wire::kFileRangeSize];
    wire::encodeHeader({type, static_cast<uint32_t>(range + payload.size()), 0, 1}, hb);
    if (file_id)
      tcp_wire::encodeFileRange(file_id, target, len, hb + wire::kHeaderSize);
    else
      tcp_wire::encodeRange(target, len, hb + wire::kHeaderSize);
    if (type == tcp_wire::kWriteSum) putU64(hb + wire::kHeaderSize + tcp_wire::kRangeSize, sum);
    EXPECT_TRUE(net::writeAll(fd, hb, wire::kHeaderSize + range).ok());
    EXPECT_TRUE(net::writeAll(fd, payload.data(), payload.size()).ok());
    wire::FrameHeader h;
    EXPECT_TRUE(net::readAll(fd, hb, wire::kHeaderSize).ok());
    EXPECT_TRUE(wire::decodeHeader(hb, wire::kHeaderSize, tcp_wire::messages(), h).ok());
    body->resize(h.body_len);
    EXPECT_TRUE(net::readAll(fd, body->data(), body->size()).ok());
    ::close(fd);
    return h;
  }
};

TEST_F(RawPeer, TargetEnforcesPermissionsAndBounds) {
  std::vector<uint8_t> ro_before = ro;
  std::string body;
  auto h = roundTrip(tcp_wire::kWrite, addr(ro), 64, &body);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  EXPECT_EQ(ro, ro_before);
  h = roundTrip(tcp_wire::kRead, addr(lo), 64, &body);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  h = roundTrip(tcp_wire::kWrite, addr(rw, kSize - 10), 64, &body);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kOutOfRange)) << body;
  EXPECT_NE(body.find("runs past the end"), std::string::npos) << body;
  h = roundTrip(tcp_wire::kRead, 0x1000, 8, &body);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kOutOfRange)) << body;
  h = roundTrip(tcp_wire::kRead, addr(rw), 8, &body);  // and a good one is served
  EXPECT_EQ(h.status, 0u);
  EXPECT_EQ(std::memcmp(body.data(), rw.data(), 8), 0);
}

// Checksummed frames (WriteSum/ReadSum): the target hashes what landed and refuses to vouch
// for bytes that do not match the sender's claim; permissions and bounds hold as for Write.
TEST_F(RawPeer, ChecksummedFramesAreCheckedAtTheTarget) {
  const std::string zs(64, 'Z');  // roundTrip's payload
  const uint64_t right = checksum::xxh3(zs.data(), zs.size());
  std::string body;
  auto h = roundTrip(tcp_wire::kWriteSum, addr(rw, 64), 64, &body, 0, right);
  EXPECT_EQ(h.status, 0u) << body;
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rw.data()) + 64, 64), zs);
  h = roundTrip(tcp_wire::kWriteSum, addr(rw, 256), 64, &body, 0, right ^ 1);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kCorrupted)) << body;
  EXPECT_NE(body.find("checksum mismatch at the target"), std::string::npos) << body;
  const std::vector<uint8_t> ro_before = ro;
  h = roundTrip(tcp_wire::kWriteSum, addr(ro), 64, &body, 0, right);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  EXPECT_EQ(ro, ro_before);
  h = roundTrip(tcp_wire::kWriteSum, addr(rw, kSize - 10), 64, &body, 0, right);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kOutOfRange)) << body;
  // A read comes back as the target's checksum of the range, then its bytes.
  h = roundTrip(tcp_wire::kReadSum, addr(rw, 64), 64, &body);
  ASSERT_EQ(h.status, 0u) << body;
  ASSERT_EQ(body.size(), tcp_wire::kSumSize + 64);
  EXPECT_EQ(getU64(reinterpret_cast<const uint8_t*>(body.data())), right);
  EXPECT_EQ(body.substr(tcp_wire::kSumSize), zs);
  h = roundTrip(tcp_wire::kReadSum, addr(lo), 8, &body);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;

  // Vectored: a verdict per range of a WriteSumV; ReadSumV's checksums lead its data.
  auto vector = [&](wire::MsgType type, const std::vector<std::array<uint64_t, 3>>& ranges, std::string* out) {
    int fd = -1;
    EXPECT_TRUE(net::connectTcp("127.0.0.1", b->getRpcServerPort(), 1000, fd).ok());
    const size_t entry = tcp_wire::rangeEntrySize(type);
    std::string frame(wire::kHeaderSize + tcp_wire::kRangesHeadSize + ranges.size() * entry, '\0');
    auto* p = reinterpret_cast<uint8_t*>(frame.data());
    tcp_wire::encodeRangesHead(static_cast<uint32_t>(ranges.size()), p + wire::kHeaderSize);
    std::string payload;
    for (size_t i = 0; i < ranges.size(); ++i) {
      uint8_t* at = p + wire::kHeaderSize + tcp_wire::kRangesHeadSize + i * entry;
      if (type == tcp_wire::kWriteSumV) {
        tcp_wire::encodeSumRange(ranges[i][0], ranges[i][1], ranges[i][2], at);
        payload.append(ranges[i][1], 'S');
      } else {
        tcp_wire::encodeRange(ranges[i][0], ranges[i][1], at);
      }
    }
    frame += payload;
    wire::encodeHeader({type, static_cast<uint32_t>(frame.size() - wire::kHeaderSize), 0, 1},
                       reinterpret_cast<uint8_t*>(frame.data()));
    EXPECT_TRUE(net::writeAll(fd, frame.data(), frame.size()).ok());
    uint8_t hb[wire::kHeaderSize];
    wire::FrameHeader got;
    EXPECT_TRUE(net::readAll(fd, hb, sizeof hb).ok());
    EXPECT_TRUE(wire::decodeHeader(hb, sizeof hb, tcp_wire::messages(), got).ok());
    out->resize(got.body_len);
    EXPECT_TRUE(net::readAll(fd, out->data(), out->size()).ok());
    ::close(fd);
    return got;
  };
  const std::string ss(32, 'S');
  const uint64_t s32 = checksum::xxh3(ss.data(), ss.size());
  h = vector(tcp_wire::kWriteSumV, {{addr(rw, 1024), 32, s32}, {addr(rw, 2048), 32, s32 + 1}}, &body);
  EXPECT_EQ(h.type, tcp_wire::kSumVerdicts);
  ASSERT_EQ(h.status, 0u) << body;
  EXPECT_EQ(body, std::string("\x00\x01", 2));  // the second range's claim was wrong
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rw.data()) + 2048, 32), ss);  // it landed all the same
  h = vector(tcp_wire::kWriteSumV, {{addr(rw, 1024), 32, s32}, {addr(ro), 32, s32}}, &body);
  EXPECT_EQ(h.type, tcp_wire::kSumVerdicts);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  EXPECT_EQ(ro, ro_before);
  h = vector(tcp_wire::kReadSumV, {{addr(rw, 2048), 32, 0}, {addr(rw, 64), 64, 0}}, &body);
  ASSERT_EQ(h.status, 0u) << body;
  ASSERT_EQ(body.size(), 2 * tcp_wire::kSumSize + 96);
  EXPECT_EQ(getU64(reinterpret_cast<const uint8_t*>(body.data())), s32);
  EXPECT_EQ(getU64(reinterpret_cast<const uint8_t*>(body.data()) + 8), right);
  EXPECT_EQ(body.substr(16), ss + zs);
}

// Vectored frames (WriteV/ReadV): every range is checked before any byte lands (one bad
// range refuses the whole frame), and malformed range lists close the connection.
TEST_F(RawPeer, VectoredFramesAreAllOrNothingAndMalformedOnesClose) {
  // A frame of `ranges` (address, length) with 'V' payloads for writes; its answer, or
  // nullopt when the target closed the connection instead.
  auto send = [&](wire::MsgType type, const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
                  uint32_t count_field, std::string* body) -> std::optional<wire::FrameHeader> {
    int fd = -1;
    EXPECT_TRUE(net::connectTcp("127.0.0.1", b->getRpcServerPort(), 1000, fd).ok());
    std::string frame(wire::kHeaderSize + tcp_wire::kRangesHeadSize + ranges.size() * tcp_wire::kRangeSize, '\0');
    auto* p = reinterpret_cast<uint8_t*>(frame.data());
    tcp_wire::encodeRangesHead(count_field, p + wire::kHeaderSize);
    uint64_t total = 0;
    for (size_t i = 0; i < ranges.size(); ++i) {
      tcp_wire::encodeRange(ranges[i].first, ranges[i].second,
                            p + wire::kHeaderSize + tcp_wire::kRangesHeadSize + i * tcp_wire::kRangeSize);
      total += ranges[i].second;
    }
    if (type == tcp_wire::kWriteV) frame.append(total, 'V');
    wire::encodeHeader({type, static_cast<uint32_t>(frame.size() - wire::kHeaderSize), 0, 1},
                       reinterpret_cast<uint8_t*>(frame.data()));  // (append may have moved it)
    EXPECT_TRUE(net::writeAll(fd, frame.data(), frame.size()).ok());
    uint8_t hb[wire::kHeaderSize];
    wire::FrameHeader h;
    std::optional<wire::FrameHeader> out;
    if (net::readAll(fd, hb, sizeof hb).ok() && wire::decodeHeader(hb, sizeof hb, tcp_wire::messages(), h).ok()) {
      body->resize(h.body_len);
      if (net::readAll(fd, body->data(), body->size()).ok()) out = h;
    }
    ::close(fd);
    return out;
  };
  const std::vector<uint8_t> rw_before = rw, ro_before = ro;
  std::string body;
  auto h = send(tcp_wire::kWriteV, {{addr(rw), 64}, {addr(ro), 64}}, 2, &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  EXPECT_EQ(rw, rw_before) << "a range of a refused frame landed";
  EXPECT_EQ(ro, ro_before);
  h = send(tcp_wire::kReadV, {{addr(rw), 8}, {addr(lo), 8}}, 2, &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  h = send(tcp_wire::kWriteV, {{addr(rw), 64}, {addr(rw, kSize - 10), 64}}, 2, &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, static_cast<uint32_t>(Status::Code::kOutOfRange)) << body;
  EXPECT_EQ(rw, rw_before);
  // Good ones are served: each range in place, read back in order.
  h = send(tcp_wire::kWriteV, {{addr(rw, 100), 3}, {addr(rw, 7), 2}}, 2, &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 0u) << body;
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rw.data()) + 100, 3), "VVV");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rw.data()) + 7, 2), "VV");
  h = send(tcp_wire::kReadV, {{addr(rw, 7), 2}, {addr(rw, 100), 3}, {addr(ro), 1}}, 3, &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 0u);
  EXPECT_EQ(body, std::string("VVVVV") + static_cast<char>(ro[0]));
  // A full frame: kMaxRanges ranges, one byte each.
  std::vector<std::pair<uint64_t, uint64_t>> full;
  for (size_t i = 0; i < tcp_wire::kMaxRanges; ++i) full.push_back({addr(rw, 1000 + 2 * i), 1});
  h = send(tcp_wire::kWriteV, full, static_cast<uint32_t>(full.size()), &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 0u) << body;
  for (size_t i = 0; i < tcp_wire::kMaxRanges; ++i) EXPECT_EQ(rw[1000 + 2 * i], 'V') << i;
  for (size_t i = 0; i < tcp_wire::kMaxRanges; ++i) EXPECT_EQ(rw[1001 + 2 * i], rw_before[1001 + 2 * i]) << i;
  h = send(tcp_wire::kReadV, full, static_cast<uint32_t>(full.size()), &body);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 0u);
  EXPECT_EQ(body, std::string(tcp_wire::kMaxRanges, 'V'));
  // Malformed: no ranges, more than kMaxRanges, a count the frame has no room for, a zero length.
  EXPECT_FALSE(send(tcp_wire::kReadV, {{addr(rw), 8}}, 0, &body));
  full.push_back({addr(rw, 8), 1});
  EXPECT_FALSE(send(tcp_wire::kWriteV, full, static_cast<uint32_t>(full.size()), &body));
  EXPECT_FALSE(send(tcp_wire::kWriteV, {{addr(rw), 8}}, tcp_wire::kMaxRanges + 1, &body));
  EXPECT_FALSE(send(tcp_wire::kWriteV, {{addr(rw), 8}}, 3, &body));
  EXPECT_FALSE(send(tcp_wire::kWriteV, {{addr(rw), 8}, {addr(rw, 64), 0}}, 2, &body));
  std::vector<uint8_t> now = rw;
  for (size_t i : {7, 8, 100, 101, 102}) now[i] = rw_before[i];  // what the good frames wrote
  for (size_t i = 0; i < tcp_wire::kMaxRanges; ++i) now[1000 + 2 * i] = rw_before[1000 + 2 * i];
  EXPECT_EQ(now, rw_before) << "bytes of a malformed frame landed";
}

// The same for files: unknown ids, ranges past the exposed length and writes to a read-only
// file are refused by the owner; good accesses are served from and to the file.
TEST_F(RawPeer, TargetEnforcesFilePermissionsAndBounds) {
  TempDir dir;
  ASSERT_TRUE(b->exposeFile("rw", dir.file("rw"), kGlobalReadWrite, 1 << 20).ok());
  ASSERT_TRUE(b->exposeFile("ro", dir.file("rw2"), kGlobalReadWrite, 4096).ok());
  ASSERT_TRUE(b->unexposeFile("ro").ok());
  ASSERT_TRUE(b->exposeFile("ro", dir.file("rw2"), kGlobalReadOnly).ok());
  uint64_t rw_id = 0, ro_id = 0;
  for (const auto& f : localDescriptor(*b).files) (f.name == "rw" ? rw_id : ro_id) = f.id;
  ASSERT_TRUE(rw_id && ro_id);
  std::string body;
  auto h = roundTrip(tcp_wire::kWrite, 0, 64, &body, ro_id);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << body;
  h = roundTrip(tcp_wire::kRead, 0, 64, &body, 999);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kNotFound)) << body;
  h = roundTrip(tcp_wire::kRead, 0, 64, &body, ro_id - 1);  // the id that was unexposed
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kNotFound)) << body;
  h = roundTrip(tcp_wire::kWrite, (1 << 20) - 10, 64, &body, rw_id);
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kOutOfRange)) << body;
  h = roundTrip(tcp_wire::kWrite, 100, 64, &body, rw_id);  // good ones are served
  EXPECT_EQ(h.status, 0u) << body;
  h = roundTrip(tcp_wire::kRead, 100, 64, &body, rw_id);
  EXPECT_EQ(h.status, 0u);
  EXPECT_EQ(body, std::string(64, 'Z'));
}

}  // namespace ferry::test
