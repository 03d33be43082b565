#include "common/options.h"

#include <cstdio>

namespace ferry {

std::string jsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void OptionTable::add(OptionDecl d) {
  if (!prefix_.empty()) d.key = prefix_ + "/" + d.key;
  decls_.push_back(std::move(d));
}

void OptionTable::flag(std::string_view key, bool def, std::string_view help) {
  add({std::string(key), OptionType::kBool, def ? "true" : "false", std::string(help)});
}

void OptionTable::integer(std::string_view key, int64_t def, int64_t min, int64_t max,
                          std::string_view help) {
  add({std::string(key), OptionType::kInt, std::to_string(def), std::string(help), min, max});
}

void OptionTable::text(std::string_view key, std::string_view def, std::string_view help) {
  add({std::string(key), OptionType::kString, jsonQuote(def), std::string(help)});
}

void OptionTable::secret(std::string_view key, std::string_view help) {
  OptionDecl d{std::string(key), OptionType::kString, "\"\"", std::string(help)};
  d.secret = true;
  add(std::move(d));
}

void OptionTable::json(std::string_view key, std::string_view def_json, std::string_view help) {
  add({std::string(key), OptionType::kJson, std::string(def_json), std::string(help)});
}

void OptionTable::append(const OptionTable& other) {
  for (const auto& d : other.all()) add(d);
}

const OptionDecl* OptionTable::find(std::string_view key) const {
  for (const auto& d : decls_)
    if (d.key == key) return &d;
  return nullptr;
}

}  // namespace ferry
