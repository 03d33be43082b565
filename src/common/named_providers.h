// Named factories of a hardware function table (verbs, the CUDA driver): the seam's built-in
// provider ("system", the library loaded at run time) is handled by its owner; tests register
// emulations under other names and select them by configuration.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ferry/status.h"

namespace ferry {

template <typename Api>
class NamedProviders {
 public:
  using Factory = std::function<Status(std::shared_ptr<const Api>& out)>;

  /// Registers `factory` as `name` (replacing one of that name); an empty one removes it.
  void set(const std::string& name, Factory factory) {
    std::lock_guard lock(mu_);
    if (factory)
      by_name_[name] = std::move(factory);
    else
      by_name_.erase(name);
  }
  /// The table `name` makes; NotFound naming `what` when there is no such provider.
  Status make(const std::string& name, const char* what, std::shared_ptr<const Api>& out) {
    Factory factory;
    {
      std::lock_guard lock(mu_);
      auto it = by_name_.find(name);
      if (it == by_name_.end()) return Status::NotFound(std::string("no ") + what + " provider called '" + name + "'");
      factory = it->second;
    }
    return factory(out);  // unlocked: a factory may take its own locks
  }

 private:
  std::mutex mu_;  // a leaf
  std::map<std::string, Factory> by_name_;
};

}  // namespace ferry
