// Notifications leave through one queue per peer: a peer that accepts connections and never
// answers holds up only what is addressed to it.
#include "core/notifications.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/net.h"

namespace ferry {

namespace {
// Notifications delivered to an inbox behind a real RPC server on 127.0.0.1.
struct LivePeer {
  RpcClient unused{1000};
  Notifications inbox{unused};
  RpcServer server;
  Status start() {
    FERRY_RETURN_IF_ERROR(inbox.install(server));
    RpcServer::Options o;
    o.bind_address = "127.0.0.1";
    return server.start(o);
  }
  ~LivePeer() { server.stop(); }
};
}  // namespace

TEST(Notifications, AFrozenPeerDelaysOnlyItsOwn) {
  int frozen_fd = -1;
  uint16_t frozen_port = 0;
  ASSERT_TRUE(net::listenTcp("127.0.0.1", 0, frozen_fd, frozen_port).ok());  // accepts, never answers
  LivePeer live;
  ASSERT_TRUE(live.start().ok());

  RpcClient rpc(20000);  // a frozen peer would hold a send for 20 s
  Notifications out(rpc);
  out.post("127.0.0.1", frozen_port, {"a", "to the frozen peer"});
  out.post("127.0.0.1", frozen_port, {"a", "queued behind it"});
  out.post("127.0.0.1", live.server.port(), {"b", "to the live peer"});

  std::vector<Notification> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    live.inbox.receive(got);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(got.size(), 1u) << "the live peer's notification waited for the frozen one";
  EXPECT_EQ(got[0].msg, "to the live peer");

  // Shutting down fails the frozen send at once; what is queued behind it is dropped (logged)
  // instead of waiting out one timeout after another.
  auto t0 = std::chrono::steady_clock::now();
  rpc.shutdown();
  out.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ::close(frozen_fd);
}

TEST(Notifications, InboxIsBoundedAndKeepsOrder) {
  RpcClient rpc(1000);
  Notifications n(rpc, {.inbox_bytes = 4096, .queued_bytes_per_peer = 4096});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.deliver({"x", std::to_string(i)}).ok());
  // Beyond the byte cap, newcomers are refused (the sender is told Busy), not kept.
  Status full = n.deliver({"x", std::string(4096, 'm')});
  EXPECT_EQ(full.code(), Status::Code::kBusy) << full.ToString();
  std::vector<Notification> got;
  n.receive(got);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].msg, "2");
  got.clear();
  n.receive(got);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(n.deliver({"x", std::string(4000, 'm')}).ok());  // reading made room
}

}  // namespace ferry
