// The checksum Ferry uses end to end (digest of a range): XXH3, 64 bits, seed 0, from
// Debian's libxxhash. One source file includes xxhash.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::checksum {

/// XXH3-64 (seed 0) of [data, data + length).
uint64_t xxh3(const void* data, size_t length);

/// XXH3-64 (seed 0) of bytes given in pieces: equal to xxh3() of them joined.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void update(const void* data, size_t length);
  uint64_t digest() const;

 private:
  void* state_;  // XXH3_state_t (xxhash.h stays in checksum.cpp)
};

/// "checksum mismatch at the <where>: sent <hex>, got <hex> (<n> bytes)": how every side
/// that finds one says it.
std::string mismatchText(const char* where, uint64_t sent, uint64_t got, uint64_t length);

}  // namespace ferry::checksum
