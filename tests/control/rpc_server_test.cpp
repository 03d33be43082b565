#include "control/rpc_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/net.h"
#include "control/handshake.h"
#include "control/rpc_client.h"
#include "test_util.h"

namespace ferry {

using wire::MsgType;

namespace {
Status answerProbes(RpcServer& server) {
  return server.setHandler(MsgType::kProbe, [](const wire::FrameHeader& h, ServerConnection& c) {
    c.respond(MsgType::kProbeAck, h.request_id, Status::OK());
    return Status::OK();
  });
}
}  // namespace

class RpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(answerProbes(server_).ok());
    RpcServer::Options o;
    o.bind_address = "127.0.0.1";
    o.frame_timeout_ms = 500;
    o.first_frame_timeout_ms = 3000;
    ASSERT_TRUE(server_.start(o).ok());
  }
  int rawConnect() {
    const int fd = test::connectLoopback(server_.port(), 2);
    EXPECT_GE(fd, 0);
    return fd;
  }
  RpcServer server_;
};

TEST_F(RpcServerTest, AnswersProbe) {
  RpcClient client(1000);
  EXPECT_TRUE(client.call("127.0.0.1", server_.port(), MsgType::kProbe, {}).ok());
}

TEST_F(RpcServerTest, UnservedTypeGetsNotSupported) {
  RpcClient client(1000);
  Status st = client.call("127.0.0.1", server_.port(), MsgType::kGetDescriptor, {});
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
}

TEST_F(RpcServerTest, MalformedFramesCloseOnlyThatConnection) {
  const std::vector<std::vector<uint8_t>> garbage = {
      std::vector<uint8_t>(24, 0xAB),                        // bad magic
      {'F', 'R', 'R', 'Y', 9, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},  // version
      {'F', 'R', 'R', 'Y', 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},  // response
      {'F', 'R', 'R', 'Y', 1, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},  // probe+body
  };
  for (auto& g : garbage) {
    int fd = rawConnect();
    ASSERT_TRUE(net::writeAll(fd, g.data(), g.size()).ok());
    EXPECT_TRUE(test::closedByPeer(fd));
    ::close(fd);
  }
  RpcClient client(1000);  // the server is unharmed
  EXPECT_TRUE(client.call("127.0.0.1", server_.port(), MsgType::kProbe, {}).ok());
}

