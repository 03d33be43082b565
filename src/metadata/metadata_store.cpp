#include "metadata/metadata_store.h"

#include <cstdint>

#include "common/auth.h"
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

void declareMetadataOptions(OptionTable& t) {
  t.text("metadata/type", "p2p", "`p2p` (alias `P2PHANDSHAKE`), `http`, `etcd`, `redis` (see Metadata services)");
  t.text("metadata/servers", "", "the store's URL or endpoints");
  t.text("metadata/cluster_id", "default", "key prefix, so clusters share a store");
  t.flag("metadata/etcd_mirror", true,
         "etcd: find segments in a local copy of the cluster's entries kept current by a watch (a miss, and every "
         "refresh, reads etcd)");
  t.integer("metadata/lease_ttl_s", 10, 2, 86400, "etcd lease / Redis TTL of our entry, kept alive every third of it");
  t.text("metadata/redis/username", "", "Redis user when the URI has none");
  t.secret("metadata/redis/password", "Redis password when the URI has none");
  t.integer("metadata/redis/db_index", 0, 0, INT32_MAX, "Redis database when the URI names none");
}

Status createMetadataStore(const Config& config, std::unique_ptr<MetadataStore>& out) {
  out.reset();
  std::string type = config.get<std::string>("metadata/type");
  std::string servers = config.get<std::string>("metadata/servers");
  int timeout_ms = config.get<int>("connect_timeout_ms");
  if (type == "p2p" || type == "P2PHANDSHAKE") return Status::OK();
  if (type == "http") {
    if (servers.empty()) return Status::InvalidArgument("metadata type http needs metadata/servers (a URL)");
    std::string token;  // requests are signed with the cluster token when there is one
    FERRY_RETURN_IF_ERROR(
        auth::resolveToken(config.get<std::string>("auth/token"), config.get<std::string>("auth/token_file"), token));
    return HttpStore::create(servers, timeout_ms, token, out);
  }
  int ttl_s = config.get<int>("metadata/lease_ttl_s");
  if (type == "etcd")
    return EtcdStore::create(servers, timeout_ms, ttl_s, config.get<bool>("metadata/etcd_mirror"), out);
  if (type == "redis") {
    RedisStore::Credentials fallback{config.get<std::string>("metadata/redis/username"),
                                     config.get<std::string>("metadata/redis/password"),
                                     config.get<int64_t>("metadata/redis/db_index")};
    return RedisStore::create(servers, fallback, timeout_ms, ttl_s, out);
  }
  return Status::InvalidArgument("unknown metadata type '" + type + "' (p2p, http, etcd, redis)");
}

}  // namespace ferry
