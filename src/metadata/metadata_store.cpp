#include "metadata/metadata_store.h"

#include "metadata/etcd_store.h"
#include "metadata/http_store.h"
#include "metadata/redis_store.h"

namespace ferry {

std::string segmentKey(const std::string& cluster, const std::string& segment_name) {
  return "ferry/" + cluster + "/segments/" + segment_name;
}

void parseMetadataUri(const std::string& uri, std::string& type, std::string& servers) {
  servers = uri;
  if (uri.empty() || uri == "P2PHANDSHAKE" || uri == "p2p") {
    type = "p2p";
    servers.clear();
    return;
  }
  auto scheme = uri.find("://");
  type = scheme == std::string::npos ? "etcd" : uri.substr(0, scheme);
}

Status createMetadataStore(const Config& config, std::unique_ptr<MetadataStore>& out) {
  out.reset();
  std::string type = config.get("metadata/type", "p2p");
  std::string servers = config.get("metadata/servers", "");
  int timeout_ms = config.get<int>("connect_timeout_ms", 3000);
  if (type == "p2p" || type == "P2PHANDSHAKE") return Status::OK();
  if (type == "http") {
    if (servers.empty()) return Status::InvalidArgument("metadata type http needs metadata/servers (a URL)");
    return HttpStore::create(servers, timeout_ms, out);
  }
  int ttl_s = config.get<int>("metadata/lease_ttl_s", 10);
  if (type == "etcd") return EtcdStore::create(servers, timeout_ms, ttl_s, out);
  if (type == "redis") return RedisStore::create(servers, timeout_ms, ttl_s, out);
  return Status::InvalidArgument("unknown metadata type '" + type + "' (p2p, http, etcd, redis)");
}

}  // namespace ferry
