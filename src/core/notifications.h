// Notifications: the inbox (filled by the kNotify handler and by our own sends to
// ourselves) and the outbound queues. A batch's notification is sent after its data, from
// a queue per peer with its own sender thread, so a frozen peer delays only the
// notifications addressed to it (up to the RPC timeout each), never anyone else's. Both
// sides are bounded in count and bytes: a full inbox answers senders Busy (they hear it),
// a full queue to one peer drops what is posted to it, with a rate-limited log line.
//
// Lock order: inbox_mu_ and out_mu_ are leaves; no lock is held across a send.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/rpc_client.h"
#include "common/log.h"
#include "control/rpc_server.h"
#include "ferry/types.h"

namespace ferry {

class Notifications {
 public:
  struct Limits {
    size_t inbox_bytes = 64u << 20;      // unread names + messages
    size_t queued_bytes_per_peer = 64u << 20;
  };
  Notifications(RpcClient& rpc, Limits limits) : rpc_(rpc), limits_(limits) {}
  explicit Notifications(RpcClient& rpc) : Notifications(rpc, Limits{}) {}
  ~Notifications() { stop(); }

  /// Serves kNotify on `server` (before it starts).
  Status install(RpcServer& server);
  /// Into the inbox; Busy when it holds kMaxInbox unread or limits.inbox_bytes.
  Status deliver(Notification n);
  /// Moves the inbox into `out` (appended).
  void receive(std::vector<Notification>& out);

  /// Sends now and waits for the peer's ack.
  Status send(const std::string& host, uint16_t port, const Notification& n);
  /// Queues a send to host:port behind earlier ones to the same peer (bounded per peer).
  void post(const std::string& host, uint16_t port, Notification n);
  /// Sends what is queued (a peer whose send fails now gets the rest dropped, logged) and
  /// joins the senders.
  void stop();

  /// What happened to notifications since the engine started (for /metrics).
  struct Counts {
    std::atomic<uint64_t> received{0}, refused{0};  // delivered to our inbox / refused (full)
    std::atomic<uint64_t> sent{0}, failed{0};       // acknowledged by the peer / not sent
  };
  const Counts& counts() const { return counts_; }
  /// Bytes of names and messages unread here plus queued to go out.
  size_t pendingBytes();

  static constexpr size_t kMaxInbox = 1 << 20;
  static constexpr size_t kMaxQueuedPerPeer = 1 << 16;

 private:
  struct Outbox {
    std::string host;
    uint16_t port = 0;
    std::deque<Notification> queue;
    size_t bytes = 0;
    bool sending = false;  // a sender thread owns the queue
  };
  void sendLoop(const std::string& key);

  static size_t bytesOf(const Notification& n) { return n.name.size() + n.msg.size(); }

  RpcClient& rpc_;
  const Limits limits_;
  log::RateLimit dropped_;  // lines about refused and dropped notifications
  Counts counts_;
  std::mutex inbox_mu_;  // a leaf
  std::deque<Notification> inbox_;
  size_t inbox_bytes_ = 0;
  std::mutex out_mu_;
  std::map<std::string, Outbox> outboxes_;  // by "host:port"; dropped when drained
  std::vector<std::thread> senders_;        // one per peer being sent to; reaped as they end
  std::vector<std::thread::id> finished_;
  bool stopping_ = false;
};

}  // namespace ferry