TEST_F(RpcServerTest, PeerStalledMidFrameIsDropped) {
  int fd = rawConnect();
  uint8_t half[10] = {'F', 'R', 'R', 'Y', 1, 0, 5, 0, 0, 0};
  ASSERT_TRUE(net::writeAll(fd, half, sizeof half).ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(test::closedByPeer(fd));  // after stall_timeout_ms, not never
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  ::close(fd);
}

TEST_F(RpcServerTest, IdleConnectionIsKept) {
  int fd = rawConnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // > stall timeout, no frame
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader(wire::FrameHeader{MsgType::kProbe, 0, 0, 7}, hb);
  ASSERT_TRUE(net::writeAll(fd, hb, sizeof hb).ok());
  ASSERT_TRUE(net::readAll(fd, hb, sizeof hb).ok());
  wire::FrameHeader h;
  ASSERT_TRUE(wire::decodeHeader(hb, sizeof hb, wire::controlMessages(), h).ok());
  EXPECT_EQ(h.type, MsgType::kProbeAck);
  EXPECT_EQ(h.request_id, 7u);
  ::close(fd);
}

TEST(RpcServer, HandlersAreRegisteredOncePerDefinedRequestBeforeStart) {
  RpcServer server;
  auto ack = [](const wire::FrameHeader& h, ServerConnection& c) {
    c.respond(MsgType::kProbeAck, h.request_id, Status::OK());
    return Status::OK();
  };
  EXPECT_TRUE(server.setHandler(MsgType::kProbe, ack).ok());
  EXPECT_TRUE(server.setHandler(MsgType::kProbe, ack).IsAlreadyExists());
  EXPECT_TRUE(server.setHandler(MsgType::kProbeAck, ack).IsInvalidArgument());  // a response
  EXPECT_TRUE(server.setHandler(MsgType{40}, ack).IsInvalidArgument());         // not defined
  EXPECT_TRUE(server.defineMessage(MsgType{41}, {"Resp41", false, 0, 0}).ok());
  EXPECT_TRUE(server.defineMessage(MsgType{40}, {"Req40", true, 0, 0, MsgType{41}}).ok());
  EXPECT_TRUE(server.setHandler(MsgType{40}, ack).ok());
  RpcServer::Options o;
  o.bind_address = "127.0.0.1";
  ASSERT_TRUE(server.start(o).ok());
  EXPECT_FALSE(server.setHandler(MsgType::kNotify, ack).ok());  // too late: it serves already
  server.stop();
}

// A call in progress holds no lock: a second call to the same peer goes out on another
// connection while the first waits. The first request's handler waits for the second to
// arrive, so calls made one after another would time out instead.
TEST(RpcServer, CallsToOnePeerDoNotWaitForEachOther) {
  RpcServer server;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  ASSERT_TRUE(server.setHandler(MsgType::kProbe, [&](const wire::FrameHeader& h, ServerConnection& c) {
                    std::unique_lock lock(mu);
                    ++arrived;
                    cv.notify_all();
                    bool both = cv.wait_for(lock, std::chrono::seconds(5), [&] { return arrived >= 2; });
                    c.respond(MsgType::kProbeAck, h.request_id,
                              both ? Status::OK() : Status::Timeout("the other call never came"));
                    return Status::OK();
                  }).ok());
  RpcServer::Options o;
  o.bind_address = "127.0.0.1";
  ASSERT_TRUE(server.start(o).ok());
  RpcClient client(10000);
  Status first;
  std::thread t([&] { first = client.call("127.0.0.1", server.port(), MsgType::kProbe, {}); });
  Status second = client.call("127.0.0.1", server.port(), MsgType::kProbe, {});
  t.join();
  EXPECT_TRUE(first.ok()) << first.ToString();
  EXPECT_TRUE(second.ok()) << second.ToString();
  EXPECT_GE(client.idleConnections(), 2u);  // both kept for reuse
  server.stop();
}

TEST_F(RpcServerTest, UnreachableServerFailsFast) {
  uint16_t port = server_.port();
  server_.stop();
  RpcClient client(1000);
  auto t0 = std::chrono::steady_clock::now();
  Status st = client.call("127.0.0.1", port, MsgType::kProbe, {});
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

}  // namespace ferry

namespace ferry {

// The handshake's answer round-trips; truncated, overlong and inconsistent ones are refused.
TEST(Handshake, HelloAckCodec) {
  handshake::HelloAck ack;
  ack.token = true;
  ack.nonce = auth::randomNonce();
  ack.mac = handshake::serverMac("a token of sixteen+", auth::randomNonce(), ack.nonce, {"seg", "inst"});
  ack.identity = {"127.0.0.1:7000", "9f2c00aa12345678"};
  std::string body = handshake::encodeHelloAck(ack);
  handshake::HelloAck back;
  ASSERT_TRUE(handshake::decodeHelloAck(body, back).ok());
  EXPECT_EQ(back.identity.name, ack.identity.name);
  EXPECT_EQ(back.identity.instance, ack.identity.instance);
  EXPECT_EQ(back.mac, ack.mac);
  for (size_t cut = 0; cut < body.size(); ++cut)
    EXPECT_FALSE(handshake::decodeHelloAck(body.substr(0, cut), back).ok()) << cut;
  EXPECT_FALSE(handshake::decodeHelloAck(body + "x", back).ok());
  std::string flags = body;
  flags[0] = 7;
  EXPECT_FALSE(handshake::decodeHelloAck(flags, back).ok());
}

class AuthServer : public ::testing::Test {
 protected:
  void start(const std::string& token) {
    ASSERT_TRUE(answerProbes(server_).ok());
    RpcServer::Options o;
    o.bind_address = "127.0.0.1";
    o.token = token;
    o.first_frame_timeout_ms = 400;
    o.frame_timeout_ms = 400;
    o.max_connections_per_address = 4;
    ASSERT_TRUE(server_.start(o, {"server", "instance-1"}).ok());
  }
  Status probe(const std::string& token) {
    RpcClient client(1000, token);
    return client.call("127.0.0.1", server_.port(), MsgType::kProbe, {});
  }
  RpcServer server_;
};

TEST_F(AuthServer, OnlyClientsWithTheTokenAreServed) {
  start("the cluster's token, 31 bytes!!");
  EXPECT_TRUE(probe("the cluster's token, 31 bytes!!").ok());
  Status st = probe("");
  EXPECT_TRUE(st.IsPermissionDenied()) << st.ToString();
  st = probe("another token that is long enough");
  EXPECT_TRUE(st.IsPermissionDenied()) << st.ToString();
  EXPECT_NE(st.message().find("does not know our cluster token"), std::string::npos) << st.ToString();
}

TEST_F(AuthServer, ATokenHolderDoesNotTrustAServerWithout) {
  start("");
  EXPECT_TRUE(probe("").ok());
  Status st = probe("the cluster's token, 31 bytes!!");
  EXPECT_TRUE(st.IsPermissionDenied()) << st.ToString();
  EXPECT_NE(st.message().find("has no cluster token"), std::string::npos) << st.ToString();
}

TEST_F(AuthServer, TheServerSaysWhoItIsUnderTheMac) {
  start("the cluster's token, 31 bytes!!");
  int fd = -1;
  ASSERT_TRUE(net::connectTcp("127.0.0.1", server_.port(), 1000, fd).ok());
  handshake::Identity id;
  ASSERT_TRUE(handshake::client(fd, "the cluster's token, 31 bytes!!", 1000, "server", &id).ok());
  EXPECT_EQ(id.name, "server");
  EXPECT_EQ(id.instance, "instance-1");
  ::close(fd);
}

// A connection that says nothing, or trickles a frame, is dropped by its deadline.
TEST_F(AuthServer, SilentAndTricklingClientsAreDropped) {
  start("");
  int silent = -1, trickle = -1;
  ASSERT_TRUE(net::connectTcp("127.0.0.1", server_.port(), 1000, silent).ok());
  ASSERT_TRUE(net::connectTcp("127.0.0.1", server_.port(), 1000, trickle).ok());
  timeval tv{3, 0};
  ::setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto t0 = std::chrono::steady_clock::now();
  uint8_t hb[wire::kHeaderSize];
  wire::encodeHeader({MsgType::kProbe, 0, 0, 1}, hb);
  for (size_t i = 0; i < 8; ++i) {  // 8 of 32 header bytes, 100 ms apart: 800 ms > 400 ms
    if (!net::writeAll(trickle, hb + i, 1).ok()) break;  // dropped already
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  char b;
  EXPECT_EQ(::recv(silent, &b, 1, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  ::setsockopt(trickle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(::recv(trickle, &b, 1, 0), 0);
  ::close(silent);
  ::close(trickle);
  EXPECT_TRUE(probe("").ok());
}

TEST_F(AuthServer, OneAddressGetsItsShareOfConnections) {
  start("");
  std::vector<int> mine;
  for (int i = 0; i < 6; ++i) {
    int fd = -1;
    ASSERT_TRUE(net::connectTcp("127.0.0.1", server_.port(), 1000, fd).ok());
    mine.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int refused = 0;
  for (int fd : mine) {
    char b;
    refused += ::recv(fd, &b, 1, MSG_DONTWAIT) == 0;
    ::close(fd);
  }
  EXPECT_EQ(refused, 2);  // the cap is 4 per address
}

}  // namespace ferry
