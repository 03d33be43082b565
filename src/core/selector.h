// The transport selector: which transports may serve a request, in which order.
//
// Default order: the registry's preference groups (our own segment, same machine,
// network), and within a group the cheaper transport for the request's size (each
// transport's cost estimate), among the transports that reach the peer and may touch both
// sides' memory kinds. `selector/policies` reorders it: a list of rules
//   {"match": {"same_machine": true, "min_size": 0, "max_size": 1048576,
//              "local_location": "cpu", "remote_location": "cuda", "segment_type": "memory"},
//    "transports": ["shm", "tcp"]}
// where every field of "match" is optional (locations match by prefix) and the first rule
// that matches gives the order (transports it does not name are not used). A request's
// transport_hint pins exactly one transport. A slice that fails on one candidate moves to
// the next, at most `selector/max_failover_attempts` times (never when pinned).
#pragma once

#include <cstdint>
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/options.h"
#include "ferry/config.h"
#include "ferry/status.h"
#include "transport/transport.h"

namespace ferry {

/// What a rule can match on, for one request.
struct SelectionCase {
  bool same_machine = false;
  uint64_t length = 0;
  MemoryKind local_kind = kHostMemory;
  MemoryKind remote_kind = kHostMemory;
  std::string_view local_location = "cpu:0";   // read only by policy rules
  std::string_view remote_location = "cpu:0";
  std::string_view segment_type = "memory";
  bool checksum = false;  // the request's bytes are checked end to end
};

class TransportSelector {
 public:
  struct Rule {
    std::optional<bool> same_machine;
    uint64_t min_size = 0, max_size = UINT64_MAX;
    std::string local_location, remote_location, segment_type;  // "" = any
    std::vector<std::string> transports;
    bool matches(const SelectionCase& c) const;
  };
  /// A request's candidates: indices into transports(), in order.
  using Order = std::vector<uint8_t>;

  static void declareOptions(OptionTable& table);
  /// Reads selector/* from config; `transports` in preference order. Policy rules may name
  /// only transports of the registry.
  Status configure(const Config& config, std::vector<Transport*> transports);

  /// Bit i set when transports()[i] can reach `peer` (kinds not considered).
  uint32_t reachable(const PeerEndpoint& peer) const;
  /// Bit i set when transports()[i] cannot reach `peer` although the pair should be able
  /// to (Transport::unusableFor); `why` gets each one's reason, by index.
  uint32_t unusable(const PeerEndpoint& peer, std::vector<std::string>& why) const;
  /// The transport that would have come first for this case had the `unusable` ones been
  /// usable, when it is one of them and not what `chosen` starts with: a downgrade. None
  /// under policy rules (their order is the operator's).
  std::optional<uint8_t> missedBest(const SelectionCase& c, uint32_t reachable, uint32_t unusable,
                                    const Order& chosen) const;
  /// The candidates for one request: the hinted transport (`pinned` set), else the first
  /// matching rule's, else the default order; only transports in `reachable` that may touch
  /// both memory kinds. An error says why there is none.
  Status choose(const SelectionCase& c, uint32_t reachable, std::string_view hint,
                const std::string& segment_name, Order& out, bool& pinned) const;
  /// The default order toward a peer with `reachable` for this case (policies not applied).
  Order defaultOrder(const SelectionCase& c, uint32_t reachable) const;
  /// The order rule `r` gives (the transports it names that reach and fit the kinds).
  Order ruleOrder(const Rule& r, const SelectionCase& c, uint32_t reachable) const;
  /// Whether transports()[i] may carry this case: touches both kinds, checks checksums if asked.
  bool fits(size_t i, const SelectionCase& c) const;
  /// Whether transports()[i] may touch these kinds.
  bool fitsKinds(size_t i, MemoryKind local, MemoryKind remote) const;

  /// Whether the default order for these kinds may change with the request's size (two
  /// fitting transports share a preference group and their costs cross: neither is cheaper
  /// at every size).
  bool orderDependsOnSize(MemoryKind local, MemoryKind remote) const;
  /// Whether the cost lines of a and b cross (the cheaper of the two depends on the size).
  static bool costsCross(const TransportCaps& a, const TransportCaps& b);

  bool hasPolicies() const { return !rules_.empty(); }
  int maxFailoverAttempts() const { return max_failover_; }
  /// selector/strict: no failover, and a request a missing transport would have carried fails.
  bool strict() const { return strict_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<Transport*>& transports() const { return transports_; }

 private:
  std::vector<Transport*> transports_;
  std::vector<TransportCaps> caps_;  // caps() of each, read once
  std::vector<int> groups_;          // registry preference group of each
  // orderDependsOnSize by (local kind, remote kind) bits, filled by configure(): it is
  // asked per request on the submit path.
  std::array<bool, 16 * 16> size_matters_{};
  std::vector<Rule> rules_;
  int max_failover_ = 2;
  bool strict_ = false;
  // A checksummed request sent past the transport it would otherwise take (which cannot
  // check it): said, at most once per 10 s.
  mutable log::RateLimit checksum_detour_log_{1, std::chrono::seconds(10)};
  void noteChecksumDetour(const SelectionCase& c, const Rule* rule, uint32_t reachable, const Order& chosen,
                          const std::string& segment_name) const;
};

}  // namespace ferry
