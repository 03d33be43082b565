#include "transport/local/local_transport.h"

#include <cstring>

#include "transport/checked_copy.h"

namespace ferry {

namespace {
class LocalEndpoint : public Endpoint {
 public:
  Status submit(const PeerEndpoint&, Slice* const* slices, size_t count) override {
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; ++i) bytes += slices[i]->length;
    const bool large = bytes >= streaming_min_bytes;
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      if (Status admit = admitSlice(*s); !admit.ok()) {
        completeSlice(s, admit);
        continue;
      }
      Status st;
      const SliceRanges pieces(*s);
      for (size_t k = 0; k < pieces.size() && st.ok(); ++k) {
        const SliceRange& r = pieces[k];
        auto* remote = reinterpret_cast<uint8_t*>(r.remote);
        uint8_t* dst = s->op == Request::WRITE ? remote : r.local;
        const uint8_t* src = s->op == Request::WRITE ? r.local : remote;
        if (s->local_kind == kCudaMemory || s->remote_kind == kCudaMemory)
          st = gpu->copy(dst, src, r.length);
        else
          // Source and target may overlap in one buffer: memmove, and the source hashed first.
          st = checkedCopy(
              *s, dst, src, r.length, flipsIn(*s, k),
              [](uint8_t* d, const uint8_t* from, uint64_t n) { std::memmove(d, from, n); }, large);
      }
      if (large) streaming::fence();  // the bytes before the completion
      completeSlice(s, st);
    }
    return Status::OK();
  }
  cuda::Gpu* gpu = nullptr;  // set by start(), before any submit
  uint64_t streaming_min_bytes = UINT64_MAX;  // same_machine/streaming_copy_bytes
};
}  // namespace

LocalTransport::LocalTransport() : self_(std::make_shared<LocalEndpoint>()) {}

Status LocalTransport::start(TransportContext& ctx) {
  auto& self = static_cast<LocalEndpoint&>(*self_);
  self.gpu = &ctx.gpu();
  self.streaming_min_bytes = streamingMinBytes(ctx.config());
  return Status::OK();
}

TransportCaps LocalTransport::caps() const {
  // GPU memory only exists here when the driver is usable, which copy() relies on.
  return {.local_kinds = kHostMemory | kCudaMemory,
          .remote_kinds = kHostMemory | kCudaMemory,
          .reaches_self = true,
          .checksum_kinds = kHostMemory,
          .multi_range = true,
          .latency_us = 0.1,
          .bandwidth_GBps = 20};
}

}  // namespace ferry
