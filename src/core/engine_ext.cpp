#include "ferry/engine_ext.h"

#include "core/engine.h"
#include "core/option_catalog.h"

namespace ferry {

// The one door from the public classes to EngineImpl (a friend of TransferEngine).
struct EngineAccess {
  static EngineImpl* impl(TransferEngine& e) { return e.available() ? e.impl_.get() : nullptr; }
};

namespace ext {

namespace {
const Status kUnavailable = Status::Unavailable("engine not available");
}

Status checkRegistered(TransferEngine& engine, const void* addr, size_t length) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->registry().checkLocal(reinterpret_cast<uint64_t>(addr), length) : kUnavailable;
}

Status copyLocal(TransferEngine& engine, void* dst, const void* src, size_t length) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->gpu().copy(dst, src, length) : kUnavailable;
}

Status cudaStatus(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->gpu().available() : kUnavailable;
}

bool cudaDriverPresent() { return cuda::driverPresent(); }

Status submitOnStream(TransferEngine& engine, const std::vector<Request>& requests, void* stream) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->streamOrdered().submit(requests, stream) : kUnavailable;
}

Status lastStreamError(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->streamOrdered().lastError() : kUnavailable;
}

bool overlapsRegistered(TransferEngine& engine, const void* addr, size_t length) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e && e->registry().overlaps(reinterpret_cast<uint64_t>(addr), length);
}

const Config& engineConfig(TransferEngine& engine) {
  static const Config defaults;
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->config() : defaults;
}

Status probe(TransferEngine& engine, const std::string& segment_name) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->directory().probe(segment_name) : kUnavailable;
}

std::string transportName(TransferEngine& engine, SegmentID segment) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->transportName(segment) : "";
}

Status describeSelection(TransferEngine& engine, SegmentID segment, std::string& json) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->describeSelection(segment, json) : kUnavailable;
}

Status exposedFiles(TransferEngine& engine, SegmentID segment, std::vector<ExposedFile>& out) {
  EngineImpl* e = EngineAccess::impl(engine);
  if (!e) return kUnavailable;
  std::vector<FileDesc> files;
  FERRY_RETURN_IF_ERROR(e->exposedFiles(segment, files));
  out.clear();
  for (const auto& f : files) out.push_back({f.id, f.name, f.path, f.length, f.read_only});
  return Status::OK();
}

std::string optionsTable() { return optionsMarkdown(); }

std::string localDescriptorJson(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->localDescriptor().toJson() : "";
}

std::string inspectTransports(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->inspectTransports() : "";
}

size_t peerStateCount(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->peerStateCount() : 0;
}

uint16_t metricsPort(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->metricsPort() : 0;
}

uint64_t checksumMismatches(TransferEngine& engine) {
  EngineImpl* e = EngineAccess::impl(engine);
  return e ? e->checksumMismatches() : 0;
}

}  // namespace ext
}  // namespace ferry
