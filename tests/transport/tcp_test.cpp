// The tcp transport's multi-rail planning and its re-posting of a lost connection's slices.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

#include "ferry/transfer_engine.h"
#include "test_util.h"
#include "common/net.h"
#include "model/slice.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_rails.h"
#include "transport/tcp/tcp_socket.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry {
namespace {

using tcp_rails::Path;

std::vector<std::pair<std::string, std::string>> pairs(const std::vector<Path>& paths) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& p : paths) out.emplace_back(p.source, p.host);
  return out;
}

TEST(TcpRails, EachSourceGoesToThePeerRailOnItsSubnet) {
  // The peer lists its rails in another order than ours: pairing is by address, not index.
  auto p = tcp_rails::plan({"10.0.1.1", "10.0.2.1"}, {"10.0.2.2", "10.0.1.2"}, "10.0.1.2", 2);
  EXPECT_EQ(pairs(p), (std::vector<std::pair<std::string, std::string>>{{"10.0.1.1", "10.0.1.2"},
                                                                        {"10.0.2.1", "10.0.2.2"}}));
  // More connections than rails: round-robin over the rails.
  p = tcp_rails::plan({"10.0.1.1", "10.0.2.1"}, {"10.0.1.2", "10.0.2.2"}, "10.0.1.2", 4);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[2].source, "10.0.1.1");
  EXPECT_EQ(p[2].host, "10.0.1.2");
  EXPECT_EQ(p[3].host, "10.0.2.2");
  // More rails than connections: one per rail at least.
  EXPECT_EQ(tcp_rails::plan({"10.0.1.1", "10.0.2.1", "10.0.3.1"}, {}, "h", 1).size(), 3u);
}

TEST(TcpRails, WithoutRailsOnOneSide) {
  auto p = tcp_rails::plan({}, {}, "10.9.9.9", 2);
  EXPECT_EQ(pairs(p), (std::vector<std::pair<std::string, std::string>>{{"", "10.9.9.9"}, {"", "10.9.9.9"}}));
  p = tcp_rails::plan({}, {"10.0.1.2", "10.0.2.2"}, "10.0.1.2", 2);
  EXPECT_EQ(p[0].host, "10.0.1.2");
  EXPECT_EQ(p[1].host, "10.0.2.2");
  p = tcp_rails::plan({"10.0.1.1", "10.0.2.1"}, {}, "10.0.1.2", 2);
  EXPECT_EQ(p[1].source, "10.0.2.1");
  EXPECT_EQ(p[1].host, "10.0.1.2");
  // No peer rail of our family: leave as routing decides rather than bind a v4 source to v6.
  p = tcp_rails::plan({"10.0.1.1"}, {"fd00::2"}, "fd00::2", 1);
  EXPECT_EQ(p[0].source, "");
  EXPECT_EQ(p[0].host, "fd00::2");
}

TEST(TcpRails, PeerClaimsOtherThanAShortAddressListAreIgnored) {
  EXPECT_EQ(tcp_rails::parsePeer(R"({"rails":["10.0.1.2","fd00::2"]})"),
            (std::vector<std::string>{"10.0.1.2", "fd00::2"}));
  for (const char* bad : {"", "[]", "{}", R"({"rails":"10.0.1.2"})", R"({"rails":["evil.example.com"]})",
                          R"({"rails":[1]})", R"({"rails":["10.0.1.2", null]})"})
    EXPECT_TRUE(tcp_rails::parsePeer(bad).empty()) << bad;
  std::string many = R"({"rails":[)";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"10.0.0." + std::to_string(i + 1) + "\"";
  EXPECT_TRUE(tcp_rails::parsePeer(many + "]}").empty());
  EXPECT_EQ(tcp_rails::describe({}), "");
  EXPECT_EQ(tcp_rails::parsePeer(tcp_rails::describe({"10.0.1.2"})), std::vector<std::string>{"10.0.1.2"});
}

