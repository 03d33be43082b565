// Request/response calls to peers' RPC servers (descriptor fetch, notify, probe). Idle
// connections are kept per endpoint and reused; a call takes one out of the pool (or opens
// a new one) and does its I/O without holding any lock, so a frozen peer delays only the
// calls made to it. Every call has a deadline. With a cluster token every new connection
// runs the handshake first (control/handshake.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "control/wire.h"
#include "ferry/status.h"

namespace ferry {

// One request and its response on a blocking socket nobody else uses meanwhile: what the
// RPC client, the token handshake and a same-machine peer's channel (LocalPeer) share.
namespace rpc {
/// Sends request `type` #`id` with `body`.
Status sendRequest(int fd, wire::MsgType type, uint64_t id, std::string_view body);
/// Reads the response to request `type` #`id`, checked against `table`. The return is the
/// exchange's own failure (I/O, a malformed or unexpected frame: the connection is then
/// unusable); `answer` is the peer's status for the request ("<where> answered: ..."), with
/// the body in `reply` when it is OK. Descriptors passed with the response go to `fds` when
/// given (the caller owns them, also on error).
Status readResponse(int fd, const wire::MessageTable& table, wire::MsgType type, uint64_t id,
                    const std::string& where, std::string* reply, Status& answer,
                    std::vector<int>* fds = nullptr, uint64_t* epoch = nullptr);
}  // namespace rpc

class RpcClient {
 public:
  /// `timeout_ms` bounds the connect and the wait for each response. Responses are checked
  /// against `messages` (a transport's table for its own requests; the control one by default).
  explicit RpcClient(int timeout_ms, std::string token = "", size_t max_idle_per_endpoint = 4,
                     const wire::MessageTable* messages = nullptr)
      : timeout_ms_(timeout_ms), token_(std::move(token)), max_idle_(max_idle_per_endpoint),
        table_(messages ? *messages : wire::controlMessages()) {}
  ~RpcClient();

  /// Sends `type` with `body` to host:port and waits for the matching response. A non-OK
  /// status in the response comes back as that Status with the peer's message.
  /// `epoch`, when given, receives the responder's registry version from the response header.
  Status call(const std::string& host, uint16_t port, wire::MsgType type, std::string_view body,
              std::string* reply = nullptr, uint64_t* epoch = nullptr);
  /// Makes every call in progress and later fail at once (Canceled): shutdown.
  void shutdown();
  /// Idle connections kept, over all endpoints (tests).
  size_t idleConnections() const;

 private:
  struct Conn {
    int fd = -1;
    uint64_t next_id = 1;
  };
  // One exchange on `c`; `sent` tells whether the peer may have seen the request.
  Status exchange(Conn& c, const std::string& where, wire::MsgType type, std::string_view body,
                  std::string* reply, uint64_t* epoch, bool& sent);
  Status open(const std::string& host, uint16_t port, Conn& out);
  bool takeIdle(const std::string& where, Conn& out);
  void putIdle(const std::string& where, Conn c);
  void track(int fd, bool add);

  const int timeout_ms_;
  const std::string token_;
  const size_t max_idle_;
  const wire::MessageTable& table_;
  // Guards idle_, busy_fds_ and shut_; never held across I/O. A leaf lock.
  mutable std::mutex mu_;
  std::map<std::string, std::vector<Conn>> idle_;  // by "host:port"
  std::vector<int> busy_fds_;  // connections in a call now (shutdown() wakes them)
  bool shut_ = false;
};

}  // namespace ferry
