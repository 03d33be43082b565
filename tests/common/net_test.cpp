#include "common/net.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace ferry::net {

TEST(ParseHostPort, AcceptsHostAndV6) {
  std::string h;
  uint16_t p;
  ASSERT_TRUE(parseHostPort("127.0.0.1:8080", h, p).ok());
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 8080);
  ASSERT_TRUE(parseHostPort("[::1]:17", h, p).ok());
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 17);
  EXPECT_EQ(joinHostPort("::1", 17), "[::1]:17");
}

TEST(ParseHostPort, RejectsMalformed) {
  std::string h;
  uint16_t p;
  for (const char* bad : {"", "host", ":80", "host:", "host:99999", "host:12a", "::1:80", "[::1]80"})
    EXPECT_TRUE(parseHostPort(bad, h, p).IsInvalidArgument()) << bad;
}

TEST(Connect, RefusedPortIsUnavailable) {
  int lfd;
  uint16_t port;
  ASSERT_TRUE(listenTcp("127.0.0.1", 0, lfd, port).ok());
  ::close(lfd);  // now nothing listens there
  int fd;
  Status st = connectTcp("127.0.0.1", port, 1000, fd);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
}

TEST(SocketReader, SmallAndLargeReads) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  std::thread writer([&] {
    uint8_t small[3] = {1, 2, 3};
    ASSERT_TRUE(writeAll(sv[0], small, 3).ok());
    ASSERT_TRUE(writeAll(sv[0], big.data(), big.size()).ok());
    ::shutdown(sv[0], SHUT_WR);
  });
  SocketReader r(sv[1], 0, 4096);
  uint8_t s[3];
  ASSERT_TRUE(r.readExact(s, 3).ok());
  EXPECT_EQ(s[2], 3);
  std::vector<uint8_t> got(big.size());
  ASSERT_TRUE(r.readExact(got.data(), got.size()).ok());
  EXPECT_EQ(got, big);
  uint8_t extra;
  EXPECT_TRUE(r.readExact(&extra, 1).IsUnavailable());
  writer.join();
  ::close(sv[0]);
  ::close(sv[1]);
}

// A connected loopback TCP pair (the low-water mark is a TCP feature).
struct TcpPair {
  int client = -1, server = -1;
  TcpPair() {
    int lfd;
    uint16_t port;
    EXPECT_TRUE(listenTcp("127.0.0.1", 0, lfd, port).ok());
    EXPECT_TRUE(connectTcp("127.0.0.1", port, 1000, client).ok());
    server = ::accept(lfd, nullptr, nullptr);
    ::close(lfd);
  }
  ~TcpPair() {
    ::close(client);
    ::close(server);
  }
  void receiveTick(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
};

TEST(SocketOptions, PeersOnThisMachineAndAFixedSendBuffer) {
  TcpPair p;
  ASSERT_GE(p.server, 0);
  EXPECT_TRUE(peerOnThisMachine(p.client));
  EXPECT_TRUE(peerOnThisMachine(p.server));
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  EXPECT_TRUE(peerOnThisMachine(pair[0]));
  ::close(pair[0]);
  ::close(pair[1]);
  int unconnected = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_FALSE(peerOnThisMachine(unconnected));  // no peer to vouch for
  ::close(unconnected);

  ASSERT_TRUE(setSendBuffer(p.client, 100000));
  int got = 0;
  socklen_t len = sizeof got;
  ASSERT_EQ(::getsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &got, &len), 0);
  EXPECT_EQ(got, 200000);  // the kernel doubles the request for its bookkeeping
  EXPECT_FALSE(setSendBuffer(-1, 100000));
}

TEST(SocketReader, LowWaterPayloadInPiecesThenSmallFramesStayPrompt) {
  TcpPair p;
  ASSERT_GE(p.server, 0);
  p.receiveTick(2000);  // a mark left behind would stall the trailing read until this tick
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 13 + 1);
  std::atomic<bool> trailing_read{false};
  std::thread writer([&] {
    uint8_t head[3] = {1, 2, 3};
    ASSERT_TRUE(writeAll(p.client, head, 3).ok());
    for (size_t off = 0; off < big.size(); off += big.size() / 4) {  // arrives in pieces
      ASSERT_TRUE(writeAll(p.client, big.data() + off, big.size() / 4).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    uint8_t tail[2] = {9, 8};
    ASSERT_TRUE(writeAll(p.client, tail, 2).ok());
    // Keep the connection open: the reader must get the tail without an EOF to wake it.
    for (int i = 0; i < 300 && !trailing_read; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  SocketReader r(p.server, 0, 4096);
  r.setLowWaterCap(256 * 1024);
  uint8_t head[3];
  ASSERT_TRUE(r.readExact(head, 3).ok());
  std::vector<uint8_t> got(big.size());
  ASSERT_TRUE(r.readExact(got.data(), got.size()).ok());
  EXPECT_EQ(got, big);
  auto t0 = std::chrono::steady_clock::now();
  uint8_t tail[2];
  Status st = r.readExact(tail, 2);
  trailing_read = true;
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(tail[0], 9);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  writer.join();
}

TEST(SocketReader, LowWaterTrickleIsHeldToTheFrameDeadline) {
  TcpPair p;
  ASSERT_GE(p.server, 0);
  p.receiveTick(20);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint8_t b[1024] = {};
    ASSERT_TRUE(writeAll(p.client, b, 8).ok());  // the frame's start
    while (!stop) {  // then a trickle: never enough for the mark
      if (!writeAll(p.client, b, sizeof b).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  SocketReader r(p.server, 0, 4096);
  r.setLowWaterCap(256 * 1024);
  uint8_t start[8];
  ASSERT_TRUE(r.readFrameStart(start, 8, kNoDeadline, std::chrono::milliseconds(300)).ok());
  std::vector<uint8_t> payload(1 << 20);
  auto t0 = std::chrono::steady_clock::now();
  Status st = r.readExact(payload.data(), payload.size());
  auto took = std::chrono::steady_clock::now() - t0;
  stop = true;
  writer.join();
  EXPECT_TRUE(st.IsTimeout()) << st.ToString();
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

TEST(SocketReader, LowWaterPayloadCutShortIsUnavailable) {
  TcpPair p;
  ASSERT_GE(p.server, 0);
  std::thread writer([&] {
    std::vector<uint8_t> part(300 * 1024, 7);
    ASSERT_TRUE(writeAll(p.client, part.data(), part.size()).ok());
    ::shutdown(p.client, SHUT_WR);
  });
  SocketReader r(p.server, 0, 4096);
  r.setLowWaterCap(512 * 1024);
  std::vector<uint8_t> payload(1 << 20);
  Status st = r.readExact(payload.data(), payload.size());
  writer.join();
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
}

}  // namespace ferry::net
