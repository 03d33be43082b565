// The checksum Ferry uses end to end (digest of a range): XXH3, 64 bits, seed 0, from
// Debian's libxxhash. One source file includes xxhash.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::checksum {

/// XXH3-64 (seed 0) of [data, data + length).
uint64_t xxh3(const void* data, size_t length);

}  // namespace ferry::checksum
