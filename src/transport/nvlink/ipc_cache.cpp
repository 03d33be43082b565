#include "transport/nvlink/ipc_cache.h"

#include <chrono>

#include "common/log.h"

namespace ferry::nvlink {

IpcMapping::~IpcMapping() {
  int r = api_->ctx_push(ctx_);
  if (r == 0) {
    r = api_->ipc_close(base_);
    api_->ctx_pop();
  }
  if (r != 0) FERRY_LOG(WARN) << "nvlink: closing a peer's GPU memory: " << cuda::fromResult(*api_, r, "cuIpcCloseMemHandle").ToString();
  api_->primary_ctx_release(ordinal_);
  IpcCache::instance().closed(key_);
}

void IpcCache::closed(const IpcMapping::Key& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.unclosed > 0) --it->second.unclosed;
  closed_cv_.notify_all();
}

IpcCache& IpcCache::instance() {
  static IpcCache* cache = new IpcCache;  // mappings may be dropped during static teardown
  return *cache;
}

Status IpcCache::open(const std::shared_ptr<const cuda::DriverApi>& api, int ordinal, const std::string& exporter,
                      uint64_t alloc_base, uint64_t buffer_id, const cuda::IpcHandle& handle,
                      std::shared_ptr<const IpcMapping>& out) {
  // Mappings let go here are let go after the lock (declared before it): the last holder's
  // close takes the lock. `previous` is what `out` held; `live` may turn out to be the last
  // holder of a mapping another thread lets go meanwhile.
  const std::shared_ptr<const IpcMapping> previous = std::move(out);
  std::shared_ptr<const IpcMapping> live;
  const IpcMapping::Key key{exporter, alloc_base};
  std::unique_lock lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();)  // prune what is closed and held by nobody
    it = it->second.mapping.expired() && it->second.unclosed == 0 ? entries_.erase(it) : std::next(it);
  // A mapping of this allocation let go a moment ago is still being closed: wait for that
  // (a close is one driver call), or the driver would refuse to map it again.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  closed_cv_.wait_until(lock, give_up, [&] {
    auto it = entries_.find(key);
    return it == entries_.end() || it->second.unclosed == 0 || !it->second.mapping.expired();
  });
  Entry& e = entries_[key];  // after the wait: another open may have pruned or replaced it
  live = e.mapping.lock();
  if (live && e.buffer_id == buffer_id) {
    if (live->ordinal() == ordinal) {
      out = std::move(live);
      return Status::OK();
    }
    return Status::NotSupported("nvlink: that GPU allocation of " + exporter + " is already mapped here for cuda:" +
                                std::to_string(live->ordinal()));
  }
  // Absent, or a new allocation where an old one was: map it (the old mapping, if anyone
  // still holds it, stays theirs until they let go).
  cuda::Context ctx = nullptr;
  FERRY_RETURN_IF_ERROR(cuda::fromResult(*api, api->primary_ctx_retain(ordinal, &ctx), "cuDevicePrimaryCtxRetain"));
  uint64_t mapped = 0;
  int r = api->ctx_push(ctx);
  if (r == 0) {
    r = api->ipc_open(handle, &mapped);
    api->ctx_pop();
  }
  cuda::PointerInfo info;
  if (r == 0 && (api->pointer_info(mapped, &info) != 0 || !info.device || info.range_start != mapped)) {
    api->ctx_push(ctx);
    api->ipc_close(mapped);
    api->ctx_pop();
    r = -1;
  }
  if (r != 0) {
    api->primary_ctx_release(ordinal);
    if (r == -1) return Status::InternalError("nvlink: the driver does not describe a GPU allocation it just mapped");
    Status st = cuda::fromResult(*api, r, "cuIpcOpenMemHandle");
    // Mapped here outside Ferry (or a handle from this very process): another transport serves.
    return r == cuda::kAlreadyMapped ? Status::NotSupported(st.message()) : st;
  }
  auto m = std::make_shared<const IpcMapping>(api, ordinal, ctx, mapped, info.range_size, key);
  e.buffer_id = buffer_id;
  e.mapping = m;
  ++e.unclosed;
  out = std::move(m);
  return Status::OK();
}

size_t IpcCache::openCount() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [key, e] : entries_) n += !e.mapping.expired();
  return n;
}

}  // namespace ferry::nvlink
