#include "common/environment.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ferry::env {

const std::vector<Variable>& variables() {
  static const std::vector<Variable> table = {
      {"FERRY_CONF", Mapping::kConfigSource, "",
       "config file path or inline JSON, merged over the defaults"},
      {"MC_TENT_CONF", Mapping::kConfigSource, "", "read when FERRY_CONF is unset (TENT's name)"},
      {"MC_TRANSFER_TIMEOUT", Mapping::kSecondsToMs, "transfer_timeout_ms", "seconds"},
      {"MC_TCP_BIND_ADDRESS", Mapping::kString, "rpc/bind_address", ""},
      {"MC_METADATA_SERVER", Mapping::kString, "metadata/servers",
       "used when initialize() gets an empty server"},
      {"MC_METADATA_CLUSTER_ID", Mapping::kString, "metadata/cluster_id", ""},
      {"MC_REDIS_USERNAME", Mapping::kString, "metadata/redis/username", "when the URI has none"},
      {"MC_REDIS_PASSWORD", Mapping::kString, "metadata/redis/password", "when the URI has none"},
      {"MC_REDIS_DB_INDEX", Mapping::kInteger, "metadata/redis/db_index", "when the URI has none"},
      {"MC_RDMA_BIND_ADDRESS", Mapping::kString, "rdma/bind_address",
       "recorded; NICs are chosen by transports/rdma/devices"},
      {"MC_GID_INDEX", Mapping::kInteger, "transports/rdma/gid_index", ""},
      {"MC_MTU", Mapping::kInteger, "transports/rdma/mtu", "bytes (1024, 4096)"},
      {"MC_NUM_QP_PER_EP", Mapping::kInteger, "transports/rdma/qps_per_path", ""},
      {"MC_MAX_WR", Mapping::kInteger, "transports/rdma/max_qp_wr", ""},
      {"MC_MAX_CQE_PER_CTX", Mapping::kInteger, "transports/rdma/max_cqe", ""},
      {"MC_SLICE_SIZE", Mapping::kInteger, "transports/rdma/slice_size", ""},
      {"MC_RETRY_CNT", Mapping::kInteger, "transports/rdma/max_resends", "re-posts of a failed slice"},
      {"MC_TE_METRIC", Mapping::kBool, "metrics/enable", ""},
      {"MC_TE_METRIC_INTERVAL_SECONDS", Mapping::kPositiveInt, "metrics/interval_s", ""},
      {"MC_FORCE_TCP", Mapping::kPatchIfTrue,
       R"({"transports": {"local": {"enable": false}, "shm": {"enable": false}, "rdma": {"enable": false}}})",
       "memory moves over TCP only, even to our own segment"},
      {"FERRY_METRICS_PORT", Mapping::kInteger, "metrics/port", "Prometheus /metrics on this port (0: ephemeral)"},
      {"FERRY_POLLING", Mapping::kBool, "polling", ""},
      {"FERRY_CHECKSUM", Mapping::kBool, "checksum", ""},
      {"FERRY_AUTH_TOKEN", Mapping::kReadDirectly, "the engine and ferry-metadata",
       "the cluster token, when neither auth/token nor auth/token_file is set"},
      {"FERRY_SHM_DIR", Mapping::kString, "same_machine/dir", ""},
      {"FERRY_LOG_LEVEL", Mapping::kReadDirectly, "the logger (wins over log_level)",
       "debug, info, warn, error, off"},
      {"FERRY_LOG_TO_PYTHON", Mapping::kReadDirectly, "the Python module, at import",
       "1: log lines go to Python's logging (logger `ferry`) instead of stderr"},
      {"MC_CUSTOM_TOPO_JSON", Mapping::kReadDirectly, "get_local_topology / getLocalTopology",
       "a JSON file returned as the topology"},
      {"MC_LEGACY_RPC_PORT_BINDING", Mapping::kReadDirectly, "initialize / init",
       "p2p binds the port in local_hostname instead of an ephemeral one"},
  };
  return table;
}

const char* value(std::string_view name) {
  for (const auto& v : variables()) {
    if (name != v.name) continue;
    const char* s = std::getenv(v.name);
    return s && *s ? s : nullptr;
  }
  std::fprintf(stderr, "ferry: environment variable %.*s is not in the table\n",
               static_cast<int>(name.size()), name.data());
  std::abort();
}

bool truthy(std::string_view value) {
  std::string s(value);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

}  // namespace ferry::env
