// File transport: moves slices between memory and a file segment on this machine — a local
// file opened as a segment, a file this engine exposes, or one a same-machine peer exposes.
// A peer's file is never opened by the path its descriptor names: the peer is attached
// through its local socket (transport/local_peer.h) and hands over descriptors of the file
// it exposes (read-only when it exposes it read-only); when that is not possible the slice
// fails with NotSupported and the selector moves it to tcp, whose target does the I/O.
//
// Workers each own a FileIo (io_uring ring, or pread/pwrite when io_uring is unavailable
// or `transports/file/backend` says so) and keep up to queue_depth slices in flight.
// A peer's files are held by its FileEndpoint (one per peer instance) and closed with it.
//
// Lock order: FileEndpoint::mu_ and FileTransport::mu_ (the queue) are leaves; no I/O runs
// under either.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/file_io.h"
#include "common/options.h"
#include "transport/endpoint_cache.h"
#include "transport/transport.h"

namespace ferry {

class FileEndpoint;

namespace file_wire {
constexpr wire::MsgType kFileOpen{19};    // body: u32 file id (as our descriptor lists it) -> kFileHandle
constexpr wire::MsgType kFileHandle{20};  // empty; the file's descriptors ride with it: buffered, then O_DIRECT
/// The control messages and these: what a file endpoint's local channel understands.
const wire::MessageTable& messages();
}  // namespace file_wire

class FileTransport : public Transport {
 public:
  FileTransport();
  ~FileTransport() override;

  static void declareOptions(OptionTable& table);

  const char* name() const override { return "file"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  size_t peerStateCount() const override { return endpoints_.liveCount(); }

  /// The backend the workers use (after start).
  fileio::Backend backend() const { return backend_; }

 private:
  friend class FileEndpoint;
  struct Work {
    Slice* slice = nullptr;
    std::shared_ptr<fileio::File> file;   // keeps the descriptors open
    std::shared_ptr<const Endpoint> owner;  // for cancel(); kept alive while queued
  };
  // Queues the slices against `file` (FileEndpoint::submit).
  Status enqueue(std::shared_ptr<const Endpoint> owner, const std::shared_ptr<fileio::File>& file,
                 Slice* const* slices, size_t count);
  void cancelQueued(const Endpoint* owner);
  // kFileOpen from a local peer: descriptors of a file we expose.
  Status serveOpen(const wire::FrameHeader& h, ServerConnection& conn);
  void workerLoop(fileio::FileIo& io);

  TransportContext* ctx_ = nullptr;
  fileio::Backend backend_ = fileio::Backend::kPosix;
  uint64_t slice_size_ = 1 << 20;
  unsigned queue_depth_ = 32;
  EndpointCache<FileEndpoint> endpoints_;

  std::mutex mu_;  // guards queue_ and stopping_; a leaf: I/O and completions run unlocked
  std::condition_variable cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<fileio::FileIo>> ios_;
  std::vector<std::thread> workers_;
};

}  // namespace ferry
