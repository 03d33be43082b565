// The transport selector: which transports may serve a request, in which order.
//
// Default order is the registry's preference order (local -> shm -> rdma -> tcp) among the
// transports that can reach the peer. `selector/policies` reorders it: a list of rules
//   {"match": {"same_machine": true, "min_size": 0, "max_size": 1048576,
//              "local_location": "cpu", "remote_location": "cuda", "segment_type": "memory"},
//    "transports": ["shm", "tcp"]}
// where every field of "match" is optional (locations match by prefix) and the first rule
// that matches gives the order (transports it does not name are not used). A request's
// transport_hint pins exactly one transport. A slice that fails on one candidate moves to
// the next, at most `selector/max_failover_attempts` times (never when pinned).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/config.h"
#include "ferry/status.h"
#include "transport/transport.h"

namespace ferry {

/// What a rule can match on, for one request.
struct SelectionCase {
  bool same_machine = false;
  uint64_t length = 0;
  std::string local_location = "cpu:0";
  std::string remote_location = "cpu:0";
  std::string segment_type = "memory";
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

  /// Reads selector/* from config; `transports` in preference order.
  Status configure(const Config& config, std::vector<Transport*> transports);

  /// The default order among the transports that reach `peer` (policies not applied).
  std::vector<Transport*> defaultOrder(const PeerEndpoint& peer) const { return order(nullptr, peer); }
  /// The order rule `r` gives toward `peer` (the transports it names that reach).
  std::vector<Transport*> ruleOrder(const Rule& r, const PeerEndpoint& peer) const {
    return order(&r.transports, peer);
  }
  /// Ordered candidates that can reach `peer` for this case (empty: none can).
  std::vector<Transport*> candidates(const PeerEndpoint& peer, const SelectionCase& c) const;
  /// The transport named `name` if it can reach `peer`; an error saying why not otherwise.
  Status pinned(const std::string& name, const PeerEndpoint& peer, Transport*& out) const;

  bool hasPolicies() const { return !rules_.empty(); }
  int maxFailoverAttempts() const { return max_failover_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<Transport*>& transports() const { return transports_; }

 private:
  std::vector<Transport*> order(const std::vector<std::string>* names, const PeerEndpoint& peer) const;

  std::vector<Transport*> transports_;
  std::vector<Rule> rules_;
  int max_failover_ = 2;
};

}  // namespace ferry