TEST(TcpRails, LocalRailsMustBeAddressesOfThisMachine) {
  std::vector<std::string> rails;
  ASSERT_TRUE(tcp_rails::parseLocal(" 127.0.0.1, 127.0.0.2,127.0.0.1", rails).ok());
  EXPECT_EQ(rails, (std::vector<std::string>{"127.0.0.1", "127.0.0.2"}));
  EXPECT_TRUE(tcp_rails::parseLocal("", rails).ok());
  EXPECT_TRUE(rails.empty());
  EXPECT_TRUE(tcp_rails::parseLocal("localhost", rails).IsInvalidArgument());
  EXPECT_TRUE(tcp_rails::parseLocal("192.0.2.1", rails).IsInvalidArgument());  // TEST-NET: never ours
  // The engine refuses to start with a bad rail rather than run without it.
  auto c = test::loopbackConfig();
  c->set("transports/tcp/rails", "127.0.0.1,not-an-address");
  TransferEngine e(c);
  EXPECT_FALSE(e.available());
  EXPECT_NE(e.initStatus().message().find("not-an-address"), std::string::npos) << e.initStatus().ToString();
}

// Calls `visit` with each of this process's connected IPv4 sockets and its two addresses.
void forEachInetSocket(const std::function<void(int fd, const sockaddr_in& local, const sockaddr_in& peer)>& visit) {
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    int fd = atoi(e->d_name);
    sockaddr_in local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (fd <= 2 || getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0 || local.sin_family != AF_INET)
      continue;
    visit(fd, local, peer);
  }
  closedir(d);
}

// Shuts down this process's established TCP connections that leave from `source` to `port`:
// to the engine a lost path (as a cable pulled), not a close of its own.
int cutConnectionsFrom(const char* source, uint16_t port) {
  int cut = 0;
  forEachInetSocket([&](int fd, const sockaddr_in& local, const sockaddr_in& peer) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &local.sin_addr, ip, sizeof ip);
    tcp_info info{};
    socklen_t il = sizeof info;
    const bool established = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &il) == 0 && info.tcpi_state == TCP_ESTABLISHED;
    // (A connection cut before stays open until its transport reaps it: not counted.)
    if (std::string(ip) == source && ntohs(peer.sin_port) == port && established && ::shutdown(fd, SHUT_RDWR) == 0)
      ++cut;
  });
  return cut;
}

// a's requests over tcp covering `local` (registered at a) against `remote` (registered at b,
// open to peers) in `block`-byte pieces; `port` gets b's RPC port. Empty (and a failure
// reported) when the engines could not be connected.
std::vector<Request> blockRequests(TransferEngine& a, TransferEngine& b, Request::OpCode op, std::vector<uint8_t>& local,
                                   std::vector<uint8_t>& remote, size_t block, uint16_t& port) {
  std::vector<Request> reqs;
  SegmentID seg;
  if (!a.registerLocalMemory(local.data(), local.size()).ok() ||
      !b.registerLocalMemory(remote.data(), remote.size(), kGlobalReadWrite).ok() ||
      !a.openSegment(seg, b.getSegmentName()).ok()) {
    ADD_FAILURE() << "engines not connected";
    return reqs;
  }
  const std::string name = b.getSegmentName();
  port = static_cast<uint16_t>(std::stoi(name.substr(name.rfind(':') + 1)));
  for (size_t off = 0; off < local.size(); off += block)
    reqs.push_back(Request{op, local.data() + off, seg, reinterpret_cast<uint64_t>(remote.data() + off), block, "tcp"});
  return reqs;
}

class TcpRailFailover : public ::testing::TestWithParam<Request::OpCode> {};

