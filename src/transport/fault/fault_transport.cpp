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
    for (size_t i = 0; i < count; ++i) (faults_.failSlice() ? doomed : pass).push_back(slices[i]);
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
}

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, uint64_t fail_submit_every,
                               uint64_t fail_slice_every)
    : inner_(std::move(inner)),
      fail_submit_every_(fail_submit_every),
      fail_slice_every_(fail_slice_every) {
  FERRY_LOG(WARN) << "fault injection on transport " << inner_->name() << ": every "
                  << fail_submit_every_ << "th submit, every " << fail_slice_every_
                  << "th slice fails (0 = never)";
}

Status FaultTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  std::shared_ptr<Endpoint> inner;
  FERRY_RETURN_IF_ERROR(inner_->connect(peer, inner));
  out = std::make_shared<FaultEndpoint>(*this, std::move(inner));
  return Status::OK();
}

bool FaultTransport::failSubmit() {
  return fail_submit_every_ && (submits_.fetch_add(1) + 1) % fail_submit_every_ == 0;
}

bool FaultTransport::failSlice() {
  return fail_slice_every_ && (slices_.fetch_add(1) + 1) % fail_slice_every_ == 0;
}

}  // namespace ferry
