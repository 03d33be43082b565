// libFuzzer target for the HTTP request head (what ferry-metadata and the embedded metadata
// service parse from anyone who connects) and the signature check that follows it.
// scripts/test.sh builds and runs it for a bounded time.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  ferry::http::Request req;
  size_t length = 0;
  int status = 0;
  std::string why;
  if (ferry::http::parseRequestHead(head, req, length, status, why)) {
    int n = 0;
    ferry::http::verifySignature(req, "a token of sixteen bytes", 1000, 120,
                                 [&](const std::string&) { return ++n > 1; }, why);
  }
  return 0;
}
