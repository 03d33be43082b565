// libFuzzer target for the token handshake: a server's HelloAck as a client decodes it, and
// a client's Hello / AuthProof bodies as a server's per-connection state takes them, in any
// order. scripts/test.sh builds and runs it for a bounded time.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ferry::handshake::HelloAck ack;
  ferry::handshake::decodeHelloAck(in, ack).IgnoreError();
  // The server side: a sequence of (kind, length, body) messages carved from the input.
  const ferry::handshake::Identity id{"segment", "instance"};
  ferry::handshake::ServerState server(size % 2 ? "a token of sixteen bytes" : "", &id);
  while (in.size() >= 2) {
    const bool hello = in[0] & 1;
    const size_t len = std::min<size_t>(static_cast<uint8_t>(in[1]), in.size() - 2);
    std::string_view body = in.substr(2, len);
    in.remove_prefix(2 + len);
    std::string reply;
    if (hello)
      server.hello(body, reply).IgnoreError();
    else
      server.proof(body).IgnoreError();
  }
  return 0;
}
