#include "ferry/config.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/log.h"

namespace ferry {

using json = nlohmann::json;

// Every key Ferry reads, with its default. `ferry-info --config` prints this table.
static const char* kDefaults = R"({
  "local_segment_name": "",
  "metadata": { "type": "p2p", "servers": "", "cluster_id": "default", "lease_ttl_s": 10,
                "embedded_server": "" },
  "rpc": {
    "bind_address": "0.0.0.0",
    "advertise_address": "",
    "port": 0,
    "max_connections": 1024
  },
  "transfer_timeout_ms": 30000,
  "connect_timeout_ms": 3000,
  "polling": false,
  "polling_spin_us": 200,
  "wait_spin_us": 50,
  "log_level": "info",
  "metrics": { "enable": false, "interval_s": 5 },
  "rdma": { "bind_address": "" },
  "batch": { "max_size": 1048576 },
  "selector": { "max_failover_attempts": 2, "policies": [] },
  "files": { "expose": [], "direct_io": true, "direct_alignment": 4096 },
  "transports": {
    "local": { "enable": true },
    "shm": {
      "enable": true,
      "copy_threads": 0,
      "slice_size": 1048576,
      "inline_bytes": 65536,
      "cross_memory_attach": true
    },
    "file": {
      "enable": true,
      "backend": "auto",
      "workers": 1,
      "queue_depth": 32,
      "slice_size": 1048576
    },
    "tcp": {
      "enable": true,
      "connections_per_peer": 0,
      "slice_size": 1048576,
      "max_slice_size": 67108864,
      "inline_send_bytes": 262144
    }
  }
})";

struct Config::Impl {
  json tree;
};

namespace {

json::json_pointer pointerFor(std::string_view key) {
  std::string p = "/";
  p.append(key.data(), key.size());
  // Keys are '/'-separated; tolerate a leading slash.
  if (p.size() > 1 && p[1] == '/') p.erase(0, 1);
  return json::json_pointer(p);
}

const json* lookup(const json& tree, std::string_view key) {
  try {
    auto ptr = pointerFor(key);
    if (!tree.contains(ptr)) return nullptr;
    return &tree.at(ptr);
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

Config::Config() : impl_(std::make_unique<Impl>()) { impl_->tree = json::parse(kDefaults); }
Config::~Config() = default;
Config::Config(const Config& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
Config& Config::operator=(const Config& o) {
  *impl_ = *o.impl_;
  return *this;
}

std::string Config::defaultsJson() { return json::parse(kDefaults).dump(2); }

Status Config::load(std::string_view path_or_json) {
  std::string text;
  std::string_view trimmed = path_or_json;
  while (!trimmed.empty() && isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  if (!trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[')) {
    text = std::string(trimmed);
  } else {
    std::ifstream f{std::string(path_or_json)};
    if (!f) return Status::NotFound("cannot open config file '" + std::string(path_or_json) + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("config is not a JSON object: '" +
                                   std::string(path_or_json.substr(0, 80)) + "'");
  impl_->tree.merge_patch(j);
  return Status::OK();
}

Status Config::loadFromEnv() {
  const char* conf = std::getenv("FERRY_CONF");
  if (!conf || !*conf) conf = std::getenv("MC_TENT_CONF");
  if (conf && *conf) FERRY_RETURN_IF_ERROR(load(conf));
  if (const char* v = std::getenv("MC_TRANSFER_TIMEOUT"); v && *v) {
    char* end = nullptr;
    double secs = std::strtod(v, &end);
    if (end == v || secs <= 0)
      return Status::InvalidArgument(std::string("MC_TRANSFER_TIMEOUT must be seconds > 0, got '") +
                                     v + "'");
    set<int64_t>("transfer_timeout_ms", static_cast<int64_t>(secs * 1000));
  }
  if (const char* v = std::getenv("MC_TCP_BIND_ADDRESS"); v && *v) set("rpc/bind_address", v);
  if (const char* v = std::getenv("MC_METADATA_SERVER"); v && *v) set("metadata/servers", v);
  if (const char* v = std::getenv("MC_METADATA_CLUSTER_ID"); v && *v) set("metadata/cluster_id", v);
  if (const char* v = std::getenv("MC_RDMA_BIND_ADDRESS"); v && *v) set("rdma/bind_address", v);
  auto truthy = [](const char* v) {
    std::string s(v);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s == "1" || s == "true" || s == "yes" || s == "on";
  };
  if (const char* v = std::getenv("MC_TE_METRIC"); v && *v) set<bool>("metrics/enable", truthy(v));
  if (const char* v = std::getenv("MC_TE_METRIC_INTERVAL_SECONDS"); v && *v) {
    char* end = nullptr;
    long secs = std::strtol(v, &end, 10);
    if (end == v || secs <= 0)
      return Status::InvalidArgument(std::string("MC_TE_METRIC_INTERVAL_SECONDS must be seconds > 0, got '") +
                                     v + "'");
    set<int64_t>("metrics/interval_s", secs);
  }
  // Only TCP, even for our own segment (the local copy path is off too).
  if (const char* v = std::getenv("MC_FORCE_TCP"); v && *v && truthy(v)) {
    set<bool>("transports/local/enable", false);
    set<bool>("transports/shm/enable", false);
  }
  if (const char* v = std::getenv("FERRY_POLLING"); v && *v)
    set<bool>("polling", std::string(v) == "1" || std::string(v) == "true");
  return Status::OK();
}

bool Config::has(std::string_view key) const { return lookup(impl_->tree, key) != nullptr; }

template <typename T>
T Config::get(std::string_view key, T def) const {
  const json* j = lookup(impl_->tree, key);
  if (!j) return def;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (j->is_boolean()) return j->get<bool>();
      if (j->is_number_integer()) return j->get<int64_t>() != 0;
      if (j->is_string()) return j->get<std::string>() == "true" || j->get<std::string>() == "1";
      return def;
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (j->is_number()) return j->get<T>();
      if (j->is_string()) {
        std::string s = j->get<std::string>();
        return static_cast<T>(std::stod(s));
      }
      return def;
    } else {
      if (j->is_string()) return j->get<std::string>();
      return j->dump();
    }
  } catch (const std::exception&) {
    FERRY_LOG(WARN) << "config key '" << key << "' has an unusable value; using default";
    return def;
  }
}

template <typename T>
void Config::set(std::string_view key, const T& value) {
  impl_->tree[pointerFor(key)] = value;
}

std::string Config::dump(int indent) const { return impl_->tree.dump(indent); }

#define FERRY_CONFIG_TYPE(T)                                   \
  template T Config::get<T>(std::string_view, T) const;        \
  template void Config::set<T>(std::string_view, const T&);
FERRY_CONFIG_TYPE(std::string)
FERRY_CONFIG_TYPE(bool)
FERRY_CONFIG_TYPE(int)
FERRY_CONFIG_TYPE(int64_t)
FERRY_CONFIG_TYPE(uint64_t)
FERRY_CONFIG_TYPE(double)
#undef FERRY_CONFIG_TYPE

}  // namespace ferry
