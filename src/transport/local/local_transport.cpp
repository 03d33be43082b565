#include "transport/local/local_transport.h"

#include <cstring>

namespace ferry {

namespace {
class LocalEndpoint : public Endpoint {
 public:
  Status submit(const PeerEndpoint&, Slice* const* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      auto* remote = reinterpret_cast<uint8_t*>(s->remote);
      // memmove: source and target may be overlapping parts of one buffer.
      if (s->op == Request::WRITE)
        std::memmove(remote, s->local, s->length);
      else
        std::memmove(s->local, remote, s->length);
      completeSlice(s, Status::OK());
    }
    return Status::OK();
  }
};
}  // namespace

LocalTransport::LocalTransport() : self_(std::make_shared<LocalEndpoint>()) {}

TransportCaps LocalTransport::caps() const {
  return {.reaches_self = true, .latency_us = 0.1, .bandwidth_GBps = 20};
}

}  // namespace ferry
