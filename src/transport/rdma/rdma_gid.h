// GID choice for a port, as a pure function over the GID table so every rule is tested
// without hardware. RoCE needs a routable RoCEv2 GID; the wrong one is the most reported
// RDMA failure (QPs stuck before RTR, "retry exceeded"; ../shared/design/rdma.md §1.7).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::rdma {

struct GidCandidate {
  uint32_t index = 0;
  uint8_t gid[16] = {};
  enum Type { kIb, kRoceV1, kRoceV2 } type = kIb;
  bool has_netdev = false;  // bound to a network interface (RoCE)
};

/// The GID index to use on a port. `wanted` >= 0 is the operator's choice (config
/// transports/rdma/gid_index or MC_GID_INDEX): honoured when that entry exists and is not
/// null. Else, on InfiniBand (`ib_link`) the first non-null IB GID; on RoCE, in order: a
/// RoCEv2 IPv4-mapped GID with a netdev, a RoCEv2 global GID with a netdev, any RoCEv2 GID
/// that is not link-local, a link-local RoCEv2 one. RoCEv1 entries are never chosen
/// automatically. `why` says which rule picked it (logged). NotFound naming `device` when
/// nothing fits.
Status selectGid(const std::vector<GidCandidate>& table, bool ib_link, int wanted, const std::string& device,
                 uint32_t& index, std::string& why);

/// "fe80::..." style text of a GID, for logs and ferry-info.
std::string gidText(const uint8_t gid[16]);

}  // namespace ferry::rdma
