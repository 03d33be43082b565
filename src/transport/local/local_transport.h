// The engine's own segment: a request whose target is this engine is a memcpy.
#pragma once

#include "transport/transport.h"

namespace ferry {

class LocalTransport : public Transport {
 public:
  const char* name() const override { return "local"; }
  TransportCaps caps() const override { return {true, false, false}; }
  Status start(TransportContext&) override { return Status::OK(); }
  void stop() override {}
  bool canReach(const PeerEndpoint& peer) const override { return peer.is_self && !peer.file; }
  uint64_t sliceSize() const override { return 1ull << 30; }
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
};

}  // namespace ferry
