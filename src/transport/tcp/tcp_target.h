// The target side of the tcp transport: serves a peer's WRITE/READ of our registered memory
// and FILE_WRITE/FILE_READ of the files we expose, on the engine's RPC server. Every range
// is admitted first (pinned in the registry, or checked against the exposed file) and a
// refusal is answered with the stream kept in sync.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/cuda_driver.h"
#include "common/log.h"
#include "control/rpc_server.h"
#include "model/file_table.h"
#include "model/memory_registry.h"
#include "transport/tcp/tcp_socket.h"

namespace ferry {

class TransportContext;

/// Aligned bounce buffers for serving peers' file I/O, shared by every connection: idle
/// connections hold none, and all together hold at most `cap` bytes (a peer asking for more
/// waits, then is answered Busy).
class BouncePool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    uint8_t* data() const { return buf_; }

   private:
    friend class BouncePool;
    BouncePool* pool_ = nullptr;
    uint8_t* buf_ = nullptr;
    size_t cap_ = 0;
  };
  ~BouncePool();
  void configure(size_t cap, uint32_t align);
  /// Buffers taken for GPU memory are page-locked with `gpu` when it can.
  void pinWith(cuda::Gpu* gpu) { gpu_ = gpu; }
  /// A buffer of at least `len` bytes into `out`; waits until `deadline` while the pool is
  /// at its cap.
  /// `for_gpu`: the buffer stages GPU memory (page-locked when it can be).
  Status take(uint64_t len, std::chrono::steady_clock::time_point deadline, Lease& out, bool for_gpu = false);

 private:
  void give(uint8_t* buf, size_t cap);
  Status takePlain(uint64_t len, std::chrono::steady_clock::time_point deadline, Lease& out);
  std::mutex mu_;  // a leaf
  std::condition_variable cv_;
  size_t cap_ = 0;
  uint32_t align_ = 4096;
  size_t allocated_ = 0;  // in use and cached
  std::vector<std::pair<size_t, uint8_t*>> cached_;  // (capacity, buffer)
  cuda::Gpu* gpu_ = nullptr;      // set before use
  std::vector<uint8_t*> pinned_;  // the buffers gpu_ page-locked
  void release(uint8_t* buf);     // unpins (when pinned) and frees; caller holds mu_
};

class TcpTarget {
 public:
  struct Options {
    uint32_t file_alignment = 4096;  // files/direct_alignment, for the bounce buffers
    size_t rcvlowat_bytes = 0;       // WRITE payloads are received with this low-water cap
    size_t bounce_bytes = 0;         // transports/tcp/file_bounce_bytes
    // How long a file or GPU access waits for a bounce buffer before it is refused.
    std::chrono::milliseconds bounce_wait{30000};
    tcp_socket::SendBuffers send_buffers;  // of each connection we serve: tcp_socket::applySendBuffer
  };
  /// Defines the tcp messages and installs the handlers.
  Status start(TransportContext& ctx, const Options& options);

 private:
  // A peer's admitted access: a pinned memory range, or a range of an exposed file.
  struct RemoteAccess {
    uint64_t addr = 0, len = 0;  // for a file: the file offset
    MemoryRegistry::Pin pin;
    std::shared_ptr<OpenFile> file;  // keeps the file open
    uint64_t sum = 0;                // WriteSum: the sender's checksum of the payload
  };
  Status handleWrite(const wire::FrameHeader& h, ServerConnection& conn);
  Status handleRead(const wire::FrameHeader& h, ServerConnection& conn);
  // WriteV / ReadV (and their checked forms): many small ranges of host memory, all admitted
  // before any is touched.
  Status handleVector(const wire::FrameHeader& h, ServerConnection& conn);
  // WriteSum / ReadSum: host memory only, its checksum checked here (write) or sent along (read).
  Status handleWriteSum(const wire::FrameHeader& h, ServerConnection& conn);
  Status handleReadSum(const wire::FrameHeader& h, ServerConnection& conn);
  // Hashes what landed at [addr, +len) against the sender's checksum: Corrupted (and a log
  // line) when they differ.
  Status checkLanded(const ServerConnection& conn, uint64_t addr, uint64_t len, uint64_t sent);
  // Admits a WriteSum/ReadSum range: also refuses one that is not host memory.
  Status admitChecked(const wire::FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused);
  Status admit(const wire::FrameHeader& h, ServerConnection& conn, RemoteAccess& a, bool& refused);
  // Answers a refused request with `why` (logged, rate-limited) after dropping its `payload`
  // bytes; an error only when the stream broke.
  Status refuse(const wire::FrameHeader& h, ServerConnection& conn, const Status& why, uint64_t payload);
  // The I/O of an admitted file access between `buf` and the file.
  Status fileOp(const RemoteAccess& a, bool write, uint8_t* buf);
  // A bounce buffer for a file or GPU access (pinned for the GPU), waiting up to bounce_wait:
  // `len` bytes, the whole range for a file, one staging ring of pieces for GPU memory.
  Status takeBounce(const RemoteAccess& a, bool gpu, BouncePool::Lease& buf, uint64_t& len);
  // A failed copy to or from registered GPU memory is logged (rate-limited) before the peer hears it.
  void logGpuRefusal(const Status& st);

  TransportContext* ctx_ = nullptr;
  Options options_;
  BouncePool bounce_;
  log::RateLimit refusals_;  // what a misbehaving peer makes us log
};

}  // namespace ferry
