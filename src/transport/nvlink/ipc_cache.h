// Peers' GPU allocations opened in this process (legacy CUDA IPC), shared by every engine and
// endpoint of the process. The driver maps one exported allocation at most once per process
// (a second cuIpcOpenMemHandle gives CUDA_ERROR_ALREADY_MAPPED), so the cache is
// process-wide, like UCX's cuda_ipc remote cache. An entry is keyed by the exporting
// instance and the allocation's base there, and holds the allocation's buffer id: a different
// id at the same base is a new allocation (the old one was freed and the address reused),
// opened afresh. Entries are weak: a mapping is closed when the last endpoint or in-flight
// copy that uses it lets go (a peer restart or an unregistered buffer drops them).
//
// The mapping's size is what the driver says of the mapped range here, never the peer's
// claim: bounds are checked against it.
//
// A mapping nobody holds any more is closed by the thread that let go of it, outside the
// lock; until that close is done the driver still has the allocation mapped and would refuse
// to map it again (ALREADY_MAPPED). An entry therefore counts its mappings not yet closed,
// and an open finding only such a one waits for its close instead of being refused.
//
// Lock: mu_ is a leaf; a driver call (open) runs under it so that two threads cannot race
// to open one allocation; closing runs outside it (in a mapping's destructor), which then
// takes it to say the close is done.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/cuda_driver.h"

namespace ferry::nvlink {

/// One peer allocation mapped here; closed (in its device's context) when destroyed.
class IpcMapping {
 public:
  using Key = std::pair<std::string, uint64_t>;  // exporting instance, allocation base there

  IpcMapping(std::shared_ptr<const cuda::DriverApi> api, int ordinal, cuda::Context ctx, uint64_t base, uint64_t size,
             Key key)
      : api_(std::move(api)), ordinal_(ordinal), ctx_(ctx), base_(base), size_(size), key_(std::move(key)) {}
  ~IpcMapping();
  IpcMapping(const IpcMapping&) = delete;
  IpcMapping& operator=(const IpcMapping&) = delete;

  uint64_t base() const { return base_; }
  uint64_t size() const { return size_; }
  int ordinal() const { return ordinal_; }

 private:
  const std::shared_ptr<const cuda::DriverApi> api_;
  const int ordinal_;
  const cuda::Context ctx_;  // retained by the mapping: its engine may be gone first
  const uint64_t base_, size_;
  const Key key_;
};

class IpcCache {
 public:
  static IpcCache& instance();

  /// The allocation `handle` exports (`buffer_id` at `alloc_base` in instance `exporter`),
  /// mapped in device `ordinal`'s primary context: shared when already open here.
  Status open(const std::shared_ptr<const cuda::DriverApi>& api, int ordinal, const std::string& exporter,
              uint64_t alloc_base, uint64_t buffer_id, const cuda::IpcHandle& handle,
              std::shared_ptr<const IpcMapping>& out);
  /// Mappings open now (introspection, tests).
  size_t openCount();

 private:
  friend class IpcMapping;
  /// A mapping of `key` was closed (its destructor, after the driver call).
  void closed(const IpcMapping::Key& key);

  struct Entry {
    uint64_t buffer_id = 0;
    std::weak_ptr<const IpcMapping> mapping;
    uint32_t unclosed = 0;  // mappings made for this key and not closed yet (held or closing)
  };
  std::mutex mu_;
  std::condition_variable closed_cv_;  // a mapping's close is done
  std::map<IpcMapping::Key, Entry> entries_;
};

}  // namespace ferry::nvlink
