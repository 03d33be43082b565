// File segments this engine serves: files exposed to peers (config files/expose or
// exposeFile) and local files it opened for itself ("file:///PATH"), over the FileTable,
// plus the target checks of a request to a file segment (ours: the live file; a peer's:
// its descriptor).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/options.h"
#include "ferry/config.h"
#include "ferry/types.h"
#include "model/file_table.h"
#include "model/peer.h"

namespace ferry {

class FileSegments {
 public:
  static void declareOptions(OptionTable& table);
  /// `changed` runs after every change peers must see (the engine bumps and publishes).
  explicit FileSegments(std::function<void()> changed) : changed_(std::move(changed)) {}

  /// Reads files/* and exposes the configured files (before the first descriptor goes out).
  Status start(const Config& config);
  FileTable& table() { return files_; }

  Status expose(const std::string& name, const std::string& path, Permission perm, uint64_t size);
  Status unexpose(const std::string& name);
  /// The file of a private "file:///PATH" segment, opened for this engine.
  Status openPrivate(const std::string& path, std::shared_ptr<const FileDesc>& out);
  void closePrivate(uint32_t id) { files_.closePrivate(id); }
  /// The exposed file called `name` of this engine, or NotFound.
  Status findExposed(const std::string& name, std::shared_ptr<const FileDesc>& out) const;
  /// The live length of a file segment of ours (a private file may grow).
  Status liveLength(const FileDesc& f, uint64_t& out) const;

  /// Checks a request against a file segment (ours: the live file; a peer's: its
  /// descriptor).
  Status checkTarget(const PeerEndpoint& peer, const Request& req) const;

 private:
  std::function<void()> changed_;
  FileTable files_;
};

}  // namespace ferry
