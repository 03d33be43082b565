#include "model/segment_descriptor.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace ferry {

using json = nlohmann::json;

namespace {
// Attributes are JSON written by a transport; embedded as JSON, not as an escaped string.
json encodeAttrs(const TransportAttrs& attrs) {
  json out = json::object();
  for (const auto& [name, text] : attrs) {
    json v = json::parse(text, nullptr, false);
    out[name] = v.is_discarded() ? json(text) : v;
  }
  return out;
}

Status decodeAttrs(const json& j, TransportAttrs& out) {
  if (!j.is_object()) return Status::Corrupted("descriptor attrs are not an object");
  for (const auto& [name, v] : j.items()) out[name] = v.dump();
  return Status::OK();
}
}  // namespace

std::string SegmentDescriptor::toJson() const {
  json j;
  j["name"] = name;
  j["machine_id"] = machine_id;
  j["instance_id"] = instance_id;
  j["rpc"] = {{"host", rpc_host}, {"port", rpc_port}};
  j["version"] = version;
  j["type"] = "memory";
  if (!attrs.empty()) j["attrs"] = encodeAttrs(attrs);
  json bufs = json::array();
  for (const auto& b : buffers) {
    json jb = {{"base", b.base},
               {"length", b.length},
               {"location", b.location},
               {"perm", static_cast<int>(b.perm)}};
    if (!b.attrs.empty()) jb["attrs"] = encodeAttrs(b.attrs);
    bufs.push_back(std::move(jb));
  }
  j["buffers"] = std::move(bufs);
  j["transports"] = transports;
  if (!files.empty()) {
    json fl = json::array();
    for (const auto& f : files)
      fl.push_back({{"id", f.id}, {"name", f.name}, {"path", f.path}, {"length", f.length},
                    {"read_only", f.read_only}});
    j["files"] = std::move(fl);
  }
  return j.dump();
}

Status SegmentDescriptor::fromJson(const std::string& text, SegmentDescriptor& out) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corrupted("segment descriptor is not a JSON object");
  try {
    SegmentDescriptor d;
    d.name = j.at("name").get<std::string>();
    d.machine_id = j.value("machine_id", "");
    d.instance_id = j.value("instance_id", "");
    d.rpc_host = j.at("rpc").at("host").get<std::string>();
    int64_t port = j.at("rpc").at("port").get<int64_t>();
    if (port <= 0 || port > 65535) return Status::Corrupted("descriptor has an invalid RPC port");
    d.rpc_port = static_cast<uint16_t>(port);
    d.version = j.value("version", uint64_t{0});
    if (j.contains("attrs")) FERRY_RETURN_IF_ERROR(decodeAttrs(j.at("attrs"), d.attrs));
    for (const auto& b : j.at("buffers")) {
      BufferDesc bd;
      bd.base = b.at("base").get<uint64_t>();
      bd.length = b.at("length").get<uint64_t>();
      bd.location = b.value("location", "cpu:0");
      int perm = b.value("perm", static_cast<int>(kGlobalReadWrite));
      if (perm < kLocalReadWrite || perm > kGlobalReadWrite)
        return Status::Corrupted("descriptor buffer has unknown permission");
      bd.perm = static_cast<Permission>(perm);
      if (bd.length == 0 || bd.base + bd.length < bd.base)
        return Status::Corrupted("descriptor buffer has an invalid range");
      if (b.contains("attrs")) FERRY_RETURN_IF_ERROR(decodeAttrs(b.at("attrs"), bd.attrs));
      d.buffers.push_back(bd);
    }
    if (j.contains("transports")) d.transports = j.at("transports").get<std::vector<std::string>>();
    if (j.contains("files")) {
      for (const auto& f : j.at("files")) {
        FileDesc fd;
        fd.id = f.at("id").get<uint32_t>();
        fd.name = f.at("name").get<std::string>();
        fd.path = f.value("path", "");
        fd.length = f.at("length").get<uint64_t>();
        fd.read_only = f.value("read_only", false);
        if (fd.id == 0 || fd.name.empty()) return Status::Corrupted("descriptor file entry without id or name");
        d.files.push_back(std::move(fd));
      }
    }
    d.buildIndex();
    out = std::move(d);
  } catch (const std::exception& e) {
    return Status::Corrupted(std::string("bad segment descriptor: ") + e.what());
  }
  return Status::OK();
}

void SegmentDescriptor::buildIndex() {
  by_base_.resize(buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i) by_base_[i] = i;
  std::sort(by_base_.begin(), by_base_.end(),
            [&](size_t a, size_t b) { return buffers[a].base < buffers[b].base; });
}

const BufferDesc* SegmentDescriptor::find(uint64_t addr, uint64_t len) const {
  auto it = std::upper_bound(by_base_.begin(), by_base_.end(), addr,
                             [&](uint64_t a, size_t i) { return a < buffers[i].base; });
  if (it == by_base_.begin()) return nullptr;
  const BufferDesc& b = buffers[*--it];
  return b.contains(addr, len) ? &b : nullptr;
}

bool SegmentDescriptor::speaks(std::string_view name) const {
  return std::find(transports.begin(), transports.end(), name) != transports.end();
}

const FileDesc* SegmentDescriptor::findFile(const std::string& file_name) const {
  for (const auto& f : files)
    if (f.name == file_name) return &f;
  return nullptr;
}

Status SegmentDescriptor::findForAccess(uint64_t addr, uint64_t len, bool write, const BufferDesc*& out) const {
  out = find(addr, len);
  if (!out)
    return Status::InvalidArgument("target range " + rangeText(addr, len) + " is not in a registered buffer of '" +
                                   name + "'");
  return checkAccess(*out, write);
}

Status SegmentDescriptor::checkAccess(const BufferDesc& b, bool write) const {
  if (b.perm == kLocalReadWrite)
    return Status::PermissionDenied("target buffer " + rangeText(b.base, b.length) + " of '" + name +
                                    "' is local-only");
  if (write && b.perm != kGlobalReadWrite)
    return Status::PermissionDenied("target buffer " + rangeText(b.base, b.length) + " of '" + name +
                                    "' is read-only");
  return Status::OK();
}

}  // namespace ferry
