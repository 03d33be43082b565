// A paged transfer (TransferEngine::submitPagedTransfer) as plain ranges: page i of each
// layer at both ends, runs of pages adjacent at both ends merged into one range.
#pragma once

#include <vector>

#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry {

/// Appends the request's ranges to `runs` (Request's fields: source, target_offset, length,
/// with the request's opcode, target, hint, priority, deadline and checksum); none for 0
/// pages. Pages are taken in the order of their source index (local for a write, remote for
/// a read; stable), and pages adjacent at both ends in that order merge into one range.
/// InvalidArgument for a bad field, a negative index or an address that overflows (then
/// `runs` is as it was).
Status pageRuns(const PagedRequest& request, std::vector<Request>& runs);

}  // namespace ferry
