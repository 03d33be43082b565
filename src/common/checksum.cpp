#include "common/checksum.h"

#include <xxhash.h>

#include <cstdio>
#include <new>

namespace ferry::checksum {

uint64_t xxh3(const void* data, size_t length) { return XXH3_64bits(data, length); }

Stream::Stream() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
Stream::~Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Stream::update(const void* data, size_t length) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, length);
}
uint64_t Stream::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

std::string mismatchText(const char* where, uint64_t sent, uint64_t got, uint64_t length) {
  char text[160];
  std::snprintf(text, sizeof text, "checksum mismatch at the %s: sent %016llx, got %016llx (%llu bytes)", where,
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(got),
                static_cast<unsigned long long>(length));
  return text;
}

}  // namespace ferry::checksum
