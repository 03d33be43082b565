// A paged transfer (TransferEngine::submitPagedTransfer) as plain ranges: page i of each
// layer at both ends, runs of pages adjacent at both ends merged into one range.
#pragma once

#include <vector>

#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry {

/// Appends the request's ranges to `runs` (Request's fields: source, target_offset, length,
/// with the request's opcode, target, hint, priority and deadline); none for 0 pages.
/// InvalidArgument for a bad field, a negative index or an address that overflows (then
/// `runs` is as it was).
Status pageRuns(const PagedRequest& request, std::vector<Request>& runs);

}  // namespace ferry
