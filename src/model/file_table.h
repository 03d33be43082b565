// The files an engine serves as file segments: those it exposes to peers (config
// `files/expose` or TransferEngine::exposeFile) and local files it opened as segments
// itself ("file://PATH"). Ids are never reused, so a peer's cached id cannot name another
// file later. A shared_ptr to an entry keeps its descriptors open through an access.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "ferry/status.h"

namespace ferry {

/// What a segment descriptor says about one exposed file.
struct FileDesc {
  uint32_t id = 0;
  std::string name;  // peers open "<segment>#<name>"
  std::string path;  // same-machine peers open it directly
  uint64_t length = 0;
  bool read_only = false;
};

struct OpenFile {
  FileDesc desc;
  bool exposed = false;  // false: opened by this engine for itself only
  std::shared_ptr<fileio::File> file;
};

class FileTable {
 public:
  explicit FileTable(bool try_direct = true) : try_direct_(try_direct) {}
  void setTryDirect(bool v) { try_direct_ = v; }
  /// Whether files are opened with an O_DIRECT descriptor too (files/direct_io).
  bool tryDirect() const { return try_direct_; }

  /// Exposes `path` under `name`. `size` > 0 creates the file if needed and extends it;
  /// 0 exposes it as it is. The exposed length is fixed from then on.
  Status expose(const std::string& name, const std::string& path, bool read_only,
                uint64_t size, FileDesc* out = nullptr);
  /// Stops exposing `name`; accesses already admitted finish.
  Status unexpose(const std::string& name);
  /// Opens a local file for this engine's own use (not offered to peers); read-write when
  /// the process may write it, else read-only. Opening a path twice gives the same entry.
  Status openPrivate(const std::string& path, std::shared_ptr<OpenFile>& out);
  /// Drops a private entry (when its segment closes).
  void closePrivate(uint32_t id);

  /// The entry with this id (exposed or private), or null.
  std::shared_ptr<OpenFile> find(uint32_t id) const;
  /// Checks a peer's access to an exposed file: known id, range inside the exposed length,
  /// write allowed. On success `out` keeps the file open while the caller uses it.
  Status admit(uint64_t id, uint64_t offset, uint64_t length, bool write,
               std::shared_ptr<OpenFile>& out) const;
  /// Exposed files, by id.
  std::vector<FileDesc> exposed() const;

 private:
  // The exposed entry called `name`, or null. Caller holds mu_.
  std::shared_ptr<OpenFile> exposedLocked(const std::string& name) const;

  mutable std::mutex mu_;  // guards files_ and next_id_; a leaf (docs/locking.md)
  bool try_direct_;
  uint32_t next_id_ = 1;
  std::map<uint32_t, std::shared_ptr<OpenFile>> files_;
};

/// Checks [offset, offset+length) against a file of `desc.length` bytes and, for a write,
/// its permission. Shared by the engine (before sending) and the target (on receipt).
Status checkFileAccess(const FileDesc& desc, uint64_t offset, uint64_t length, bool write);

}  // namespace ferry
