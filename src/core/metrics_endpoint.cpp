#include "core/metrics_endpoint.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sstream>
#include <unordered_map>

#include "common/log.h"
#include "common/net.h"

namespace ferry {

namespace {

// The process's endpoints by "address:port" (the port they got).
std::mutex table_mu;  // -> MetricsEndpoint::mu_ is never taken under it
std::map<std::string, std::weak_ptr<MetricsEndpoint>>& table() {
  static std::map<std::string, std::weak_ptr<MetricsEndpoint>> endpoints;
  return endpoints;
}

}  // namespace

Status MetricsEndpoint::join(const std::string& bind_address, uint16_t port, Collect collect,
                             std::unique_ptr<Member>& out) {
  std::shared_ptr<MetricsEndpoint> endpoint;
  {
    std::lock_guard lock(table_mu);
    const std::string key = net::joinHostPort(bind_address, port);
    if (port != 0)
      if (auto it = table().find(key); it != table().end()) endpoint = it->second.lock();
    if (!endpoint) {
      endpoint.reset(new MetricsEndpoint);
      http::Server::Options options;
      options.bind_address = bind_address;
      options.port = port;
      options.max_body = 0;  // scrapes are GETs
      options.max_connections = 16;
      options.max_connections_per_address = 8;
      MetricsEndpoint* self = endpoint.get();
      Status st = endpoint->server_.start(options, [self](const http::Request& r) { return self->serve(r); });
      if (!st.ok())
        return Status(st.code(), "metrics endpoint on " + key + ": " + st.message() + " (metrics/port)");
      // By the port it got: an engine asking for that port later joins it.
      endpoint->key_ = net::joinHostPort(bind_address, endpoint->server_.port());
      table()[endpoint->key_] = endpoint;
      FERRY_LOG(INFO) << "metrics: http://" << net::joinHostPort(bind_address, endpoint->server_.port()) << "/metrics";
    }
  }
  std::lock_guard lock(endpoint->mu_);
  const uint64_t id = endpoint->next_id_++;
  endpoint->members_[id] = std::move(collect);
  out.reset(new Member(endpoint, id));
  return Status::OK();
}

MetricsEndpoint::~MetricsEndpoint() {
  server_.stop();
  std::lock_guard lock(table_mu);
  if (auto it = table().find(key_); it != table().end() && it->second.expired()) table().erase(it);
}

MetricsEndpoint::Member::~Member() { endpoint_->leave(id_); }

uint16_t MetricsEndpoint::Member::port() const { return endpoint_->server_.port(); }

void MetricsEndpoint::leave(uint64_t id) {
  std::lock_guard lock(mu_);
  members_.erase(id);
}

std::string MetricsEndpoint::render() {
  std::vector<prometheus::MetricFamily> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, collect] : members_) collect(all);
  }
  // Engines report the same families: one block per name, their series together.
  std::vector<prometheus::MetricFamily> merged;
  std::unordered_map<std::string, size_t> index;
  for (auto& f : all) {
    auto [it, fresh] = index.emplace(f.name, merged.size());
    if (fresh) {
      merged.push_back(std::move(f));
      continue;
    }
    auto& into = merged[it->second].metric;
    for (auto& m : f.metric) into.push_back(std::move(m));
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, merged);
  return text.str();
}

http::Response MetricsEndpoint::serve(const http::Request& req) {
  http::Response r;
  if (req.path != "/metrics") {
    r.status = 404;
    r.body = "not found: metrics are at /metrics\n";
    return r;
  }
  if (req.method != "GET") {
    r.status = 405;
    r.body = "GET only\n";
    return r;
  }
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = render();
  return r;
}

}  // namespace ferry
