#include "transport/fault/fault_transport.h"

#include <string>
#include <vector>

#include "common/log.h"

namespace ferry {

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, uint64_t fail_submit_every,
                               uint64_t fail_slice_every)
    : inner_(std::move(inner)),
      fail_submit_every_(fail_submit_every),
      fail_slice_every_(fail_slice_every) {
  FERRY_LOG(WARN) << "fault injection on transport " << inner_->name() << ": every "
                  << fail_submit_every_ << "th submit, every " << fail_slice_every_
                  << "th slice fails (0 = never)";
}

Status FaultTransport::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  if (fail_submit_every_ && (submits_.fetch_add(1) + 1) % fail_submit_every_ == 0)
    return Status::Unavailable(std::string("injected submit failure on ") + name());
  if (!fail_slice_every_) return inner_->submit(peer, slices, count);
  std::vector<Slice*> pass, doomed;
  for (size_t i = 0; i < count; ++i)
    ((slices_.fetch_add(1) + 1) % fail_slice_every_ == 0 ? doomed : pass).push_back(slices[i]);
  if (!pass.empty()) FERRY_RETURN_IF_ERROR(inner_->submit(peer, pass.data(), pass.size()));
  for (Slice* s : doomed)
    completeSlice(s, Status::InternalError(std::string("injected slice failure on ") + name()));
  return Status::OK();
}

}  // namespace ferry
