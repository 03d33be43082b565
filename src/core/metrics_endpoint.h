// GET /metrics in the Prometheus text format, for every engine of the process that asks for
// the same address: one endpoint per bind address and port (a node is scraped once), each
// engine a member whose families it merges by name. Served by our own HTTP server (bounded,
// hardened: common/http.h); prometheus-cpp's types and text serializer write the format.
//
// Lock order: MetricsEndpoint::mu_ -> whatever a member's collect takes (engine parts).
// A member leaves (its destructor) with no engine lock held.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http.h"
#include "ferry/status.h"

namespace prometheus {
struct MetricFamily;
}

namespace ferry {

class MetricsEndpoint {
 public:
  using Collect = std::function<void(std::vector<prometheus::MetricFamily>&)>;

  /// An engine's place on an endpoint; leaving when destroyed (after a scrape that is
  /// running its collect has finished).
  class Member {
   public:
    ~Member();
    uint16_t port() const;
    Member(const Member&) = delete;
    Member& operator=(const Member&) = delete;

   private:
    friend class MetricsEndpoint;
    Member(std::shared_ptr<MetricsEndpoint> endpoint, uint64_t id) : endpoint_(std::move(endpoint)), id_(id) {}
    std::shared_ptr<MetricsEndpoint> endpoint_;
    uint64_t id_;
  };

  /// Joins the endpoint at bind_address:port, starting it if no engine of this process
  /// serves there yet (port 0: a new one on an ephemeral port).
  static Status join(const std::string& bind_address, uint16_t port, Collect collect, std::unique_ptr<Member>& out);

  ~MetricsEndpoint();
  /// The text every member's families make, merged by name (what GET /metrics answers).
  std::string render();

 private:
  MetricsEndpoint() = default;
  http::Response serve(const http::Request& req);
  void leave(uint64_t id);

  http::Server server_;
  std::string key_;  // in the process-wide table
  std::mutex mu_;    // guards members_, next_id_; held while members collect
  std::map<uint64_t, Collect> members_;
  uint64_t next_id_ = 1;
};

}  // namespace ferry
