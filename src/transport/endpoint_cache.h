// One endpoint per peer instance, shared by everyone who connects to it (a memory segment
// and its file segments, two names of one peer), without keeping any alive: entries are
// weak, so an endpoint dies with the last segment entry or route that holds it, and dead
// entries are pruned as new ones are made. This is what keeps a transport's per-peer
// state from growing when peers restart.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ferry {

template <typename E>
class EndpointCache {
 public:
  /// The live endpoint for `key`, or a new one from `make()`.
  template <typename Make>
  std::shared_ptr<E> get(const std::string& key, Make&& make) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end())
      if (auto e = it->second.lock()) return e;
    for (auto i = map_.begin(); i != map_.end();)
      i = i->second.expired() ? map_.erase(i) : std::next(i);
    std::shared_ptr<E> e = make();
    map_[key] = e;
    return e;
  }
  /// The endpoints alive now.
  std::vector<std::shared_ptr<E>> live() const {
    std::vector<std::shared_ptr<E>> out;
    std::lock_guard lock(mu_);
    for (auto& [key, weak] : map_)
      if (auto e = weak.lock()) out.push_back(std::move(e));
    return out;
  }
  size_t liveCount() const { return live().size(); }

 private:
  // A leaf lock. make() runs under it, so making an endpoint must be cheap (no I/O); none
  // is ever destroyed under it (only weak entries are erased).
  mutable std::mutex mu_;
  std::map<std::string, std::weak_ptr<E>> map_;
};

}  // namespace ferry
