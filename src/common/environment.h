// Every environment variable Ferry reads, in one table: what it maps onto and how.
// Config::loadFromEnv applies the ones that map onto configuration keys; the few read
// elsewhere (log level, topology file, legacy port binding) go through env::value() with a
// name from this table, so `ferry-info --options` and the README list them all. Nothing
// else in Ferry calls getenv (scripts/check-layers.sh enforces it).
#pragma once

#include <string_view>
#include <vector>

namespace ferry::env {

enum class Mapping {
  kConfigSource,  // a config file path or inline JSON, merged first
  kString,        // the value as a string key
  kSecondsToMs,   // seconds (> 0, fractions allowed) -> an integer key in milliseconds
  kPositiveInt,   // an integer > 0
  kInteger,       // any integer (the key's declared bounds apply)
  kBool,          // 1/true/yes/on -> true, anything else false
  kPatchIfTrue,   // when truthy, `key` holds a JSON patch merged into the config
  kReadDirectly,  // not a config key: read where `key` says
};

struct Variable {
  const char* name;
  Mapping mapping;
  const char* key;   // config key (or patch, or the reader) it maps onto
  const char* help;
};

/// All of them, in the order Config::loadFromEnv applies them.
const std::vector<Variable>& variables();
/// The value of a variable in the table; null when unset or empty. Aborts on a name that is
/// not in the table (a programming error, caught by the tests).
const char* value(std::string_view name);
/// 1/true/yes/on, any case.
bool truthy(std::string_view value);

}  // namespace ferry::env
