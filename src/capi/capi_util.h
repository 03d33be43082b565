// Helpers shared by the C API's files (src/capi): the status/last-error convention, pointer
// checks, the one-block results, and the C <-> C++ value conversions.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "ferry/ferry.h"
#include "ferry/status.h"
#include "ferry/transfer_engine.h"
#include "ferry/types.h"

struct ferry_config {
  ferry::Config config;
};

struct ferry_engine {
  explicit ferry_engine(std::shared_ptr<ferry::Config> config) : engine(std::move(config)) {}
  explicit ferry_engine(const std::string& path_or_json) : engine(path_or_json) {}
  ferry::TransferEngine engine;
};

namespace ferry::capi {

using ferry::Status;

/// The message of this thread's last failed call (ferry_last_error).
extern thread_local std::string t_last_error;

inline int fail(const Status& status, const char* call) {
  t_last_error = std::string(call) + ": " + status.ToString();
  // A caller's mistake or a bug is worth a line; the other codes are answers (a timeout, a
  // busy batch, an absent key) the caller handles.
  if (status.code() == Status::Code::kInvalidArgument || status.code() == Status::Code::kInternalError) {
    FERRY_LOG(WARN) << "C API " << t_last_error;
  } else {
    FERRY_LOG(DEBUG) << "C API " << t_last_error;
  }
  return -static_cast<int>(status.code());
}

// Runs one call's body (returning a Status) with every exception turned into a code.
template <typename Body>
int guarded(const char* call, Body&& body) noexcept {
  try {
    Status status = body();
    return status.ok() ? FERRY_OK : fail(status, call);
  } catch (const std::bad_alloc&) {
    return fail(Status::InternalError("out of memory"), call);
  } catch (const std::exception& e) {
    return fail(Status::InternalError(e.what()), call);
  } catch (...) {
    return fail(Status::InternalError("unknown exception"), call);
  }
}

inline Status need(const void* pointer, const char* what) {
  return pointer ? Status::OK() : Status::InvalidArgument(std::string(what) + " is NULL");
}

// Lays out what a call hands back in one malloc'd block: run `fill` once with a null base to
// size it, then again to write it. ferry_free() releases the whole block.
class Packer {
 public:
  explicit Packer(char* base) : base_(base) {}
  template <typename T>
  T* take(size_t count) {
    used_ = (used_ + alignof(T) - 1) / alignof(T) * alignof(T);
    T* at = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += count * sizeof(T);
    return at;
  }
  const char* text(std::string_view s) {
    char* at = take<char>(s.size() + 1);
    if (at) {
      if (!s.empty()) std::memcpy(at, s.data(), s.size());
      at[s.size()] = '\0';
    }
    return at;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

template <typename Fill>
void* pack(Fill&& fill) {
  Packer sizer(nullptr);
  fill(sizer);
  char* block = static_cast<char*>(std::malloc(sizer.used() ? sizer.used() : 1));
  if (!block) throw std::bad_alloc();
  Packer writer(block);
  fill(writer);
  return block;
}

inline char* copyText(std::string_view s) {
  return static_cast<char*>(pack([&](Packer& p) { p.text(s); }));
}

// Hands a string back through `out` when the call succeeded.
template <typename Get>
int textOut(const char* call, char** out, Get&& get) noexcept {
  return guarded(call, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    *out = nullptr;
    std::string text;
    FERRY_RETURN_IF_ERROR(get(text));
    *out = copyText(text);
    return Status::OK();
  });
}

inline Status toPermission(int c_permission, ferry::Permission& out) {
  switch (c_permission) {
    case FERRY_PERM_GLOBAL_READ_WRITE: out = ferry::kGlobalReadWrite; return Status::OK();
    case FERRY_PERM_GLOBAL_READ_ONLY: out = ferry::kGlobalReadOnly; return Status::OK();
    case FERRY_PERM_LOCAL_READ_WRITE: out = ferry::kLocalReadWrite; return Status::OK();
    default: return Status::InvalidArgument("permission " + std::to_string(c_permission) + " is not a FERRY_PERM_*");
  }
}

inline Status toOpcode(int c_opcode, ferry::Request::OpCode& out) {
  if (c_opcode != FERRY_READ && c_opcode != FERRY_WRITE) {
    return Status::InvalidArgument("opcode " + std::to_string(c_opcode) + " is neither FERRY_READ nor FERRY_WRITE");
  }
  out = c_opcode == FERRY_READ ? ferry::Request::READ : ferry::Request::WRITE;
  return Status::OK();
}

// The per-call fields ferry_request and ferry_paged_request share with their C++ forms.
template <typename CRequest, typename NativeRequest>
void copyCallFields(const CRequest& c, NativeRequest& r) {
  r.transport_hint = c.transport_hint;
  r.priority = c.priority;
  r.deadline_ns = c.deadline_ns;
  r.checksum = c.checksum != 0;
}

inline Status toRequests(const ferry_request* requests, size_t count, std::vector<ferry::Request>& out) {
  if (count > 0) FERRY_RETURN_IF_ERROR(need(requests, "requests"));
  out.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const ferry_request& c = requests[i];
    ferry::Request& r = out[i];
    FERRY_RETURN_IF_ERROR(toOpcode(c.opcode, r.opcode));
    r.source = c.source;
    r.target_id = c.target_id;
    r.target_offset = c.target_offset;
    r.length = c.length;
    copyCallFields(c, r);
  }
  return Status::OK();
}

inline Status toMemoryOptions(const ferry_memory_options* c, ferry::MemoryOptions& out) {
  FERRY_RETURN_IF_ERROR(need(c, "options"));
  out.location = c->location ? c->location : ferry::kWildcardLocation;
  FERRY_RETURN_IF_ERROR(toPermission(c->permission, out.perm));
  if (c->transport < FERRY_TRANSPORT_UNSPEC || c->transport > FERRY_TRANSPORT_ASCEND_DIRECT) {
    return Status::InvalidArgument("transport " + std::to_string(c->transport) + " is not a FERRY_TRANSPORT_*");
  }
  out.type = c->transport == FERRY_TRANSPORT_UNSPEC ? ferry::UNSPEC
                                                    : static_cast<ferry::TransportType>(c->transport - 1);
  out.shm_path = c->shm_path ? c->shm_path : "";
  out.shm_offset = c->shm_offset;
  out.internal = c->internal != 0;
  return Status::OK();
}

inline void fromStatus(const ferry::TransferStatus& s, ferry_transfer_status* out) {
  out->state = static_cast<int>(s.s);
  out->transferred_bytes = s.transferred_bytes;
}

// The body of a call on an engine: the engine checked, its C++ object passed on.
template <typename Body>
int onEngine(const char* call, ferry_engine* engine, Body&& body) noexcept {
  return guarded(call, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(engine, "engine"));
    return body(engine->engine);
  });
}

// A string an engine call produces, handed back through `out`.
template <typename Get>
int engineTextOut(const char* call, ferry_engine* engine, char** out, Get&& get) noexcept {
  return textOut(call, out, [&](std::string& text) -> Status {
    FERRY_RETURN_IF_ERROR(need(engine, "engine"));
    return get(engine->engine, text);
  });
}

// A value an engine answers, handed back through `out`.
template <typename T, typename Get>
int engineValueOut(const char* call, ferry_engine* engine, T* out, Get&& get) noexcept {
  return onEngine(call, engine, [&](ferry::TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    *out = static_cast<T>(get(e));
    return Status::OK();
  });
}

}  // namespace ferry::capi
