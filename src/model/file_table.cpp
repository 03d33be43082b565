#include "model/file_table.h"

#include <unistd.h>

#include "common/log.h"

namespace ferry {

Status checkFileAccess(const FileDesc& d, uint64_t offset, uint64_t length, bool write) {
  if (offset > d.length || length > d.length - offset)
    return Status::OutOfRange("range [" + std::to_string(offset) + ", +" +
                                   std::to_string(length) + ") is outside file '" + d.name +
                                   "' (" + std::to_string(d.length) + " bytes)");
  if (write && d.read_only)
    return Status::PermissionDenied("file '" + d.name + "' is read-only");
  return Status::OK();
}

Status FileTable::expose(const std::string& name, const std::string& path, bool read_only,
                         uint64_t size, FileDesc* out) {
  if (name.empty() || name.find('#') != std::string::npos)
    return Status::InvalidArgument("file name must be non-empty and free of '#', got '" + name + "'");
  if (path.empty() || path[0] != '/')
    return Status::InvalidArgument("file path must be absolute, got '" + path + "'");
  const Status taken = Status::AlreadyExists("a file is already exposed as '" + name + "'");
  {
    std::lock_guard lock(mu_);  // before opening: a clash should not touch the file
    if (exposedLocked(name)) return taken;
  }
  auto entry = std::make_shared<OpenFile>();
  FERRY_RETURN_IF_ERROR(fileio::File::open(path, read_only, size, try_direct_, entry->file));
  uint64_t length = 0;
  FERRY_RETURN_IF_ERROR(entry->file->size(length));
  entry->exposed = true;
  entry->desc.name = name;
  entry->desc.path = path;
  entry->desc.length = size > 0 ? size : length;
  entry->desc.read_only = read_only;
  std::lock_guard lock(mu_);
  if (exposedLocked(name)) return taken;  // another thread won meanwhile
  entry->desc.id = next_id_++;
  files_[entry->desc.id] = entry;
  if (out) *out = entry->desc;
  FERRY_LOG(INFO) << "exposing '" << path << "' as file '" << name << "' (" << entry->desc.length
                  << " bytes, " << (read_only ? "read-only" : "read-write") << ")";
  return Status::OK();
}

Status FileTable::unexpose(const std::string& name) {
  std::lock_guard lock(mu_);
  auto f = exposedLocked(name);
  if (!f) return Status::NotFound("no file is exposed as '" + name + "'");
  files_.erase(f->desc.id);
  return Status::OK();
}

std::shared_ptr<OpenFile> FileTable::exposedLocked(const std::string& name) const {
  for (auto& [id, f] : files_)
    if (f->exposed && f->desc.name == name) return f;
  return nullptr;
}

Status FileTable::openPrivate(const std::string& path, std::shared_ptr<OpenFile>& out) {
  if (path.empty() || path[0] != '/')
    return Status::InvalidArgument("file path must be absolute, got '" + path + "'");
  {
    std::lock_guard lock(mu_);
    for (auto& [id, f] : files_)
      if (!f->exposed && f->desc.path == path) {
        out = f;
        return Status::OK();
      }
  }
  auto entry = std::make_shared<OpenFile>();
  bool read_only = ::access(path.c_str(), W_OK) != 0;
  FERRY_RETURN_IF_ERROR(fileio::File::open(path, read_only, 0, try_direct_, entry->file));
  FERRY_RETURN_IF_ERROR(entry->file->size(entry->desc.length));
  entry->desc.name = path;
  entry->desc.path = path;
  entry->desc.read_only = read_only;
  std::lock_guard lock(mu_);
  entry->desc.id = next_id_++;
  files_[entry->desc.id] = entry;
  out = std::move(entry);
  return Status::OK();
}

void FileTable::closePrivate(uint32_t id) {
  std::lock_guard lock(mu_);
  auto it = files_.find(id);
  if (it != files_.end() && !it->second->exposed) files_.erase(it);
}

std::shared_ptr<OpenFile> FileTable::find(uint32_t id) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(id);
  return it == files_.end() ? nullptr : it->second;
}

Status FileTable::admit(uint64_t id, uint64_t offset, uint64_t length, bool write,
                        std::shared_ptr<OpenFile>& out) const {
  auto f = id <= UINT32_MAX ? find(static_cast<uint32_t>(id)) : nullptr;
  if (!f || !f->exposed) return Status::NotFound("no exposed file has id " + std::to_string(id));
  FERRY_RETURN_IF_ERROR(checkFileAccess(f->desc, offset, length, write));
  out = std::move(f);
  return Status::OK();
}

std::vector<FileDesc> FileTable::exposed() const {
  std::lock_guard lock(mu_);
  std::vector<FileDesc> out;
  for (auto& [id, f] : files_)
    if (f->exposed) out.push_back(f->desc);
  return out;
}

}  // namespace ferry
