#include "core/engine_options.h"

#include <algorithm>

namespace ferry {

void declareEngineOptions(OptionTable& t) {
  t.text("local_segment_name", "", "segment name; empty → `host:port` of the RPC server");
  t.text("rpc/bind_address", "0.0.0.0", "RPC/data listener");
  t.text("rpc/advertise_address", "", "host peers should use; empty → bind address, or the first non-loopback IPv4");
  t.integer("rpc/port", 0, 0, 65535, "0 = ephemeral");
  t.integer("rpc/max_connections", 1024, 1, 1 << 20, "further connections are refused with a log line");
  t.integer("transfer_timeout_ms", 30000, 1, INT32_MAX, "a task not done by then is `TIMEOUT`");
  t.integer("connect_timeout_ms", 3000, 1, INT32_MAX, "TCP connect deadline (peers and metadata stores)");
  t.flag("polling", false, "I/O threads busy-poll before sleeping; lower latency, burns cores");
  t.integer("polling_spin_us", 200, 0, 1000000, "how long they spin in polling mode");
  t.integer("wait_spin_us", 50, 0, 1000000, "`waitTransfer` spins this long before sleeping (0 in polling mode)");
  t.text("log_level", "info", "debug, info, warn, error, off; `FERRY_LOG_LEVEL` wins");
  t.flag("metrics/enable", false, "a periodic throughput log line");
  t.integer("metrics/interval_s", 5, 1, 86400, "its period");
  t.integer("batch/max_size", 1 << 20, 1, 1ll << 32, "largest `allocateBatch`");
  t.text("metadata/embedded_server", "", "`host:port`: host the HTTP metadata service in this engine");
  t.text("rdma/bind_address", "", "recorded for the RDMA transport (not built yet)");
}

EngineOptions EngineOptions::read(const Config& c) {
  EngineOptions o;
  o.segment_name = c.get<std::string>("local_segment_name");
  o.rpc_bind_address = c.get<std::string>("rpc/bind_address");
  o.rpc_advertise_address = c.get<std::string>("rpc/advertise_address");
  o.rpc_port = static_cast<uint16_t>(c.get<int64_t>("rpc/port"));
  o.rpc_max_connections = c.get<uint64_t>("rpc/max_connections");
  o.transfer_timeout_ms = c.get<int64_t>("transfer_timeout_ms");
  o.connect_timeout_ms = c.get<int>("connect_timeout_ms");
  o.polling = c.get<bool>("polling");
  o.polling_spin_us = c.get<int>("polling_spin_us");
  // In polling mode the I/O threads spin; a spinning caller too would be a third spinner
  // on two cores and starve them, so the caller sleeps.
  o.wait_spin_us = o.polling ? 0 : c.get<int>("wait_spin_us");
  if (c.has("log_level")) o.log_level = c.get<std::string>("log_level");
  o.metrics_enable = c.get<bool>("metrics/enable");
  o.metrics_interval_s = c.get<int64_t>("metrics/interval_s");
  o.max_batch_size = c.get<uint64_t>("batch/max_size");
  o.embedded_metadata_server = c.get<std::string>("metadata/embedded_server");
  return o;
}

}  // namespace ferry
