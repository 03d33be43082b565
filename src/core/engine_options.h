// The engine's own options (not a transport's, the selector's or the stores'), declared
// once and read once, at start, into a typed struct.
#pragma once

#include <cstdint>
#include <string>

#include "common/cuda_driver.h"
#include "common/options.h"
#include "ferry/config.h"
#include "ferry/status.h"

namespace ferry {

void declareEngineOptions(OptionTable& table);

struct EngineOptions {
  std::string segment_name;  // "" = host:port of the RPC server
  std::string rpc_bind_address, rpc_advertise_address;
  uint16_t rpc_port = 0;
  size_t rpc_max_connections = 0;  // 0: auto (SocketServer)
  size_t rpc_max_connections_per_address = 0;
  int rpc_first_frame_timeout_ms = 0;
  size_t rpc_max_reply_backlog_bytes = 0;
  std::string auth_token;  // resolved: auth/token, auth/token_file or FERRY_AUTH_TOKEN
  std::string same_machine_dir;
  size_t notify_inbox_bytes = 0, notify_queued_bytes_per_peer = 0;
  int64_t transfer_timeout_ms = 0;
  int connect_timeout_ms = 0;
  bool checksum = false;  // every request checked end to end
  bool polling = false;
  int polling_spin_us = 0;
  int wait_spin_us = 0;       // 0 in polling mode (see read())
  std::string log_level;      // "" when not configured
  bool metrics_enable = false;
  int64_t metrics_interval_s = 0;
  int metrics_port = -1;  // -1: no /metrics
  std::string metrics_bind_address;
  size_t max_batch_size = 0;
  std::string embedded_metadata_server;  // "host:port" or ""
  cuda::Gpu::Options gpu;
  bool gpu_required = false;  // cuda/enable=true: no start without a usable GPU
  std::string stream_error;  // "exit" or "release"

  /// Reads them from a validated config; fails when the token cannot be read or is too
  /// short.
  static Status read(const Config& config, EngineOptions& out);
};

}  // namespace ferry
