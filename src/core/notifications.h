// Notifications: the inbox (filled by the kNotify handler and by our own sends to
// ourselves) and the outbound queues. A batch's notification is sent after its data, from
// a queue per peer with its own sender thread, so a frozen peer delays only the
// notifications addressed to it (up to the RPC timeout each), never anyone else's.
//
// Lock order: inbox_mu_ and out_mu_ are leaves; no lock is held across a send.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/rpc_client.h"
#include "control/rpc_server.h"
#include "ferry/types.h"

namespace ferry {

class Notifications {
 public:
  explicit Notifications(RpcClient& rpc) : rpc_(rpc) {}
  ~Notifications() { stop(); }

  /// Serves kNotify on `server` (before it starts).
  Status install(RpcServer& server);
  /// Into the inbox (bounded: beyond kMaxInbox unread, newcomers are dropped with a log line).
  void deliver(Notification n);
  /// Moves the inbox into `out` (appended).
  void receive(std::vector<Notification>& out);

  /// Sends now and waits for the peer's ack.
  Status send(const std::string& host, uint16_t port, const Notification& n);
  /// Queues a send to host:port behind earlier ones to the same peer (bounded per peer).
  void post(const std::string& host, uint16_t port, Notification n);
  /// Sends what is queued (a peer whose send fails now gets the rest dropped, logged) and
  /// joins the senders.
  void stop();

  static constexpr size_t kMaxInbox = 1 << 20;
  static constexpr size_t kMaxQueuedPerPeer = 1 << 16;

 private:
  struct Outbox {
    std::string host;
    uint16_t port = 0;
    std::deque<Notification> queue;
    bool sending = false;  // a sender thread owns the queue
  };
  void sendLoop(const std::string& key);

  RpcClient& rpc_;
  std::mutex inbox_mu_;  // a leaf
  std::deque<Notification> inbox_;
  std::mutex out_mu_;
  std::map<std::string, Outbox> outboxes_;  // by "host:port"; dropped when drained
  std::vector<std::thread> senders_;        // one per peer being sent to; reaped as they end
  std::vector<std::thread::id> finished_;
  bool stopping_ = false;
};

}  // namespace ferry
