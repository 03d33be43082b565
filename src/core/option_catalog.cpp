#include "core/option_catalog.h"

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/environment.h"
#include "core/engine_options.h"
#include "core/file_segments.h"
#include "core/selector.h"
#include "metadata/metadata_store.h"
#include "transport/registry.h"

namespace ferry {

using json = nlohmann::json;

const OptionTable& optionCatalog() {
  static const OptionTable catalog = [] {
    OptionTable t;
    declareEngineOptions(t);
    TransportSelector::declareOptions(t);
    FileSegments::declareOptions(t);
    declareMetadataOptions(t);
    declareTransportOptions(t);
    return t;
  }();
  return catalog;
}

std::string catalogDefaultsJson(int indent) {
  json tree = json::object();
  for (const auto& d : optionCatalog().all())
    tree[json::json_pointer("/" + d.key)] = json::parse(d.default_json);
  return tree.dump(indent);
}

namespace {
std::string typeName(const OptionDecl& d) {
  switch (d.type) {
    case OptionType::kBool: return "bool";
    case OptionType::kInt: return "int";
    case OptionType::kString: return "string";
    case OptionType::kJson: return "JSON";
  }
  return "?";
}

// "transports/shm/enable" -> "transports/<name>/enable" when every transport declares it
// alike, so the table has one row for it.
std::string sharedTransportKey(const std::string& key) {
  const std::string prefix = "transports/";
  if (key.rfind(prefix, 0) != 0) return "";
  size_t slash = key.find('/', prefix.size());
  if (slash == std::string::npos) return "";
  std::string rest = key.substr(slash + 1);
  return rest == "enable" || rest.rfind("fault/", 0) == 0 ? prefix + "<name>/" + rest : "";
}

std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string envFor(const std::string& key) {
  std::string out;
  for (const auto& v : env::variables())
    if (v.mapping != env::Mapping::kReadDirectly && v.mapping != env::Mapping::kPatchIfTrue && key == v.key)
      out += std::string(out.empty() ? "" : ", ") + "`" + v.name + "`";
  return out;
}
}  // namespace

std::string optionsMarkdown() {
  std::ostringstream os;
  os << "| key | type | default | meaning | env |\n|---|---|---|---|---|\n";
  std::map<std::string, bool> shared_done;
  for (const auto& d : optionCatalog().all()) {
    std::string key = d.key;
    if (std::string shared = sharedTransportKey(d.key); !shared.empty()) {
      if (shared_done[shared]) continue;
      shared_done[shared] = true;
      key = shared;
    }
    std::string range;
    if (d.type == OptionType::kInt && (d.min != INT64_MIN || d.max != INT64_MAX))
      range = " (" + std::to_string(d.min) + ".." + (d.max == INT64_MAX ? std::string("") : std::to_string(d.max)) + ")";
    os << "| `" << key << "` | " << typeName(d) << range << " | `" << cell(d.default_json) << "` | "
       << cell(d.help) << " | " << envFor(d.key) << " |\n";
  }
  os << "\n| environment variable | maps onto | notes |\n|---|---|---|\n";
  for (const auto& v : env::variables()) {
    std::string target;
    switch (v.mapping) {
      case env::Mapping::kConfigSource: target = "the whole config"; break;
      case env::Mapping::kPatchIfTrue: target = "`" + std::string(v.key) + "`"; break;
      case env::Mapping::kReadDirectly: target = std::string("read by ") + v.key; break;
      case env::Mapping::kSecondsToMs: target = "`" + std::string(v.key) + "` (seconds → ms)"; break;
      default: target = "`" + std::string(v.key) + "`";
    }
    os << "| `" << v.name << "` | " << cell(target) << " | " << cell(v.help) << " |\n";
  }
  return os.str();
}

}  // namespace ferry
