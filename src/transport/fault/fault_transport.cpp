#include "transport/fault/fault_transport.h"

#include <string>
#include <vector>

#include "common/log.h"

namespace ferry {

namespace {
class FaultEndpoint : public Endpoint {
 public:
  FaultEndpoint(FaultTransport& faults, std::shared_ptr<Endpoint> inner)
      : faults_(faults), inner_(std::move(inner)) {}

  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override {
    if (faults_.failSubmit())
      return Status::Unavailable(std::string("injected submit failure on ") + faults_.name());
    std::vector<Slice*> pass, doomed;
    for (size_t i = 0; i < count; ++i) {
      (faults_.failSlice() ? doomed : pass).push_back(slices[i]);
      if (faults_.flipByte()) slices[i]->flip_byte = true;
    }
    if (!pass.empty()) FERRY_RETURN_IF_ERROR(inner_->submit(peer, pass.data(), pass.size()));
    for (Slice* s : doomed)
      completeSlice(s, Status::InternalError(std::string("injected slice failure on ") + faults_.name()));
    return Status::OK();
  }
  void cancel() override { inner_->cancel(); }

 private:
  FaultTransport& faults_;
  std::shared_ptr<Endpoint> inner_;
};
}  // namespace

void FaultTransport::declareOptions(OptionTable& t) {
  t.integer("fault/fail_submit_every", 0, 0, INT64_MAX,
            "tests: wrap the transport in the fault injector; every Nth submit is refused (0: never)");
  t.integer("fault/fail_slice_every", 0, 0, INT64_MAX,
            "tests: every Nth slice fails after it was accepted (0: never)");
  t.integer("fault/flip_byte_every", 0, 0, INT64_MAX,
            "tests: one byte of every Nth slice changes in flight (0: never); the transports that check "
            "checksums (tcp, shm, local) do it");
}

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, const Rates& rates)
    : inner_(std::move(inner)), rates_(rates) {
  FERRY_LOG(WARN) << "fault injection on transport " << inner_->name() << ": every " << rates_.fail_submit_every
                  << "th submit, every " << rates_.fail_slice_every << "th slice fails, every "
                  << rates_.flip_byte_every << "th slice has a byte flipped (0 = never)";
}

Status FaultTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  std::shared_ptr<Endpoint> inner;
  FERRY_RETURN_IF_ERROR(inner_->connect(peer, inner));
  out = std::make_shared<FaultEndpoint>(*this, std::move(inner));
  return Status::OK();
}

namespace {
bool everyNth(std::atomic<uint64_t>& counter, uint64_t n) {
  return n && (counter.fetch_add(1, std::memory_order_relaxed) + 1) % n == 0;
}
}  // namespace

bool FaultTransport::failSubmit() { return everyNth(submits_, rates_.fail_submit_every); }
bool FaultTransport::failSlice() { return everyNth(slices_, rates_.fail_slice_every); }
bool FaultTransport::flipByte() { return everyNth(flips_, rates_.flip_byte_every); }

}  // namespace ferry
