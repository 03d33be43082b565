// A small command-line flag parser for the tools: --name=value, --name value, --flag,
// --flag=false. Unknown flags are an error, so a typo never runs a silent default.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ferry::tools {

class Flags {
 public:
  /// Declares a flag with its default and help text.
  void define(const std::string& name, const std::string& def, const std::string& help,
              bool is_bool = false);
  /// Parses argv; on error fills `error` and returns false.
  bool parse(int argc, char** argv, std::string& error);

  /// Overrides a declared flag's value (a sweep's point), as if given on the command line.
  void set(const std::string& name, const std::string& value) {
    flags_.at(name).value = value;
    set_[name] = true;
  }
  std::string str(const std::string& name) const;
  int64_t i64(const std::string& name) const;
  double f64(const std::string& name) const;
  bool boolean(const std::string& name) const;
  bool isSet(const std::string& name) const { return set_.count(name) > 0; }
  std::string usage(const std::string& program) const;
  /// The given flags back as arguments (to start a child with the same settings).
  std::vector<std::string> forward(const std::vector<std::string>& names) const;

 private:
  struct Flag {
    std::string value, def, help;
    bool is_bool;
  };
  std::map<std::string, Flag> flags_;
  std::map<std::string, bool> set_;
};

/// "4K", "1M", "1GiB", "65536" -> bytes; -1 when malformed.
int64_t parseSize(const std::string& s);

}  // namespace ferry::tools
