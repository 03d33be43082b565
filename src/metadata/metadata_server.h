// The HTTP metadata service: GET/PUT/DELETE /metadata?key=K (opaque values), GET /health.
// Keys and values are size-capped; optional persistence to a file that survives restarts.
// Used by the ferry-metadata binary and by an engine that hosts it (metadata/embedded_server).
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/http.h"
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
  };
  Status start(const Options& options);
  void stop() { server_.stop(); }
  uint16_t port() const { return server_.port(); }
  size_t size();

 private:
  http::Response handle(const http::Request& req);
  Status load();
  Status save();  // callers hold mu_

  Options options_;
  std::mutex mu_;  // guards kv_ (and its file); a leaf (docs/locking.md)
  std::map<std::string, std::string> kv_;
  http::Server server_;
};

}  // namespace ferry
