#include "ferry/config.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/environment.h"
#include "common/log.h"
#include "core/option_catalog.h"

namespace ferry {

using json = nlohmann::json;

struct Config::Impl {
  json tree;
};

namespace {

json::json_pointer pointerFor(std::string_view key) {
  std::string p = "/";
  p.append(key.data(), key.size());
  // Keys are '/'-separated; tolerate a leading slash.
  if (p.size() > 1 && p[1] == '/') p.erase(0, 1);
  return json::json_pointer(p);
}

const json* lookup(const json& tree, std::string_view key) {
  try {
    auto ptr = pointerFor(key);
    if (!tree.contains(ptr)) return nullptr;
    return &tree.at(ptr);
  } catch (const std::exception&) {
    return nullptr;
  }
}

const json& defaultTree() {
  static const json tree = json::parse(catalogDefaultsJson(-1));
  return tree;
}

bool parseInt(const std::string& s, int64_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// The value as the declared type, or why it is not one. Numbers given as strings are
// accepted (configs built from environment text), as Config::get does.
Status checkValue(const OptionDecl& d, const json& v) {
  auto bad = [&](const std::string& want) {
    return Status::InvalidArgument("config key '" + d.key + "' must be " + want + ", got " + v.dump());
  };
  switch (d.type) {
    case OptionType::kBool:
      if (v.is_boolean() || (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)))
        return Status::OK();
      if (v.is_string() && (v == "true" || v == "false" || v == "1" || v == "0")) return Status::OK();
      return bad("true or false");
    case OptionType::kInt: {
      int64_t n = 0;
      bool is_int = v.is_number_integer() || (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())));
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) is_int = false;
      if (is_int) n = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
      else if (v.is_string()) is_int = parseInt(v.get<std::string>(), n);
      std::string range = "an integer in [" + std::to_string(d.min) + ", " + std::to_string(d.max) + "]";
      if (!is_int || n < d.min || n > d.max) return bad(range);
      return Status::OK();
    }
    case OptionType::kString:
      return v.is_string() ? Status::OK() : bad("a string");
    case OptionType::kJson:
      return Status::OK();  // its reader checks the structure (with its own messages)
  }
  return Status::OK();
}

// Collects keys of `node` that no declaration covers (below a declared JSON key is its own).
void unknownKeys(const json& node, const std::string& path, std::vector<std::string>& out) {
  if (!path.empty() && optionCatalog().find(path)) return;
  if (!node.is_object()) {
    if (!path.empty()) out.push_back(path);
    return;
  }
  for (const auto& [k, v] : node.items()) unknownKeys(v, path.empty() ? k : path + "/" + k, out);
}

}  // namespace

