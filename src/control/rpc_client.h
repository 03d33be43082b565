// Request/response calls to peers' RPC servers (descriptor fetch, notify, probe). One
// cached connection per endpoint; every call has a deadline.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "control/wire.h"
#include "ferry/status.h"

namespace ferry {

class RpcClient {
 public:
  explicit RpcClient(int timeout_ms) : timeout_ms_(timeout_ms) {}
  ~RpcClient();

  /// Sends `type` with `body` to host:port and waits for the matching response. A non-OK
  /// status in the response comes back as that Status with the peer's message.
  Status call(const std::string& host, uint16_t port, wire::MsgType type, std::string_view body,
              std::string* reply = nullptr);
  /// Closes the cached connection to host:port (e.g. after the peer restarted).
  void drop(const std::string& host, uint16_t port);

 private:
  struct Channel {
    std::mutex mu;
    int fd = -1;
    uint64_t next_id = 1;
  };
  Status callOnce(Channel& ch, const std::string& host, uint16_t port, wire::MsgType type,
                  std::string_view body, std::string* reply, bool& sent);

  int timeout_ms_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Channel>> channels_;
};

}  // namespace ferry
