#include "transport/nvlink/ipc_cache.h"

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
}

IpcCache& IpcCache::instance() {
  static IpcCache* cache = new IpcCache;  // mappings may be dropped during static teardown
  return *cache;
}

Status IpcCache::open(const std::shared_ptr<const cuda::DriverApi>& api, int ordinal, const std::string& exporter,
                      uint64_t alloc_base, uint64_t buffer_id, const cuda::IpcHandle& handle,
                      std::shared_ptr<const IpcMapping>& out) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();)  // prune what nobody holds
    it = it->second.mapping.expired() ? entries_.erase(it) : std::next(it);
  Entry& e = entries_[{exporter, alloc_base}];
  if (auto live = e.mapping.lock(); live && e.buffer_id == buffer_id) {
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
  auto m = std::make_shared<const IpcMapping>(api, ordinal, ctx, mapped, info.range_size);
  e.buffer_id = buffer_id;
  e.mapping = m;
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
