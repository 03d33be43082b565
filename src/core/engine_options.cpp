#include "core/engine_options.h"

#include <algorithm>

#include "common/auth.h"

namespace ferry {

void declareEngineOptions(OptionTable& t) {
  t.text("local_segment_name", "", "segment name; empty → `host:port` of the RPC server");
  t.text("rpc/bind_address", "0.0.0.0", "RPC/data listener");
  t.text("rpc/advertise_address", "", "host peers should use; empty → bind address, or the first non-loopback IPv4");
  t.integer("rpc/port", 0, 0, 65535, "0 = ephemeral");
  t.integer("rpc/max_connections", 0, 0, 1 << 20,
            "0 = auto: half the process's file-descriptor limit, at most 1024; further connections are "
            "refused with a log line");
  t.integer("rpc/max_connections_per_address", 256, 0, 1 << 20,
            "connections from one source address (0: no cap); others keep working while one floods");
  t.integer("rpc/first_frame_timeout_ms", 10000, 1, INT32_MAX, "a new connection that sends no request by then is closed");
  t.integer("rpc/max_reply_backlog_bytes", 1 << 20, 4096, 1 << 30,
            "replies queued for a client that does not read them before the server waits for it");
  t.secret("auth/token", "cluster token: peers prove they know it before anything is served (see Security)");
  t.text("auth/token_file", "", "a file holding the cluster token, readable by its owner only");
  t.text("same_machine/dir", "/dev/shm",
         "where same-machine peers meet (a tmpfs both see): local sockets, beacons, shared-memory files");
  t.integer("same_machine/streaming_copy_bytes", 0, -1, INT64_MAX,
            "submits of at least this many bytes that the CPU copies (local, shm) use stores that bypass the "
            "cache (0: half this process's share of the last-level cache, at most 16 MiB per usable CPU; -1: never); "
            "see Performance");
  t.integer("notifications/max_inbox_bytes", 64 << 20, 1 << 16, 1ll << 40,
            "unread notifications kept; beyond, senders are answered `Busy`");
  t.integer("notifications/max_queued_bytes_per_peer", 64 << 20, 1 << 16, 1ll << 40,
            "notifications waiting to go to one peer; beyond, new ones are dropped with a log line");
  t.integer("transfer_timeout_ms", 30000, 1, INT32_MAX, "a task not done by then is `TIMEOUT`");
  t.flag("checksum", false,
         "check every transfer's bytes end to end (XXH3 per slice; what `Request::checksum` asks per request)");
  t.integer("connect_timeout_ms", 3000, 1, INT32_MAX, "TCP connect deadline (peers and metadata stores)");
  t.flag("polling", false, "I/O threads busy-poll before sleeping; lower latency, burns cores");
  t.integer("polling_spin_us", 200, 0, 1000000, "how long they spin in polling mode");
  t.integer("wait_spin_us", 50, 0, 1000000, "`waitTransfer` on a batch of up to 256 KiB spins this long before sleeping (0 in polling mode)");
  t.text("log_level", "info", "debug, info, warn, error, off; `FERRY_LOG_LEVEL` wins");
  t.flag("metrics/enable", false, "count transfers, with a periodic throughput log line");
  t.integer("metrics/interval_s", 5, 1, 86400, "its period");
  t.integer("metrics/port", -1, -1, 65535,
            "serve Prometheus `/metrics` on this port (0: an ephemeral one; -1: off); engines of one process "
            "asking for the same port share it");
  t.text("metrics/bind_address", "127.0.0.1", "where `/metrics` listens (it needs no token: keep it private)");
  t.integer("batch/max_size", 1 << 20, 1, 1ll << 32, "largest `allocateBatch`");
  t.text("metadata/embedded_server", "", "`host:port`: host the HTTP metadata service in this engine");
  t.text("cuda/enable", "auto",
         "auto: GPU memory is recognised when a CUDA driver and a GPU are here (probed on first use); "
         "true: the same, probed at start, and the engine does not start without them; false: never "
         "touch CUDA (cuda:* refused)");
  t.text("cuda/provider", "system", "the CUDA driver table: system (libcuda at run time) or one a test registered");
  t.text("cuda/library", "", "the driver library to open; empty: libcuda.so.1, after checking /proc for an NVIDIA GPU");
  t.text("cuda/stream_error", "exit",
         "a stream-ordered transfer (*_on_cuda) that fails after the call returned: exit (the process ends, as "
         "Mooncake's does) or release (the stream goes on; the error is logged and kept)");
  t.text("rdma/bind_address", "", "recorded (Mooncake's name); the rdma transport picks NICs by transports/rdma/devices");
}

Status EngineOptions::read(const Config& c, EngineOptions& o) {
  o.segment_name = c.get<std::string>("local_segment_name");
  o.rpc_bind_address = c.get<std::string>("rpc/bind_address");
  o.rpc_advertise_address = c.get<std::string>("rpc/advertise_address");
  o.rpc_port = static_cast<uint16_t>(c.get<int64_t>("rpc/port"));
  o.rpc_max_connections = c.get<uint64_t>("rpc/max_connections");
  o.rpc_max_connections_per_address = c.get<uint64_t>("rpc/max_connections_per_address");
  o.rpc_first_frame_timeout_ms = c.get<int>("rpc/first_frame_timeout_ms");
  o.rpc_max_reply_backlog_bytes = c.get<uint64_t>("rpc/max_reply_backlog_bytes");
  o.same_machine_dir = c.get<std::string>("same_machine/dir");
  o.notify_inbox_bytes = c.get<uint64_t>("notifications/max_inbox_bytes");
  o.notify_queued_bytes_per_peer = c.get<uint64_t>("notifications/max_queued_bytes_per_peer");
  o.transfer_timeout_ms = c.get<int64_t>("transfer_timeout_ms");
  o.connect_timeout_ms = c.get<int>("connect_timeout_ms");
  o.checksum = c.get<bool>("checksum");
  o.polling = c.get<bool>("polling");
  o.polling_spin_us = c.get<int>("polling_spin_us");
  // In polling mode the I/O threads spin; a spinning caller too would be a third spinner
  // on two cores and starve them, so the caller sleeps.
  o.wait_spin_us = o.polling ? 0 : c.get<int>("wait_spin_us");
  if (c.has("log_level")) o.log_level = c.get<std::string>("log_level");
  o.metrics_enable = c.get<bool>("metrics/enable");
  o.metrics_interval_s = c.get<int64_t>("metrics/interval_s");
  o.metrics_port = static_cast<int>(c.get<int64_t>("metrics/port"));
  o.metrics_bind_address = c.get<std::string>("metrics/bind_address");
  o.max_batch_size = c.get<uint64_t>("batch/max_size");
  o.embedded_metadata_server = c.get<std::string>("metadata/embedded_server");
  const std::string cuda_enable = c.get<std::string>("cuda/enable");
  if (cuda_enable != "auto" && cuda_enable != "true" && cuda_enable != "false")
    return Status::InvalidArgument("cuda/enable is auto, true or false, not '" + cuda_enable + "'");
  o.gpu.enable = cuda_enable != "false";
  o.gpu_required = cuda_enable == "true";
  o.gpu.provider = c.get<std::string>("cuda/provider");
  o.gpu.library = c.get<std::string>("cuda/library");
  o.stream_error = c.get<std::string>("cuda/stream_error");
  if (o.stream_error != "exit" && o.stream_error != "release")
    return Status::InvalidArgument("cuda/stream_error is exit or release, not '" + o.stream_error + "'");
  return auth::resolveToken(c.get<std::string>("auth/token"), c.get<std::string>("auth/token_file"), o.auth_token);
}

}  // namespace ferry
