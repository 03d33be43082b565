#include "core/selector.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "transport/registry.h"

namespace ferry {

using json = nlohmann::json;

void TransportSelector::declareOptions(OptionTable& t) {
  t.integer("selector/max_failover_attempts", 2, 0, 16, "further transports a failed slice may try");
  t.flag("selector/strict", false,
         "fail transfers instead of moving them to a slower transport (failover, a refused attach, a transport the "
         "peer offers but this engine cannot use)");
  t.json("selector/policies", "[]", "rules that reorder transports per request (Transports and the selector)");
}

bool TransportSelector::Rule::matches(const SelectionCase& c) const {
  if (same_machine && *same_machine != c.same_machine) return false;
  if (c.length < min_size || c.length > max_size) return false;
  if (!local_location.empty() && c.local_location.substr(0, local_location.size()) != local_location) return false;
  if (!remote_location.empty() && c.remote_location.substr(0, remote_location.size()) != remote_location)
    return false;
  if (!segment_type.empty() && segment_type != c.segment_type) return false;
  return true;
}

Status TransportSelector::configure(const Config& config, std::vector<Transport*> transports) {
  if (transports.size() > 32) return Status::InvalidArgument("more than 32 transports");
  transports_ = std::move(transports);
  caps_.clear();
  groups_.clear();
  for (Transport* t : transports_) {
    caps_.push_back(t->caps());
    const TransportInfo* info = findTransport(t->name());
    groups_.push_back(info ? info->group : 99);
  }
  for (unsigned local = 0; local < 16; ++local)
    for (unsigned remote = 0; remote < 16; ++remote) {
      bool crossing = false;  // two fitting transports of one group whose costs cross
      for (size_t a = 0; a < transports_.size(); ++a)
        for (size_t b = a + 1; b < transports_.size(); ++b)
          crossing = crossing || (groups_[a] == groups_[b] && fitsKinds(a, MemoryKind(local), MemoryKind(remote)) &&
                                  fitsKinds(b, MemoryKind(local), MemoryKind(remote)) && costsCross(caps_[a], caps_[b]));
      size_matters_[local * 16 + remote] = crossing;
    }
  max_failover_ = static_cast<int>(config.get<int64_t>("selector/max_failover_attempts"));
  strict_ = config.get<bool>("selector/strict");
  rules_.clear();
  json list = json::parse(config.get<std::string>("selector/policies"), nullptr, false);
  if (list.is_discarded() || !list.is_array())
    return Status::InvalidArgument("selector/policies must be a list of rules");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& r = list[i];
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("selector/policies[" + std::to_string(i) + "]: " + why);
    };
    if (!r.is_object() || !r.contains("transports") || !r["transports"].is_array())
      return bad("needs a \"transports\" list");
    Rule rule;
    try {
      json m = r.value("match", json::object());
      if (!m.is_object()) return bad("\"match\" must be an object");
      for (auto& [k, v] : m.items()) {
        if (k == "same_machine") rule.same_machine = v.get<bool>();
        else if (k == "min_size") rule.min_size = v.get<uint64_t>();
        else if (k == "max_size") rule.max_size = v.get<uint64_t>();
        else if (k == "local_location") rule.local_location = v.get<std::string>();
        else if (k == "remote_location") rule.remote_location = v.get<std::string>();
        else if (k == "segment_type") rule.segment_type = v.get<std::string>();
        else return bad("unknown match key \"" + k + "\"");
      }
      for (auto& t : r["transports"]) rule.transports.push_back(t.get<std::string>());
    } catch (const std::exception& e) {
      return bad(e.what());
    }
    // A transport of the registry that is disabled here matches nothing; others are typos.
    for (auto& name : rule.transports)
      if (!findTransport(name)) return bad("unknown transport \"" + name + "\"");
    rules_.push_back(std::move(rule));
  }
  return Status::OK();
}

uint32_t TransportSelector::reachable(const PeerEndpoint& peer) const {
  uint32_t mask = 0;
  for (size_t i = 0; i < transports_.size(); ++i)
    if (transports_[i]->canReach(peer)) mask |= 1u << i;
  return mask;
}

uint32_t TransportSelector::unusable(const PeerEndpoint& peer, std::vector<std::string>& why) const {
  uint32_t mask = 0;
  why.assign(transports_.size(), std::string());
  for (size_t i = 0; i < transports_.size(); ++i) {
    why[i] = transports_[i]->unusableFor(peer);
    if (!why[i].empty()) mask |= 1u << i;
  }
  return mask;
}

std::optional<uint8_t> TransportSelector::missedBest(const SelectionCase& c, uint32_t reachable, uint32_t unusable,
                                                     const Order& chosen) const {
  if (!unusable || hasPolicies()) return std::nullopt;  // a rule's order is what its author wants
  const Order best = defaultOrder(c, reachable | unusable);
  if (best.empty() || !(unusable & (1u << best[0])) || (!chosen.empty() && chosen[0] == best[0])) return std::nullopt;
  return best[0];
}

bool TransportSelector::fitsKinds(size_t i, MemoryKind local, MemoryKind remote) const {
  return (caps_[i].local_kinds & local) && (caps_[i].remote_kinds & remote);
}

