// What this machine offers a transfer engine: CPUs and NUMA nodes, network interfaces,
// RDMA devices, GPUs. Read from /sys and /proc (no library that may be missing).
#pragma once

#include <string>

#include "ferry/status.h"

namespace ferry {

/// The local topology as JSON: {"cpus":N, "numa_nodes":[{"id","cpus"}], "nics":[{"name",
/// "ipv4","numa_node"}], "rdma_devices":[{"name","ports","numa_node"}], "gpus":[{"id",
/// "pci_bus","numa_node"}]} — empty lists where none. `device_filter` (comma-separated
/// names) keeps only the listed NICs/RDMA devices. MC_CUSTOM_TOPO_JSON, when set, names a
/// file whose JSON object is returned instead (after validation).
Status localTopologyJson(const std::string& device_filter, std::string& out);

}  // namespace ferry
