#include "transport/local/local_transport.h"

#include <cstring>

#include "transport/checked_copy.h"

namespace ferry {

namespace {
class LocalEndpoint : public Endpoint {
 public:
  Status submit(const PeerEndpoint&, Slice* const* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      if (Status admit = admitSlice(*s); !admit.ok()) {
        completeSlice(s, admit);
        continue;
      }
      auto* remote = reinterpret_cast<uint8_t*>(s->remote);
      uint8_t* dst = s->op == Request::WRITE ? remote : s->local;
      const uint8_t* src = s->op == Request::WRITE ? s->local : remote;
      Status st;
      if (s->local_kind == kCudaMemory || s->remote_kind == kCudaMemory)
        st = gpu->copy(dst, src, s->length);
      else
        // Source and target may overlap in one buffer: memmove, and the source hashed first.
        st = checkedCopy(*s, dst, src, [](uint8_t* d, const uint8_t* from, uint64_t n) { std::memmove(d, from, n); });
      completeSlice(s, st);
    }
    return Status::OK();
  }
  cuda::Gpu* gpu = nullptr;  // set by start(), before any submit
};
}  // namespace

LocalTransport::LocalTransport() : self_(std::make_shared<LocalEndpoint>()) {}

Status LocalTransport::start(TransportContext& ctx) {
  static_cast<LocalEndpoint&>(*self_).gpu = &ctx.gpu();
  return Status::OK();
}

TransportCaps LocalTransport::caps() const {
  // GPU memory only exists here when the driver is usable, which copy() relies on.
  return {.local_kinds = kHostMemory | kCudaMemory,
          .remote_kinds = kHostMemory | kCudaMemory,
          .reaches_self = true,
          .checksum_kinds = kHostMemory,
          .latency_us = 0.1,
          .bandwidth_GBps = 20};
}

}  // namespace ferry