bool TransportSelector::costsCross(const TransportCaps& a, const TransportCaps& b) {
  // One is first at every size when it starts sooner and moves bytes no slower; identical
  // costs tie at every size (registry order). Otherwise the order may change somewhere
  // (equal latencies tie at 0 bytes: counted as crossing, to be safe), and a request
  // spanning several could be routed unlike its pieces.
  auto first_always = [](const TransportCaps& x, const TransportCaps& y) {
    return x.latency_us < y.latency_us && x.bandwidth_GBps >= y.bandwidth_GBps;
  };
  const bool same = a.latency_us == b.latency_us && a.bandwidth_GBps == b.bandwidth_GBps;
  return !same && !first_always(a, b) && !first_always(b, a);
}

bool TransportSelector::orderDependsOnSize(MemoryKind local, MemoryKind remote) const {
  return size_matters_[local * 16 + remote];
}

TransportSelector::Order TransportSelector::defaultOrder(const SelectionCase& c, uint32_t reachable) const {
  Order out;
  for (size_t i = 0; i < transports_.size(); ++i)
    if ((reachable >> i & 1) && fits(i, c)) out.push_back(static_cast<uint8_t>(i));
  // Preference groups first; inside one, the cheaper for this size (registry order on a tie).
  std::stable_sort(out.begin(), out.end(), [&](uint8_t a, uint8_t b) {
    if (groups_[a] != groups_[b]) return groups_[a] < groups_[b];
    return caps_[a].costUs(c.length) < caps_[b].costUs(c.length);
  });
  return out;
}

TransportSelector::Order TransportSelector::ruleOrder(const Rule& r, const SelectionCase& c,
                                                      uint32_t reachable) const {
  Order out;
  for (const auto& n : r.transports)
    for (size_t i = 0; i < transports_.size(); ++i)
      if (n == transports_[i]->name() && (reachable >> i & 1) && fits(i, c))
        out.push_back(static_cast<uint8_t>(i));
  return out;
}

Status TransportSelector::choose(const SelectionCase& c, uint32_t reachable, std::string_view hint,
                                 const std::string& segment_name, Order& out, bool& pinned) const {
  pinned = !hint.empty();
  if (pinned) {
    for (size_t i = 0; i < transports_.size(); ++i) {
      if (hint != transports_[i]->name()) continue;
      if (!(reachable >> i & 1))
        return Status::NotSupported("transport_hint '" + std::string(hint) + "' cannot reach segment '" +
                                    segment_name + "'");
      if (!fitsKinds(i, c.local_kind, c.remote_kind))
        return Status::NotSupported("transport_hint '" + std::string(hint) + "' cannot move " +
                                    memoryKindName(c.local_kind) + " memory to " +
                                    memoryKindName(c.remote_kind) + " memory");
      if (!fits(i, c))
        return Status::NotSupported("transport_hint '" + std::string(hint) + "' cannot check checksums");
      out.assign(1, static_cast<uint8_t>(i));
      return Status::OK();
    }
    return Status::NotSupported("transport_hint '" + std::string(hint) + "' is not enabled in this engine");
  }
  const Rule* rule = nullptr;
  for (const Rule& r : rules_)
    if (r.matches(c)) {
      rule = &r;
      break;
    }
  out = rule ? ruleOrder(*rule, c, reachable) : defaultOrder(c, reachable);
  if (c.checksum) noteChecksumDetour(c, rule, reachable, out, segment_name);
  if (!out.empty()) return Status::OK();
  const std::string checked = c.checksum ? " with its checksum checked" : "";
  if (rule)
    return Status::NotSupported("no transport allowed by selector/policies can reach segment '" +
                                segment_name + "' for this request" + checked);
  return Status::NotSupported(std::string("no enabled transport can move ") + memoryKindName(c.local_kind) +
                              " memory to " + memoryKindName(c.remote_kind) + " memory of segment '" +
                              segment_name + "'" + checked);
}

void TransportSelector::noteChecksumDetour(const SelectionCase& c, const Rule* rule, uint32_t reachable,
                                           const Order& chosen, const std::string& segment_name) const {
  SelectionCase unchecked = c;
  unchecked.checksum = false;
  const Order usual = rule ? ruleOrder(*rule, unchecked, reachable) : defaultOrder(unchecked, reachable);
  if (usual.empty() || (!chosen.empty() && chosen[0] == usual[0])) return;
  FERRY_LOG_LIMITED(WARN, checksum_detour_log_)
      << "checksummed requests to '" << segment_name << "' go over "
      << (chosen.empty() ? std::string("no transport") : std::string(transports_[chosen[0]]->name()))
      << " instead of " << transports_[usual[0]]->name() << ", which cannot check "
      << memoryKindName(c.local_kind) << " to " << memoryKindName(c.remote_kind) << " memory";
}

bool TransportSelector::fits(size_t i, const SelectionCase& c) const {
  return fitsKinds(i, c.local_kind, c.remote_kind) &&
         (!c.checksum || ((caps_[i].checksum_kinds & c.local_kind) && (caps_[i].checksum_kinds & c.remote_kind)));
}

}  // namespace ferry
