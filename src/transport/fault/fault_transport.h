// A transport that decorates another and injects failures, to prove failover (libfabric-style
// decorator: the wrapped transport does not know). Enabled per transport by config:
//   "transports": {"shm": {"fault": {"fail_submit_every": 3, "fail_slice_every": 2}}}
// fail_submit_every = N: every Nth submit call is refused (Unavailable), nothing taken.
// fail_slice_every = N: every Nth slice is accepted, then completed as failed (InternalError)
// without reaching the wrapped transport.
// flip_byte_every = N: every Nth slice is passed on marked Slice::flip_byte: the wrapped
// transport changes one of its bytes in flight (after the sender's checksum), to prove that
// checksums catch it and, with them off, that nothing else does.
#pragma once

#include <atomic>
#include <memory>

#include "common/options.h"
#include "transport/transport.h"

namespace ferry {

class FaultTransport : public Transport {
 public:
  /// Declares fault/fail_submit_every and fault/fail_slice_every (for every transport).
  static void declareOptions(OptionTable& table);
  struct Rates {  // every Nth; 0: never
    uint64_t fail_submit_every = 0, fail_slice_every = 0, flip_byte_every = 0;
  };
  FaultTransport(std::unique_ptr<Transport> inner, const Rates& rates);

  const char* name() const override { return inner_->name(); }
  TransportCaps caps() const override { return inner_->caps(); }
  Status start(TransportContext& ctx) override { return inner_->start(ctx); }
  void stop() override { inner_->stop(); }
  bool canReach(const PeerEndpoint& peer) const override { return inner_->canReach(peer); }
  std::string unusableFor(const PeerEndpoint& peer) const override { return inner_->unusableFor(peer); }
  uint64_t sliceSize() const override { return inner_->sliceSize(); }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  Status allocate(size_t size, const Location& location, std::unique_ptr<Allocation>& out) override {
    return inner_->allocate(size, location, out);
  }
  Status registerMemory(const BufferDesc& b, const MemoryOptions& o, std::string& attrs) override {
    return inner_->registerMemory(b, o, attrs);
  }
  Status unregisterMemory(const BufferDesc& d) override { return inner_->unregisterMemory(d); }
  std::string describeLocal() const override { return inner_->describeLocal(); }
  bool progress(const std::function<bool()>& done) override { return inner_->progress(done); }
  size_t peerStateCount() const override { return inner_->peerStateCount(); }
  size_t connectionCount() const override { return inner_->connectionCount(); }
  std::string inspect() const override { return inner_->inspect(); }

  /// Whether the next submit / slice is one to fail / to corrupt (counted over all endpoints).
  bool failSubmit();
  bool failSlice();
  bool flipByte();

 private:
  std::unique_ptr<Transport> inner_;
  const Rates rates_;
  std::atomic<uint64_t> submits_{0}, slices_{0}, flips_{0};
};

}  // namespace ferry
