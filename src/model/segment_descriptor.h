// Segment descriptor: what a segment publishes about itself (JSON on the wire / in the
// metadata store) and what peers cache to validate and route requests. A peer's descriptor
// is a claim: every field is bounded when decoded, and transports check their own
// attributes before they use them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "model/buffer.h"
#include "model/file_table.h"

namespace ferry {

struct SegmentDescriptor {
  std::string name;
  std::string machine_id;
  std::string instance_id;  // new on every engine start: tells a restarted peer apart
  std::string rpc_host;
  uint16_t rpc_port = 0;
  uint64_t version = 0;  // registry version when published
  std::vector<BufferDesc> buffers;  // in registration order, each with its transport attrs
  std::vector<std::string> transports;
  std::vector<FileDesc> files;  // exposed files ("<name>#<file>" opens one as a segment)
  TransportAttrs attrs;  // per transport, about the whole segment (Transport::describeLocal)

  std::string toJson() const;
  static Status fromJson(const std::string& text, SegmentDescriptor& out);

  /// Whether a peer may read (or, with `write`, write) buffer `b` of this segment:
  /// PermissionDenied naming the buffer otherwise.
  Status checkAccess(const BufferDesc& b, bool write) const;
  /// The buffer holding [addr, addr+len), or nullptr. O(log n) once indexed.
  const BufferDesc* find(uint64_t addr, uint64_t len) const;
  /// The buffer holding a peer access to [addr, addr+len) that this segment allows
  /// (checkAccess): InvalidArgument when no buffer holds the range.
  Status findForAccess(uint64_t addr, uint64_t len, bool write, const BufferDesc*& out) const;
  /// The exposed file called `file_name`, or nullptr.
  const FileDesc* findFile(const std::string& file_name) const;
  /// Whether the segment says it speaks transport `name`.
  bool speaks(std::string_view name) const;
  /// Builds the by-address index find() uses (fromJson does this).
  void buildIndex();

 private:
  std::vector<size_t> by_base_;  // indices into buffers, sorted by base
};

}  // namespace ferry
