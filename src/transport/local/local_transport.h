// The engine's own segment: a request whose target is this engine is a memcpy, or a copy by
// the CUDA driver when either end is GPU memory (synchronous: the slice completes when the
// bytes are there).
#pragma once

#include <memory>

#include "common/options.h"
#include "transport/transport.h"

namespace ferry {

class LocalTransport : public Transport {
 public:
  LocalTransport();
  static void declareOptions(OptionTable&) {}

  const char* name() const override { return "local"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override {}
  bool canReach(const PeerEndpoint& peer) const override { return peer.is_self && !peer.file; }
  uint64_t sliceSize() const override { return 1ull << 30; }
  Status connect(const PeerEndpoint&, std::shared_ptr<Endpoint>& out) override {
    out = self_;  // no per-peer state: there is one peer, us
    return Status::OK();
  }

 private:
  std::shared_ptr<Endpoint> self_;
};

}  // namespace ferry
