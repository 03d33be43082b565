// libFuzzer target for the wire decoder: build with -DFERRY_FUZZ=ON and CC/CXX=clang, then
//   build-fuzz/bin/ferry_wire_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>

#include "control/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::wire::parseFrames(data, size).IgnoreError();
  return 0;
}
