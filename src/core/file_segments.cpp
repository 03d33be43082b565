#include "core/file_segments.h"

#include <nlohmann/json.hpp>

namespace ferry {

void FileSegments::declareOptions(OptionTable& t) {
  t.json("files/expose", "[]", "files exposed at start: `{\"name\", \"path\", \"read_only\", \"size\"}`");
  t.flag("files/direct_io", true, "use `O_DIRECT` for accesses aligned to `files/direct_alignment`");
  t.integer("files/direct_alignment", 4096, 1, 1 << 20, "alignment of `O_DIRECT` accesses");
}

Status FileSegments::start(const Config& config) {
  files_.setTryDirect(config.get<bool>("files/direct_io"));
  nlohmann::json list = nlohmann::json::parse(config.get<std::string>("files/expose"), nullptr, false);
  if (list.is_discarded() || !list.is_array())
    return Status::InvalidArgument("files/expose must be a list of {\"name\", \"path\"} objects");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& f = list[i];
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("files/expose[" + std::to_string(i) + "]: " + why);
    };
    std::string name, path;
    bool read_only = false;
    uint64_t size = 0;
    try {
      if (!f.is_object() || !f.contains("name") || !f.contains("path")) return bad("needs \"name\" and \"path\"");
      name = f.at("name").get<std::string>();
      path = f.at("path").get<std::string>();
      read_only = f.value("read_only", false);
      size = f.value("size", uint64_t{0});
    } catch (const std::exception& e) {
      return bad(e.what());
    }
    Status st = files_.expose(name, path, read_only, size);
    if (!st.ok()) return bad(st.message());
  }
  if (!list.empty()) changed_();
  return Status::OK();
}

Status FileSegments::expose(const std::string& name, const std::string& path, Permission perm,
                            uint64_t size) {
  if (perm != kGlobalReadOnly && perm != kGlobalReadWrite)
    return Status::InvalidArgument("a file is exposed to peers: permission must be kGlobalReadOnly or kGlobalReadWrite");
  FERRY_RETURN_IF_ERROR(files_.expose(name, path, perm == kGlobalReadOnly, size));
  changed_();  // peers holding our descriptor refresh it
  return Status::OK();
}

Status FileSegments::unexpose(const std::string& name) {
  FERRY_RETURN_IF_ERROR(files_.unexpose(name));
  changed_();
  return Status::OK();
}

Status FileSegments::openPrivate(const std::string& path, std::shared_ptr<const FileDesc>& out) {
  std::shared_ptr<OpenFile> f;
  FERRY_RETURN_IF_ERROR(files_.openPrivate(path, f));
  out = std::make_shared<const FileDesc>(f->desc);
  return Status::OK();
}

Status FileSegments::findExposed(const std::string& name, std::shared_ptr<const FileDesc>& out) const {
  for (const FileDesc& f : files_.exposed())
    if (f.name == name) {
      out = std::make_shared<const FileDesc>(f);
      return Status::OK();
    }
  return Status::NotFound("this engine exposes no file '" + name + "'");
}

Status FileSegments::liveLength(const FileDesc& desc, uint64_t& out) const {
  out = desc.length;
  auto f = files_.find(desc.id);
  if (f && !f->exposed) return f->file->size(out);
  return Status::OK();
}

Status FileSegments::checkTarget(const PeerEndpoint& peer, const Request& req) const {
  const bool write = req.opcode == Request::WRITE;
  if (!peer.file)
    return Status::NotFound("segment '" + peer.segment_name + "' no longer exposes that file");
  if (!peer.is_self) return checkFileAccess(*peer.file, req.target_offset, req.length, write);
  auto f = files_.find(peer.file->id);
  if (!f) return Status::NotFound("file '" + peer.file->name + "' is no longer open here");
  FileDesc d = f->desc;
  if (!f->exposed) FERRY_RETURN_IF_ERROR(f->file->size(d.length));  // a private file may grow
  return checkFileAccess(d, req.target_offset, req.length, write);
}

}  // namespace ferry
