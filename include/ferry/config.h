// Config: the engine's settings as one JSON tree addressed by '/'-separated keys
// ("rpc/port", "transports/tcp/slice_size"). Built in code, from a JSON file, from inline
// JSON, or from the environment (FERRY_CONF / MC_TENT_CONF, plus the MC_* variables).
// Every key Ferry reads is declared once, with its type, default and bounds, by the part
// that reads it; `ferry-info --config` prints them and an engine checks its config against
// them (validate()) before it starts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/status.h"

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {

class Config {
 public:
  /// A config holding Ferry's defaults (see defaultsJson()).
  Config();
  ~Config();
  Config(const Config&);
  Config& operator=(const Config&);

  /// Merges a JSON file, or inline JSON when the argument starts with '{'.
  Status load(std::string_view path_or_json);
  /// Merges FERRY_CONF (or MC_TENT_CONF) and maps the MC_* variables onto keys.
  Status loadFromEnv();

  /// Typed lookup; returns `def` when the key is absent or has another type.
  template <typename T>
  T get(std::string_view key, T def) const;
  /// Typed lookup of a declared key: its value, else its declared default. (An engine
  /// validates its config first, so the value has the declared type.)
  template <typename T>
  T get(std::string_view key) const;
  std::string get(std::string_view key, const char* def) const {
    return get<std::string>(key, std::string(def));
  }
  /// True when the key exists.
  bool has(std::string_view key) const;

  /// Sets a key, creating intermediate objects.
  template <typename T>
  void set(std::string_view key, const T& value);
  void set(std::string_view key, const char* value) { set<std::string>(key, value); }

  /// Checks every declared key that is set (type, bounds): InvalidArgument naming the first
  /// bad one. Keys Ferry does not declare are reported in one log line, not refused.
  Status validate() const;

  /// The whole tree as JSON text; secrets (auth/token, Redis password) read "<redacted>".
  std::string dump(int indent = 2) const;
  /// Ferry's default settings as JSON text (what `ferry-info --config` prints).
  static std::string defaultsJson();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
#pragma GCC visibility pop
