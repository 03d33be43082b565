// File transport: moves slices between memory and a file segment on this machine — a local
// file opened as a segment, a file this engine exposes, or one a same-machine peer exposes
// (opened here by its path; when this process may not open it, the slice fails with
// NotSupported and the selector moves it to tcp, whose target does the I/O).
//
// Workers each own a FileIo (io_uring ring, or pread/pwrite when io_uring is unavailable
// or `transports/file/backend` says so) and keep up to queue_depth slices in flight.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/file_io.h"
#include "transport/peer_version.h"
#include "transport/transport.h"

namespace ferry {

class FileTransport : public Transport {
 public:
  FileTransport();
  ~FileTransport() override;

  const char* name() const override { return "file"; }
  TransportCaps caps() const override { return {true, true, false}; }
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;

  /// The backend the workers use (after start).
  fileio::Backend backend() const { return backend_; }

 private:
  struct Work {
    Slice* slice = nullptr;
    std::shared_ptr<fileio::File> file;  // keeps the descriptors open
  };
  // The open file behind a file segment, or why it cannot be reached from here.
  Status fileFor(const PeerEndpoint& peer, std::shared_ptr<fileio::File>& out);
  void workerLoop(fileio::FileIo& io);

  TransportContext* ctx_ = nullptr;
  fileio::Backend backend_ = fileio::Backend::kPosix;
  uint64_t slice_size_ = 1 << 20;
  unsigned queue_depth_ = 32;

  // Same-machine peers' files opened here, per peer instance.
  struct PeerFiles {
    const SegmentDescriptor* pruned_for = nullptr;  // descriptor `files` was last checked against
    std::map<uint32_t, std::shared_ptr<fileio::File>> files;  // by file id
    PeerControlPage control;  // a peer's exposed files may change under its descriptor
  };
  std::mutex files_mu_;
  std::map<std::string, PeerFiles> peer_files_;  // by instance id

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<fileio::FileIo>> ios_;
  std::vector<std::thread> workers_;
};

}  // namespace ferry
