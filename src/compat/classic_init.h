// How the classic entry points (TE C++ init, Python initialize) turn their arguments into a
// native Config; shared so both behave the same.
#pragma once

#include <cstdint>
#include <string>

#include "ferry/config.h"
#include "ferry/status.h"

namespace ferry::compat {

/// metadata: "P2PHANDSHAKE"/"p2p"/"" (no server), "http://...", "etcd://...", "redis://...",
/// or bare "host:port" (etcd). With p2p the RPC server binds an ephemeral port (the segment
/// name becomes host:<bound port>) unless MC_LEGACY_RPC_PORT_BINDING asks for the given one;
/// with a server, the segment name is local_server_name exactly. The environment (FERRY_CONF,
/// MC_*) is applied first.
Status classicConfig(const std::string& metadata, const std::string& local_server_name,
                     const std::string& ip_or_host_name, uint64_t rpc_port, Config& out);

}  // namespace ferry::compat