TEST_P(TcpRailFailover, LostConnectionsSlicesAreRepostedOnTheOtherRail) {
  constexpr size_t kSize = 96 << 20, kBlock = 1 << 20;
  // Buffers before engines: the engines (and the target's server threads, which may still
  // be sending from a cut connection) stop before the memory goes.
  std::vector<uint8_t> src(kSize), dst(kSize);
  auto ca = test::loopbackConfig(20000);
  ca->set("transports/tcp/rails", "127.0.0.1,127.0.0.2");  // two paths, one per source
  TransferEngine a(ca), b(test::loopbackConfig(20000));
  ASSERT_TRUE(a.available() && b.available());
  test::fillPattern(src.data(), kSize, 7);
  const bool write = GetParam() == Request::WRITE;
  std::vector<uint8_t>& local = write ? src : dst;
  std::vector<uint8_t>& remote = write ? dst : src;
  uint16_t port = 0;
  const std::vector<Request> reqs = blockRequests(a, b, GetParam(), local, remote, kBlock, port);
  ASSERT_FALSE(reqs.empty());
  // A first batch opens both paths.
  ASSERT_TRUE(test::runBatch(a, {reqs[0]}, std::chrono::seconds(20)).ok());
  BatchID batch = a.allocateBatch(reqs.size());
  ASSERT_TRUE(a.submitTransfer(batch, reqs).ok());
  // Cut the path from 127.0.0.2 while the batch (96 MiB over two connections) is moving.
  EXPECT_EQ(cutConnectionsFrom("127.0.0.2", port), 1);
  TransferStatus ts;
  ASSERT_TRUE(a.waitTransfer(batch, ts, std::chrono::seconds(30)).ok());
  EXPECT_EQ(ts.s, COMPLETED);
  EXPECT_EQ(ts.transferred_bytes, kSize);
  // Writes that were on the cut connection may still land (the target may not have taken
  // in all it had received): a cancel of the batch cannot promise otherwise, and says so.
  // (Whether the cut connection had writes in flight depends on timing: the deterministic
  // case is TcpConnection.WritesCutOffInFlightMakeACancelUnfenced.)
  Status fenced = a.cancelTransfer(batch);
  if (write)
    EXPECT_TRUE(fenced.ok() || fenced.IsUnavailable()) << fenced.ToString();
  else
    EXPECT_TRUE(fenced.ok()) << fenced.ToString();  // reads land here, by our own receiver
  ASSERT_TRUE(a.freeBatch(batch).ok());
  EXPECT_EQ(src, dst);
  // The lost path is connected again for the next submit.
  std::fill(dst.begin(), dst.end(), 0);
  ASSERT_TRUE(test::runBatch(a, reqs, std::chrono::seconds(30)).ok());
  EXPECT_EQ(src, dst);
  EXPECT_EQ(cutConnectionsFrom("127.0.0.2", port), 1);
}

// This process's TCP sockets to (initiator ends) or from (target ends) `port`, each with its
// send buffer (SO_SNDBUF).
struct FoundSendBuffers {
  std::vector<int> initiator, target;
};
FoundSendBuffers sendBuffersOf(uint16_t port) {
  FoundSendBuffers out;
  forEachInetSocket([&](int fd, const sockaddr_in& local, const sockaddr_in& peer) {
    int sndbuf = 0;
    socklen_t sl = sizeof sndbuf;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) != 0) return;
    if (ntohs(peer.sin_port) == port) out.initiator.push_back(sndbuf);
    if (ntohs(local.sin_port) == port) out.target.push_back(sndbuf);
  });
  return out;
}

// transports/tcp/send_buffer_bytes on the sockets that carry payloads, at both ends: the
// initiator's connections from the start, the target's once they have carried a frame.
// (Control connections between the engines keep the kernel's sizing.)
class TcpSendBuffer : public ::testing::TestWithParam<std::tuple<int64_t, int>> {};  // option, connections

