// The HTTP metadata service: GET/PUT/DELETE /metadata?key=K (opaque values, binary-safe
// keys), GET /health. Keys, values, the key count and the bytes held are capped; a request
// must arrive whole within the request timeout, and one source address holds a bounded
// number of connections. With a cluster token, every /metadata request must be signed with
// it (descriptors name pids, addresses and paths: reading them is not for everyone either).
// Optional persistence to a file (0600, written to a temporary file, fsynced, renamed,
// directory fsynced) that survives restarts. Used by the ferry-metadata binary and by an
// engine that hosts it (metadata/embedded_server).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/http.h"
#include "common/log.h"
#include "ferry/status.h"

namespace ferry {

class MetadataServer {
 public:
  struct Options {
    std::string bind_address = "127.0.0.1";
    uint16_t port = 8080;
    std::string data_file;  // empty: memory only
    size_t max_key_bytes = 4096;
    size_t max_value_bytes = 16u << 20;
    size_t max_keys = 100000;
    size_t max_total_bytes = 1ull << 30;  // keys + values
    size_t max_connections = 256;
    size_t max_connections_per_address = 32;
    int request_timeout_ms = 10000;
    std::string token;  // the cluster token; empty: anyone may read and write
  };
  Status start(const Options& options);
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }
  size_t size();

  /// How far a signature's timestamp may be from our clock (and how long nonces are kept).
  static constexpr int64_t kSignatureWindowS = 120;

 private:
  http::Response handle(const http::Request& req);
  // Whether a signature's nonce was used already (and remembers it). Caller holds mu_.
  bool seenLocked(const std::string& nonce, int64_t now);
  Status load();
  Status save();  // callers hold mu_

  Options options_;
  std::mutex mu_;  // guards the fields below (and the file); a leaf (docs/locking.md)
  std::map<std::string, std::string> kv_;
  size_t bytes_ = 0;  // keys + values held
  std::unordered_set<std::string> nonces_;
  std::deque<std::pair<int64_t, std::string>> nonce_order_;  // for expiry
  log::RateLimit refusals_;
  http::Server server_;
};

}  // namespace ferry
