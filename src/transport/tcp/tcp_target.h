// The target side of the tcp transport: serves a peer's WRITE/READ of our registered memory
// and FILE_WRITE/FILE_READ of the files we expose, on the engine's RPC server. Every range
// is admitted first (pinned in the registry, or checked against the exposed file) and a
// refusal is answered with the stream kept in sync.
#pragma once

#include <cstdint>
#include <memory>

#include "control/rpc_server.h"
#include "model/file_table.h"
#include "model/memory_registry.h"

namespace ferry {

class TransportContext;

class TcpTarget {
 public:
  /// Defines the tcp messages and installs the handlers.
  Status start(TransportContext& ctx, uint32_t file_alignment);

 private:
  // A peer's admitted access: a pinned memory range, or a range of an exposed file.
  struct RemoteAccess {
    uint64_t addr = 0, len = 0;  // for a file: the file offset
    MemoryRegistry::Pin pin;
    std::shared_ptr<OpenFile> file;  // keeps the file open
  };
  Status handleWrite(const wire::FrameHeader& h, ServerConnection& conn);
  Status handleRead(const wire::FrameHeader& h, ServerConnection& conn);
  Status admit(const wire::FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused);
  // This server thread's aligned bounce buffer for file accesses, at least `len` bytes.
  Status bounceBuffer(uint64_t len, uint8_t*& buf);
  // The I/O of an admitted file access between `buf` and the file.
  Status fileOp(const RemoteAccess& a, bool write, uint8_t* buf);

  TransportContext* ctx_ = nullptr;
  uint32_t file_align_ = 4096;  // files/direct_alignment, for the bounce buffers
};

}  // namespace ferry
