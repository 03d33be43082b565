// Where a peer segment lives, as core resolved it and as transports need it. Immutable once
// published: a refresh builds a new one, so the data path shares it through a refcount.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/file_table.h"
#include "model/segment_descriptor.h"

namespace ferry {

/// What a transport reports as a peer's version when the peer instance is gone (its beacon
/// says so, or its process exited): whoever answers at its address now is someone else.
constexpr uint64_t kPeerGone = UINT64_MAX;

struct PeerEndpoint {
  std::string segment_name;
  std::string host;
  uint16_t port = 0;
  std::string machine_id;
  bool is_self = false;  // the segment is this engine
  // The peer's descriptor as last read (null for our own segment); replaced, never changed.
  std::shared_ptr<const SegmentDescriptor> desc;
  // Set on the engine's retry after re-reading desc because the peer changed: transports
  // that check the peer's live version accept desc for that submit if it is at least
  // `refreshed_over`, the newest version the peer reported before the refresh (under churn
  // equality may never hold; an older descriptor, from a lagging store, never passes).
  bool just_refreshed = false;
  uint64_t refreshed_over = 0;
  // Set for a file segment: the file it is (ids and length as the owner published them).
  // Memory transports do not reach such a segment; target offsets are file offsets.
  std::shared_ptr<const FileDesc> file;

  /// Who this is for per-peer state: the peer instance (a restart is someone new), or our
  /// own segment.
  std::string instanceKey() const {
    if (desc && !desc->instance_id.empty()) return desc->instance_id;
    return is_self ? std::string("self") : host + ":" + std::to_string(port);
  }
};

}  // namespace ferry
