// libFuzzer target for the wire decoder: build with -DFERRY_FUZZ=ON and CC/CXX=clang, then
//   build-fuzz/bin/ferry_wire_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>

#include "control/wire.h"
#include "transport/rdma/rdma_wire.h"
#include "transport/tcp/tcp_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Every frame an engine with the tcp transport would accept: control and data messages.
  ferry::wire::parseFrames(data, size, ferry::tcp_wire::messages(), ferry::tcp_wire::checkBody).IgnoreError();
  // And the rdma handshake's, framed and as a bare body (its decoder validates every field).
  ferry::wire::parseFrames(data, size, ferry::rdma_wire::messages(), ferry::rdma_wire::checkBody).IgnoreError();
  ferry::rdma_wire::ConnectInfo info;
  ferry::rdma_wire::decode(std::string_view(reinterpret_cast<const char*>(data), size), info).IgnoreError();
  return 0;
}
