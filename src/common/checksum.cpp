#include "common/checksum.h"

#include <xxhash.h>

namespace ferry::checksum {

uint64_t xxh3(const void* data, size_t length) { return XXH3_64bits(data, length); }

}  // namespace ferry::checksum
