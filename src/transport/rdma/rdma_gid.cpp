#include "transport/rdma/rdma_gid.h"

#include <arpa/inet.h>

#include <algorithm>

namespace ferry::rdma {

namespace {
bool isNull(const uint8_t g[16]) { return std::all_of(g, g + 16, [](uint8_t b) { return b == 0; }); }
bool isV4Mapped(const uint8_t g[16]) {
  return std::all_of(g, g + 10, [](uint8_t b) { return b == 0; }) && g[10] == 0xff && g[11] == 0xff;
}
bool isLinkLocal(const uint8_t g[16]) { return g[0] == 0xfe && (g[1] & 0xc0) == 0x80; }
}  // namespace

std::string gidText(const uint8_t gid[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, gid, buf, sizeof buf);
  return buf;
}

Status selectGid(const std::vector<GidCandidate>& table, bool ib_link, int wanted, const std::string& device,
                 uint32_t& index, std::string& why) {
  if (wanted >= 0) {
    for (const auto& c : table)
      if (c.index == static_cast<uint32_t>(wanted) && !isNull(c.gid)) {
        index = c.index;
        why = "configured gid_index " + std::to_string(wanted);
        return Status::OK();
      }
    return Status::NotFound(device + ": configured gid_index " + std::to_string(wanted) +
                            " is not a valid GID of the port");
  }
  struct Rule {
    const char* name;
    bool (*fits)(const GidCandidate&);
  };
  static const Rule ib_rules[] = {
      {"first InfiniBand GID", [](const GidCandidate& c) { return c.type == GidCandidate::kIb; }},
  };
  static const Rule roce_rules[] = {
      {"RoCEv2 IPv4-mapped GID with a netdev",
       [](const GidCandidate& c) { return c.type == GidCandidate::kRoceV2 && c.has_netdev && isV4Mapped(c.gid); }},
      {"RoCEv2 global GID with a netdev",
       [](const GidCandidate& c) { return c.type == GidCandidate::kRoceV2 && c.has_netdev && !isLinkLocal(c.gid); }},
      {"RoCEv2 global GID without a netdev",
       [](const GidCandidate& c) { return c.type == GidCandidate::kRoceV2 && !isLinkLocal(c.gid); }},
      {"RoCEv2 link-local GID (routable within the subnet only)",
       [](const GidCandidate& c) { return c.type == GidCandidate::kRoceV2; }},
  };
  const Rule* begin = ib_link ? std::begin(ib_rules) : std::begin(roce_rules);
  const Rule* end = ib_link ? std::end(ib_rules) : std::end(roce_rules);
  for (const Rule* r = begin; r != end; ++r)
    for (const auto& c : table)
      if (!isNull(c.gid) && r->fits(c)) {
        index = c.index;
        why = r->name;
        return Status::OK();
      }
  return Status::NotFound(device + ": no usable " + (ib_link ? "InfiniBand" : "RoCEv2") + " GID among " +
                          std::to_string(table.size()) +
                          " entries (RoCEv1 is not chosen automatically; set transports/rdma/gid_index)");
}

}  // namespace ferry::rdma
