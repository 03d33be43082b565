// A paged transfer (TransferEngine::submitPagedTransfer) as plain ranges: page i of each
// layer at both ends, runs of pages adjacent at both ends merged into one range.
#pragma once

#include <vector>

#include "ferry/status.h"
#include "ferry/types.h"
#include "model/slice.h"

namespace ferry {

/// Appends the request's ranges to `runs` (local address, remote address, length); none
/// for 0 pages. Pages are taken in the order of their source index (local for a write, remote for
/// a read; stable), and pages adjacent at both ends in that order merge into one range.
/// InvalidArgument for a bad field, a negative index or an address that overflows (then
/// `runs` is as it was).
Status pageRuns(const PagedRequest& request, std::vector<SliceRange>& runs);

/// The request's fields as a Request of no range: what each of its runs shares.
Request pagedLike(const PagedRequest& request);
/// One run as a request of its own: `like` over the run's range.
Request runRequest(const Request& like, const SliceRange& run);

}  // namespace ferry