TEST_P(TcpSendBuffer, BothEndsOfEachConnectionToThisMachine) {
  const auto [option, connections] = GetParam();
  constexpr size_t kSize = 8 << 20, kBlock = 1 << 20;
  std::vector<uint8_t> src(kSize), dst(kSize);
  auto config = [option = option, connections = connections] {
    auto c = test::loopbackConfig(20000);
    c->set<int64_t>("transports/tcp/connections_per_peer", connections);
    c->set<int64_t>("transports/tcp/send_buffer_bytes", option);
    return c;
  };
  TransferEngine a(config()), b(config());
  ASSERT_TRUE(a.available() && b.available());
  test::fillPattern(src.data(), kSize, 11);
  uint16_t port = 0;
  std::vector<Request> reqs = blockRequests(a, b, Request::WRITE, src, dst, kBlock, port);
  ASSERT_FALSE(reqs.empty());
  ASSERT_TRUE(test::runBatch(a, reqs, std::chrono::seconds(20)).ok());
  EXPECT_EQ(src, dst);
  for (Request& r : reqs) r.opcode = Request::READ;  // the target's ends send the payloads now
  std::fill(src.begin(), src.end(), 0);
  ASSERT_TRUE(test::runBatch(a, reqs, std::chrono::seconds(20)).ok());
  EXPECT_EQ(src, dst);

  const FoundSendBuffers found = sendBuffersOf(port);
  const size_t expect = tcp_socket::sendBuffers(option, static_cast<size_t>(connections)).same_machine;
  if (option == tcp_socket::kAutoSendBuffer)
    EXPECT_EQ(expect, connections == 1 ? tcp_socket::kSameMachineSendBufferAlone : tcp_socket::kSameMachineSendBuffer);
  auto fixedAt = [](const std::vector<int>& ends, size_t bytes) {
    return std::count(ends.begin(), ends.end(), static_cast<int>(2 * bytes));  // the kernel doubles it
  };
  if (expect > 0) {
    EXPECT_EQ(fixedAt(found.initiator, expect), connections);
    EXPECT_EQ(fixedAt(found.target, expect), connections);
  } else {  // the kernel's sizing: nothing fixed at a value auto would have set
    ASSERT_GE(found.initiator.size(), static_cast<size_t>(connections));
    for (size_t bytes : {tcp_socket::kSameMachineSendBuffer, tcp_socket::kSameMachineSendBufferAlone}) {
      EXPECT_EQ(fixedAt(found.initiator, bytes), 0);
      EXPECT_EQ(fixedAt(found.target, bytes), 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Options, TcpSendBuffer,
                         ::testing::Values(std::make_tuple(tcp_socket::kAutoSendBuffer, 2),
                                           std::make_tuple(tcp_socket::kAutoSendBuffer, 1),
                                           std::make_tuple(int64_t{0}, 2), std::make_tuple(int64_t{300000}, 2)));

// A TcpConnection (no token: nothing is sent before the first frame) to a plain socket
// this test reads the frames from.
struct RawPeer {
  int listener = -1, peer = -1;
  std::shared_ptr<TcpConnection> conn;
  bool connect() {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return false;
    if (!TcpConnection::open("127.0.0.1", ntohs(addr.sin_port), 1000, TcpConnection::Options{}, conn).ok()) return false;
    peer = ::accept(listener, nullptr, nullptr);
    return peer >= 0;
  }
  ~RawPeer() {
    conn.reset();  // joins its threads: every slice has completed
    if (peer >= 0) ::close(peer);
    if (listener >= 0) ::close(listener);
  }
};

// A connection cut while write frames were in flight (a peer that takes nothing: the
// socket buffers fill and the sender blocks): those slices may still land at a target that
// recovers, so the batch records them and a cancel of it cannot promise a fence.
TEST(TcpConnection, WritesCutOffInFlightMakeACancelUnfenced) {
  RawPeer raw;  // its socket is never read from
  ASSERT_TRUE(raw.connect());
  std::shared_ptr<TcpConnection>& conn = raw.conn;

  constexpr size_t kBytes = 64 << 20;  // far more than the socket buffers hold
  std::vector<uint8_t> mem(kBytes);
  Batch batch(1, 1);
  Task& task = batch.tasks[0];
  task.batch = &batch;
  task.state = PENDING;
  batch.pending = 1;
  batch.size = 1;
  // 256 KiB slices: one write takes 64 of them (16 MiB), the rest stay queued, never written.
  makeSlices(task, Request{Request::WRITE, mem.data(), 0, 0x10000, kBytes}, 256 << 10, nowNs() + 60'000'000'000);
  std::vector<Slice*> slices;
  for (uint32_t i = 0; i < task.num_slices; ++i) slices.push_back(&task.slices[i]);
  conn->enqueue(slices.data(), slices.size(), false);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the sender fills the buffers, then blocks
  EXPECT_EQ(task.state.load(), PENDING);
  conn->abort(Status::Canceled("test: connection cut"));
  conn.reset();  // joins its threads: every slice has completed
  EXPECT_EQ(task.state.load(), CANCELED);
  EXPECT_GT(batch.unfenced.load(), 0u);
  EXPECT_LT(batch.unfenced.load(), task.num_slices) << "slices never written counted as in flight";
}

// What a connection puts on the wire for slices queued together: runs of slices of at most
// 1 MiB share WriteV/ReadV frames of at most 4 MiB (one header and one answer per frame);
// a bigger slice, and one whose neighbours cannot join it, travels alone.
TEST(TcpConnection, RunsOfSlicesShareFramesUpToTheFrameLimit) {
  constexpr uint64_t kMiB = 1 << 20;
  static_assert(TcpConnection::kMaxVectorSliceBytes == kMiB && TcpConnection::kMaxVectorFrameBytes % kMiB == 0);
  constexpr uint64_t kPerFrame = TcpConnection::kMaxVectorFrameBytes / kMiB;  // 1 MiB slices
  static_assert(kPerFrame <= tcp_wire::kMaxRanges);
  RawPeer raw;
  ASSERT_TRUE(raw.connect());
  std::vector<uint8_t> mem((kPerFrame + 2) * kMiB);
  Batch batch(4, 4);
  const int64_t deadline = nowNs() + 60'000'000'000;
  // Task 0: a frame's worth + 2 READ slices of 1 MiB; task 1: one READ slice of 2 MiB;
  // task 2: a frame's worth + 1 WRITE slices of 1 MiB; task 3: one WRITE slice of 2 MiB.
  makeSlices(batch.tasks[0], Request{Request::READ, mem.data(), 0, 0x100000, (kPerFrame + 2) * kMiB}, kMiB, deadline);
  makeSlices(batch.tasks[1], Request{Request::READ, mem.data(), 0, 0x10000000, 2 * kMiB}, 2 * kMiB, deadline);
  makeSlices(batch.tasks[2], Request{Request::WRITE, mem.data(), 0, 0x20000000, (kPerFrame + 1) * kMiB}, kMiB, deadline);
  makeSlices(batch.tasks[3], Request{Request::WRITE, mem.data(), 0, 0x30000000, 2 * kMiB}, 2 * kMiB, deadline);
  std::vector<Slice*> slices;
  for (int k = 0; k < 4; ++k) {
    Task& t = batch.tasks[k];
    t.batch = &batch;
    t.state = PENDING;
    for (uint32_t i = 0; i < t.num_slices; ++i) slices.push_back(&t.slices[i]);
  }
  batch.pending = batch.size = 4;
  ASSERT_EQ(slices.size(), 2 * kPerFrame + 5);
  raw.conn->enqueue(slices.data(), slices.size(), false);  // one queue, drained by the sender thread

  // Each frame as "<type> <range lengths in KiB>".
  std::vector<std::string> frames;
  std::vector<uint8_t> body;
  for (int i = 0; i < 6; ++i) {
    uint8_t hb[wire::kHeaderSize];
    ASSERT_TRUE(net::readAll(raw.peer, hb, sizeof hb).ok()) << "frame " << i;
    wire::FrameHeader h;
    ASSERT_TRUE(wire::decodeHeader(hb, sizeof hb, tcp_wire::messages(), h).ok());
    body.resize(h.body_len);
    ASSERT_TRUE(net::readAll(raw.peer, body.data(), body.size()).ok());
    std::string f = tcp_wire::messages().name(h.type);
    size_t count = 1;
    const uint8_t* ranges = body.data();
    if (tcp_wire::isVector(h.type)) {
      ASSERT_TRUE(tcp_wire::decodeRangesHead(h, body.data(), count).ok());
      ranges += tcp_wire::kRangesHeadSize;
    }
    for (size_t r = 0; r < count; ++r) {
      uint64_t length;
      std::memcpy(&length, ranges + r * tcp_wire::kRangeSize + 8, 8);  // u64 addr, u64 length (little endian)
      f += " " + std::to_string(length >> 10);
    }
    frames.push_back(f);
  }
  std::string full;
  for (uint64_t i = 0; i < kPerFrame; ++i) full += " 1024";
  EXPECT_EQ(frames, (std::vector<std::string>{"ReadV" + full, "ReadV 1024 1024", "Read 2048", "WriteV" + full,
                                              "Write 1024", "Write 2048"}));
  raw.conn->abort(Status::Canceled("test: done"));
  raw.conn.reset();  // joins its threads: every slice has completed before the batch goes
  for (int k = 0; k < 4; ++k) EXPECT_EQ(batch.tasks[k].state.load(), CANCELED) << k;
}

// A slice of several pieces (a paged transfer's pages) travels as ranges of a vectored frame,
// sharing it with the slices queued after it; a read's answer is scattered to its pieces.
TEST(TcpConnection, PiecesOfASliceAreRangesOfSharedFrames) {
  constexpr uint64_t kPage = 4096;
  RawPeer raw;
  ASSERT_TRUE(raw.connect());
  std::vector<uint8_t> mem(64 * kPage);
  test::fillPattern(mem.data(), mem.size(), 3);
  Batch batch(3, 3);
  const int64_t deadline = nowNs() + 60'000'000'000;
  auto pages = [&](std::initializer_list<int> local, uint64_t remote_base) {
    std::vector<SliceRange> out;
    int k = 0;
    for (int l : local) out.push_back({mem.data() + l * kPage, remote_base + (k++ * 3) * kPage, kPage});
    return out;
  };
  // Task 0: one WRITE slice of five pieces; task 1: a plain WRITE slice; task 2: one READ
  // slice of three pieces.
  makeSlices(batch.tasks[0], pages({9, 2, 7, 4, 11}, 0x100000), Request{Request::WRITE, nullptr, 0, 0, 0}, 1 << 20,
             deadline, kHostMemory, kHostMemory, true);
  makeSlices(batch.tasks[1], Request{Request::WRITE, mem.data() + 20 * kPage, 0, 0x200000, kPage}, 1 << 20, deadline);
  makeSlices(batch.tasks[2], pages({40, 33, 47}, 0x300000), Request{Request::READ, nullptr, 0, 0, 0}, 1 << 20,
             deadline, kHostMemory, kHostMemory, true);
  std::vector<Slice*> slices;
  for (int k = 0; k < 3; ++k) {
    Task& t = batch.tasks[k];
    t.batch = &batch;
    t.state = PENDING;
    ASSERT_EQ(t.num_slices, 1u);
    slices.push_back(&t.slices[0]);
  }
  ASSERT_EQ(batch.tasks[0].slices[0].range_count, 5u);
  batch.pending = batch.size = 3;
  raw.conn->enqueue(slices.data(), slices.size(), false);

  struct Frame {
    wire::FrameHeader h;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // address, length
    std::vector<uint8_t> payload;
  };
  auto readFrame = [&](Frame& f) {
    uint8_t hb[wire::kHeaderSize];
    ASSERT_TRUE(net::readAll(raw.peer, hb, sizeof hb).ok());
    ASSERT_TRUE(wire::decodeHeader(hb, sizeof hb, tcp_wire::messages(), f.h).ok());
    ASSERT_TRUE(tcp_wire::isVector(f.h.type));
    std::vector<uint8_t> body(f.h.body_len);
    ASSERT_TRUE(net::readAll(raw.peer, body.data(), body.size()).ok());
    size_t count = 0;
    ASSERT_TRUE(tcp_wire::decodeRangesHead(f.h, body.data(), count).ok());
    const uint8_t* at = body.data() + tcp_wire::kRangesHeadSize;
    for (size_t r = 0; r < count; ++r, at += tcp_wire::kRangeSize) {
      uint64_t addr, len;
      std::memcpy(&addr, at, 8);
      std::memcpy(&len, at + 8, 8);
      f.ranges.emplace_back(addr, len);
    }
    f.payload.assign(at, static_cast<const uint8_t*>(body.data() + body.size()));
  };
  Frame writes, reads;
  readFrame(writes);
  readFrame(reads);
  ASSERT_EQ(writes.h.type, tcp_wire::kWriteV);
  ASSERT_EQ(writes.ranges.size(), 6u);  // five pieces and the plain slice
  const int written[] = {9, 2, 7, 4, 11, 20};
  for (size_t r = 0; r < 6; ++r) {
    EXPECT_EQ(writes.ranges[r].first, r < 5 ? 0x100000 + r * 3 * kPage : 0x200000) << r;
    EXPECT_EQ(writes.ranges[r].second, kPage) << r;
    EXPECT_EQ(std::memcmp(writes.payload.data() + r * kPage, mem.data() + written[r] * kPage, kPage), 0) << r;
  }
  ASSERT_EQ(reads.h.type, tcp_wire::kReadV);
  ASSERT_EQ(reads.ranges.size(), 3u);
  EXPECT_EQ(reads.ranges[2].first, 0x300000 + 6 * kPage);

  // The answers: the writes acknowledged, the read's three pages sent in order.
  std::vector<uint8_t> answer(wire::kHeaderSize * 2 + 3 * kPage);
  wire::encodeHeader(wire::FrameHeader{tcp_wire::kWriteAck, 0, 0, writes.h.request_id}, answer.data());
  wire::encodeHeader(wire::FrameHeader{tcp_wire::kReadData, static_cast<uint32_t>(3 * kPage), 0, reads.h.request_id},
                     answer.data() + wire::kHeaderSize);
  std::vector<uint8_t> sent(3 * kPage);
  test::fillPattern(sent.data(), sent.size(), 99);
  std::memcpy(answer.data() + 2 * wire::kHeaderSize, sent.data(), sent.size());
  ASSERT_EQ(::send(raw.peer, answer.data(), answer.size(), 0), static_cast<ssize_t>(answer.size()));
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 500 && batch.tasks[k].state.load() == PENDING; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(batch.tasks[k].state.load(), COMPLETED) << k;
  }
  const int landed[] = {40, 33, 47};
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(std::memcmp(mem.data() + landed[r] * kPage, sent.data() + r * kPage, kPage), 0) << r;
  raw.conn->abort(Status::Canceled("test: done"));
  raw.conn.reset();
}

// A rail whose connects hang (the peer's side is a listener that never accepts: SYNs to a
// full backlog are dropped) must not stall submits while another rail works: its reconnects
// run on the side.
TEST(TcpRails, SubmitsDoNotWaitForAPathThatCannotConnect) {
  std::vector<uint8_t> src(1 << 16), dst(1 << 16);  // before the engines: they stop first
  auto cb = test::loopbackConfig(10000);
  cb->set("transports/tcp/rails", "127.0.0.1,127.0.0.3");  // both ours; the engine listens on .1 only
  TransferEngine b(cb);
  ASSERT_TRUE(b.available());
  const uint16_t port = static_cast<uint16_t>(std::stoi(b.getSegmentName().substr(b.getSegmentName().rfind(':') + 1)));
  int hole = -1;
  uint16_t bound = 0;
  ASSERT_TRUE(net::listenTcp("127.0.0.3", port, hole, bound).ok());
  ASSERT_EQ(::listen(hole, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {  // fill its accept queue
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.3", &sa.sin_addr);
    ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto ca = test::loopbackConfig(10000);
  ca->set("transports/tcp/rails", "127.0.0.1,127.0.0.3");
  ca->set<int64_t>("connect_timeout_ms", 4000);
  {
    TransferEngine a(ca);
    ASSERT_TRUE(a.available());
    test::fillPattern(src.data(), src.size(), 3);
    ASSERT_TRUE(a.registerLocalMemory(src.data(), src.size()).ok());
    ASSERT_TRUE(b.registerLocalMemory(dst.data(), dst.size(), kGlobalReadWrite).ok());
    SegmentID seg;
    ASSERT_TRUE(a.openSegment(seg, b.getSegmentName()).ok());
    Request w{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(dst.data()), src.size(), "tcp"};
    // The first contact tries every path, the hanging one for its connect timeout.
    ASSERT_TRUE(test::runBatch(a, {w}, std::chrono::seconds(10)).ok());
    // Then over 5 s the hanging path is retried several times (4 s connects, backoff from
    // 100 ms), each time on the side.
    auto worst = std::chrono::steady_clock::duration::zero();
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5); std::chrono::steady_clock::now() < until;) {
      auto t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE(test::runBatch(a, {w}, std::chrono::seconds(10)).ok());
      worst = std::max(worst, std::chrono::steady_clock::now() - t0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_LT(worst, std::chrono::milliseconds(2000)) << "a submit waited for the hanging path's connect";
    EXPECT_EQ(src, dst);
  }
  for (int fd : fillers) ::close(fd);
  ::close(hole);
}

INSTANTIATE_TEST_SUITE_P(Ops, TcpRailFailover, ::testing::Values(Request::WRITE, Request::READ),
                         [](const auto& info) { return info.param == Request::WRITE ? "Write" : "Read"; });

}  // namespace
}  // namespace ferry
