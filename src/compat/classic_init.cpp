#include "compat/classic_init.h"


#include "common/environment.h"
#include "common/net.h"
#include "metadata/metadata_store.h"

namespace ferry::compat {

namespace {
bool isLiteralIpv4(const std::string& host) {
  return !host.empty() && host.find_first_not_of("0123456789.") == std::string::npos;
}
}  // namespace

Status classicConfig(const std::string& metadata, const std::string& local_server_name,
                     const std::string& ip_or_host_name, uint64_t rpc_port, Config& config) {
  FERRY_RETURN_IF_ERROR(config.loadFromEnv());
  std::string meta = metadata;
  if (meta.empty()) meta = config.get<std::string>("metadata/servers");
  std::string type, servers;
  parseMetadataUri(meta, type, servers);
  bool p2p = type == "p2p";
  if (!p2p) {
    config.set("metadata/type", type);
    config.set("metadata/servers", servers);
    config.set("local_segment_name", local_server_name);
  }
  std::string host = local_server_name;
  uint16_t port = 0;
  if (local_server_name.find(':') != std::string::npos)
    net::parseHostPort(local_server_name, host, port).IgnoreError();
  // With a metadata server the name is only a name ("node-x"); it is an address only when
  // it is a literal IP. Otherwise we advertise where we really listen.
  if (!p2p && !isLiteralIpv4(host) && host != "localhost") host.clear();
  if (!ip_or_host_name.empty()) host = ip_or_host_name;
  if (!host.empty()) config.set("rpc/advertise_address", host);
  // Listen where we advertise when it is a literal address (e.g. 127.0.0.1), else on all
  // interfaces; MC_TCP_BIND_ADDRESS (applied by loadFromEnv) wins.
  if (!env::value("MC_TCP_BIND_ADDRESS") && isLiteralIpv4(host))
    config.set("rpc/bind_address", host);
  uint64_t want_port = 0;
  if (env::value("MC_LEGACY_RPC_PORT_BINDING") || !p2p) want_port = port ? port : rpc_port;
  config.set<int64_t>("rpc/port", static_cast<int64_t>(want_port));
  return Status::OK();
}

}  // namespace ferry::compat
