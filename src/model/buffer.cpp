#include "model/buffer.h"

#include <cstdio>

namespace ferry {

MemoryKind memoryKindOf(std::string_view location) {
  auto is = [&](std::string_view prefix) {
    return location.substr(0, prefix.size()) == prefix &&
           (location.size() == prefix.size() || location[prefix.size()] == ':');
  };
  if (location.empty() || location == kWildcardLocation || is("cpu")) return kHostMemory;
  if (is("cuda")) return kCudaMemory;
  if (is("file")) return kFileData;
  return kOtherDevice;
}

const char* memoryKindName(MemoryKind kind) {
  switch (kind) {
    case kHostMemory: return "host";
    case kCudaMemory: return "cuda";
    case kFileData: return "file";
    case kOtherDevice: return "device";
  }
  return "?";
}

std::string rangeText(uint64_t addr, uint64_t length) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "[0x%llx, +%llu)", static_cast<unsigned long long>(addr),
                static_cast<unsigned long long>(length));
  return buf;
}

}  // namespace ferry
