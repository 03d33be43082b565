#include "flags.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace ferry::tools {

void Flags::define(const std::string& name, const std::string& def, const std::string& help,
                   bool is_bool) {
  flags_[name] = Flag{def, def, help, is_bool};
}

bool Flags::parse(int argc, char** argv, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      error = "unexpected argument '" + a + "'";
      return false;
    }
    a = a.substr(2);
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      error = "unknown flag --" + name;
      return false;
    }
    if (!has_value) {
      if (it->second.is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        error = "flag --" + name + " needs a value";
        return false;
      }
    }
    it->second.value = value;
    set_[name] = true;
  }
  return true;
}

std::string Flags::str(const std::string& name) const { return flags_.at(name).value; }

int64_t Flags::i64(const std::string& name) const { return parseSize(str(name)); }

double Flags::f64(const std::string& name) const { return std::strtod(str(name).c_str(), nullptr); }

bool Flags::boolean(const std::string& name) const {
  std::string v = str(name);
  return v == "true" || v == "1" || v == "yes";
}

std::string Flags::usage(const std::string& program) const {
  std::ostringstream os;
  os << "usage: " << program << " [flags]\n";
  for (auto& [name, f] : flags_)
    os << "  --" << name << (f.is_bool ? "" : "=VALUE") << "  " << f.help << " (default: '"
       << f.def << "')\n";
  return os.str();
}

std::vector<std::string> Flags::forward(const std::vector<std::string>& names) const {
  std::vector<std::string> out;
  for (auto& n : names) out.push_back("--" + n + "=" + str(n));
  return out;
}

int64_t parseSize(const std::string& s) {
  if (s.empty()) return -1;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return -1;
  std::string unit(end);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit == "I" || unit == "B") unit = "";
  if (unit.size() >= 2 && unit.substr(1) == "IB") unit = unit.substr(0, 1);
  if (unit.size() == 2 && unit[1] == 'B') unit = unit.substr(0, 1);
  double mult = 1;
  if (unit.empty()) mult = 1;
  else if (unit == "K") mult = 1024.0;
  else if (unit == "M") mult = 1024.0 * 1024;
  else if (unit == "G") mult = 1024.0 * 1024 * 1024;
  else return -1;
  return static_cast<int64_t>(v * mult);
}

}  // namespace ferry::tools