Config::Config() : impl_(std::make_unique<Impl>()) { impl_->tree = defaultTree(); }
Config::~Config() = default;
Config::Config(const Config& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
Config& Config::operator=(const Config& o) {
  *impl_ = *o.impl_;
  return *this;
}

std::string Config::defaultsJson() { return catalogDefaultsJson(2); }

Status Config::load(std::string_view path_or_json) {
  std::string text;
  std::string_view trimmed = path_or_json;
  while (!trimmed.empty() && isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  if (!trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[')) {
    text = std::string(trimmed);
  } else {
    std::ifstream f{std::string(path_or_json)};
    if (!f) return Status::NotFound("cannot open config file '" + std::string(path_or_json) + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("config is not a JSON object: '" +
                                   std::string(path_or_json.substr(0, 80)) + "'");
  impl_->tree.merge_patch(j);
  return Status::OK();
}

Status Config::loadFromEnv() {
  using env::Mapping;
  bool source_loaded = false;
  for (const auto& var : env::variables()) {
    const char* v = env::value(var.name);
    if (!v) continue;
    auto bad = [&](const std::string& want) {
      return Status::InvalidArgument(std::string(var.name) + " must be " + want + ", got '" + v + "'");
    };
    switch (var.mapping) {
      case Mapping::kConfigSource:
        if (!source_loaded) FERRY_RETURN_IF_ERROR(load(v));  // the first one set wins
        source_loaded = true;
        break;
      case Mapping::kString:
        set(var.key, v);
        break;
      case Mapping::kSecondsToMs: {
        char* end = nullptr;
        double secs = std::strtod(v, &end);
        if (end == v || *end || secs <= 0) return bad("seconds > 0");
        set<int64_t>(var.key, static_cast<int64_t>(secs * 1000));
        break;
      }
      case Mapping::kPositiveInt: {
        int64_t n = 0;
        if (!parseInt(v, n) || n <= 0) return bad("an integer > 0");
        set<int64_t>(var.key, n);
        break;
      }
      case Mapping::kInteger: {
        int64_t n = 0;
        if (!parseInt(v, n)) return bad("an integer");
        set<int64_t>(var.key, n);
        break;
      }
      case Mapping::kBool:
        set<bool>(var.key, env::truthy(v));
        break;
      case Mapping::kPatchIfTrue:
        if (env::truthy(v)) impl_->tree.merge_patch(json::parse(var.key));
        break;
      case Mapping::kReadDirectly:
        break;
    }
  }
  return Status::OK();
}

Status Config::validate() const {
  for (const auto& d : optionCatalog().all())
    if (const json* v = lookup(impl_->tree, d.key)) FERRY_RETURN_IF_ERROR(checkValue(d, *v));
  std::vector<std::string> unknown;
  unknownKeys(impl_->tree, "", unknown);
  if (!unknown.empty()) {
    std::string list;
    for (const auto& k : unknown) list += (list.empty() ? "" : ", ") + k;
    FERRY_LOG(WARN) << "config keys Ferry does not know (ignored; see ferry-info --config): " << list;
  }
  return Status::OK();
}

bool Config::has(std::string_view key) const { return lookup(impl_->tree, key) != nullptr; }

template <typename T>
T Config::get(std::string_view key, T def) const {
  const json* j = lookup(impl_->tree, key);
  if (!j) return def;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (j->is_boolean()) return j->get<bool>();
      if (j->is_number_integer()) return j->get<int64_t>() != 0;
      if (j->is_string()) return j->get<std::string>() == "true" || j->get<std::string>() == "1";
      return def;
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (j->is_number()) return j->get<T>();
      if (j->is_string()) {
        std::string s = j->get<std::string>();
        return static_cast<T>(std::stod(s));
      }
      return def;
    } else {
      if (j->is_string()) return j->get<std::string>();
      return j->dump();
    }
  } catch (const std::exception&) {
    FERRY_LOG(WARN) << "config key '" << key << "' has an unusable value; using default";
    return def;
  }
}

template <typename T>
T Config::get(std::string_view key) const {
  const json* def = lookup(defaultTree(), key);
  if (!def) {
    FERRY_LOG(ERROR) << "config key '" << key << "' is read but not declared (a bug)";
    return T{};
  }
  T fallback{};
  if constexpr (std::is_same_v<T, std::string>)
    fallback = def->is_string() ? def->get<std::string>() : def->dump();
  else
    fallback = def->get<T>();
  return get<T>(key, fallback);
}

template <typename T>
void Config::set(std::string_view key, const T& value) {
  impl_->tree[pointerFor(key)] = value;
}

std::string Config::dump(int indent) const {
  json out = impl_->tree;
  for (const auto& d : optionCatalog().all()) {
    if (!d.secret) continue;
    auto ptr = pointerFor(d.key);
    if (out.contains(ptr) && out.at(ptr) != json("")) out[ptr] = "<redacted>";
  }
  return out.dump(indent);
}

#define FERRY_CONFIG_TYPE(T)                                   \
  template T Config::get<T>(std::string_view, T) const;        \
  template T Config::get<T>(std::string_view) const;           \
  template void Config::set<T>(std::string_view, const T&);
FERRY_CONFIG_TYPE(std::string)
FERRY_CONFIG_TYPE(bool)
FERRY_CONFIG_TYPE(int)
FERRY_CONFIG_TYPE(int64_t)
FERRY_CONFIG_TYPE(uint64_t)
FERRY_CONFIG_TYPE(double)
#undef FERRY_CONFIG_TYPE

}  // namespace ferry
