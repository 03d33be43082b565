#include "core/selector.h"

#include <nlohmann/json.hpp>

namespace ferry {

using json = nlohmann::json;

bool TransportSelector::Rule::matches(const SelectionCase& c) const {
  if (same_machine && *same_machine != c.same_machine) return false;
  if (c.length < min_size || c.length > max_size) return false;
  if (!local_location.empty() && c.local_location.rfind(local_location, 0) != 0) return false;
  if (!remote_location.empty() && c.remote_location.rfind(remote_location, 0) != 0) return false;
  if (!segment_type.empty() && segment_type != c.segment_type) return false;
  return true;
}

Status TransportSelector::configure(const Config& config, std::vector<Transport*> transports) {
  transports_ = std::move(transports);
  max_failover_ = static_cast<int>(config.get<int64_t>("selector/max_failover_attempts", 2));
  if (max_failover_ < 0) return Status::InvalidArgument("selector/max_failover_attempts must be >= 0");
  rules_.clear();
  json list = json::parse(config.get("selector/policies", "[]"), nullptr, false);
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
    for (auto& name : rule.transports) {
      bool known = name == "local" || name == "shm" || name == "tcp" || name == "rdma" ||
                   name == "file" || name == "nvlink";
      if (!known) return bad("unknown transport \"" + name + "\"");
    }
    rules_.push_back(std::move(rule));
  }
  return Status::OK();
}

std::vector<Transport*> TransportSelector::order(const std::vector<std::string>* names,
                                                 const PeerEndpoint& peer) const {
  std::vector<Transport*> out;
  if (!names) {
    for (Transport* t : transports_)
      if (t->canReach(peer)) out.push_back(t);
    return out;
  }
  for (const auto& n : *names)
    for (Transport* t : transports_)
      if (n == t->name() && t->canReach(peer)) out.push_back(t);
  return out;
}

std::vector<Transport*> TransportSelector::candidates(const PeerEndpoint& peer,
                                                      const SelectionCase& c) const {
  for (const Rule& r : rules_)
    if (r.matches(c)) return ruleOrder(r, peer);
  return order(nullptr, peer);
}

Status TransportSelector::pinned(const std::string& name, const PeerEndpoint& peer,
                                 Transport*& out) const {
  for (Transport* t : transports_) {
    if (name != t->name()) continue;
    if (!t->canReach(peer))
      return Status::NotSupported("transport_hint '" + name + "' cannot reach segment '" +
                                  peer.segment_name + "'");
    out = t;
    return Status::OK();
  }
  return Status::NotSupported("transport_hint '" + name + "' is not enabled in this engine");
}

}  // namespace ferry
