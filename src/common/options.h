// Option declarations: every configuration key Ferry reads is declared once, by the
// component that reads it, with its type, default, bounds and help. Config's defaults,
// start-up validation (Config::validate), `ferry-info --config` and the README's
// configuration table all come from these declarations (core/option_catalog.h collects
// them), so a default is written in exactly one place.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

enum class OptionType { kBool, kInt, kString, kJson };

struct OptionDecl {
  std::string key;           // '/'-separated, e.g. "transports/tcp/slice_size"
  OptionType type = OptionType::kString;
  std::string default_json;  // the default as JSON text: "30000", "\"p2p\"", "[]"
  std::string help;          // one line for the README table and ferry-info
  int64_t min = std::numeric_limits<int64_t>::min();  // kInt bounds, inclusive
  int64_t max = std::numeric_limits<int64_t>::max();
  bool secret = false;  // printed as "<redacted>" (Config::dump)
};

/// Declarations of one or more components, in declaration order.
class OptionTable {
 public:
  /// Scopes later declarations under `prefix` ("transports/tcp"); "" for the root.
  explicit OptionTable(std::string prefix = "") : prefix_(std::move(prefix)) {}

  void flag(std::string_view key, bool def, std::string_view help);
  void integer(std::string_view key, int64_t def, int64_t min, int64_t max, std::string_view help);
  void text(std::string_view key, std::string_view def, std::string_view help);
  /// A string that must never be printed (a token, a password); default "".
  void secret(std::string_view key, std::string_view help);
  /// A JSON value (list or object) with `def_json` as its default.
  void json(std::string_view key, std::string_view def_json, std::string_view help);

  /// Appends another table's declarations, under this table's prefix.
  void append(const OptionTable& other);

  const std::vector<OptionDecl>& all() const { return decls_; }
  /// The declaration of `key` (full key), or null.
  const OptionDecl* find(std::string_view key) const;

 private:
  void add(OptionDecl d);

  std::string prefix_;
  std::vector<OptionDecl> decls_;
};

/// The JSON text of a string (quoted and escaped).
std::string jsonQuote(std::string_view s);

}  // namespace ferry
