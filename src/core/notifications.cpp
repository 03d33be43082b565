#include "core/notifications.h"

#include <algorithm>

#include "common/log.h"
#include "common/net.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

Status Notifications::install(RpcServer& server) {
  return server.setHandler(MsgType::kNotify, [this](const FrameHeader& h, ServerConnection& c) {
    std::string body(h.body_len, '\0');
    FERRY_RETURN_IF_ERROR(c.reader().readExact(body.data(), body.size()));
    Notification n;
    FERRY_RETURN_IF_ERROR(wire::decodeNotify(body, n));
    c.respond(MsgType::kNotifyAck, h.request_id, deliver(std::move(n)));  // a full inbox: the sender hears it
    return Status::OK();
  });
}

Status Notifications::deliver(Notification n) {
  std::lock_guard lock(inbox_mu_);
  if (inbox_.size() >= kMaxInbox || inbox_bytes_ + bytesOf(n) > limits_.inbox_bytes) {
    counts_.refused.fetch_add(1, std::memory_order_relaxed);
    FERRY_LOG_LIMITED(WARN, dropped_) << "refusing notification from '" << n.name << "': " << inbox_.size()
                                      << " unread (" << inbox_bytes_ << " bytes)";
    return Status::Busy("notification inbox full: " + std::to_string(inbox_.size()) + " unread, " +
                        std::to_string(inbox_bytes_) + " bytes (notifications/max_inbox_bytes)");
  }
  inbox_bytes_ += bytesOf(n);
  inbox_.push_back(std::move(n));
  counts_.received.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

void Notifications::receive(std::vector<Notification>& out) {
  std::deque<Notification> taken;
  {
    std::lock_guard lock(inbox_mu_);
    taken.swap(inbox_);
    inbox_bytes_ = 0;
  }
  for (auto& n : taken) out.push_back(std::move(n));
}

Status Notifications::send(const std::string& host, uint16_t port, const Notification& n) {
  Status st = rpc_.call(host, port, MsgType::kNotify, wire::encodeNotify(n));
  (st.ok() ? counts_.sent : counts_.failed).fetch_add(1, std::memory_order_relaxed);
  return st;
}

size_t Notifications::pendingBytes() {
  size_t bytes = 0;
  {
    std::lock_guard lock(inbox_mu_);
    bytes += inbox_bytes_;
  }
  std::lock_guard lock(out_mu_);
  for (const auto& [key, box] : outboxes_) bytes += box.bytes;
  return bytes;
}

void Notifications::post(const std::string& host, uint16_t port, Notification n) {
  const std::string key = net::joinHostPort(host, port);
  std::lock_guard lock(out_mu_);
  if (stopping_) {
    FERRY_LOG(WARN) << "notification '" << n.name << "' to " << key << " not sent: engine stopping";
    return;
  }
  Outbox& box = outboxes_[key];
  if (box.queue.size() >= kMaxQueuedPerPeer || box.bytes + bytesOf(n) > limits_.queued_bytes_per_peer) {
    counts_.failed.fetch_add(1, std::memory_order_relaxed);
    FERRY_LOG_LIMITED(WARN, dropped_) << "notification '" << n.name << "' to " << key << " dropped: "
                                      << box.queue.size() << " (" << box.bytes << " bytes) queued for that peer";
    return;
  }
  box.host = host;
  box.port = port;
  box.bytes += bytesOf(n);
  box.queue.push_back(std::move(n));
  if (box.sending) return;
  box.sending = true;
  // Reap senders that ended, then start one for this peer.
  for (auto it = senders_.begin(); it != senders_.end();) {
    if (std::find(finished_.begin(), finished_.end(), it->get_id()) == finished_.end()) {
      ++it;
      continue;
    }
    finished_.erase(std::find(finished_.begin(), finished_.end(), it->get_id()));
    it->join();  // it has returned from sendLoop; joining is immediate
    it = senders_.erase(it);
  }
  senders_.emplace_back([this, key] { sendLoop(key); });
}

void Notifications::sendLoop(const std::string& key) {
  std::unique_lock lock(out_mu_);
  bool failed_while_stopping = false;
  while (true) {
    Outbox& box = outboxes_[key];
    if (box.queue.empty() || failed_while_stopping) {
      if (!box.queue.empty())
        FERRY_LOG(WARN) << box.queue.size() << " notification(s) to " << key << " not sent: engine stopping";
      outboxes_.erase(key);
      finished_.push_back(std::this_thread::get_id());
      return;
    }
    Notification n = std::move(box.queue.front());
    box.queue.pop_front();
    box.bytes -= bytesOf(n);
    const std::string host = box.host;
    const uint16_t port = box.port;
    lock.unlock();
    Status st = send(host, port, n);
    if (!st.ok()) FERRY_LOG(WARN) << "notification not delivered: " << st.ToString();
    lock.lock();
    failed_while_stopping = !st.ok() && stopping_;
  }
}

void Notifications::stop() {
  std::vector<std::thread> senders;
  {
    std::lock_guard lock(out_mu_);
    stopping_ = true;
    senders.swap(senders_);
    finished_.clear();
  }
  for (auto& t : senders) t.join();
}

}  // namespace ferry
