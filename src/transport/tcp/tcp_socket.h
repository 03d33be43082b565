// Socket settings of the tcp transport's connections that both ends apply.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/net.h"

namespace ferry::tcp_socket {

/// The send buffers of the sockets that carry payloads, on both ends
/// (transports/tcp/send_buffer_bytes), by where the peer is; 0 leaves a socket's to the kernel.
struct SendBuffers {
  size_t same_machine = 0;
  size_t other_machines = 0;
};

/// The option's value for "auto": on loopback the kernel grows a send buffer to 4 MiB, and
/// a fixed one moves synchronous batches faster, the receiver's copies costing up to a third
/// of the CPU per byte (docs/architecture.md "TCP send buffers"). How much depends on how many
/// connections share a peer's traffic: with two, 128 KiB each moved 1 MiB x 16 batches
/// 1.6-2.5x faster; one connection lost 10-30 % at 128 KiB and gained 20-40 % at 512 KiB.
/// Across a network a buffer must cover the path's bandwidth x round trip, which only the
/// kernel measures: auto leaves those to it.
constexpr int64_t kAutoSendBuffer = -1;
constexpr size_t kSameMachineSendBuffer = 128 << 10;          // each of several connections
constexpr size_t kSameMachineSendBufferAlone = 512 << 10;     // a peer's only connection

/// What the option means for connections_per_peer connections to a peer: auto as above, 0 the
/// kernel's everywhere, N fixed at N everywhere. (The target applies its own setting: both
/// ends normally share one configuration.)
inline SendBuffers sendBuffers(int64_t option, size_t connections_per_peer) {
  if (option == kAutoSendBuffer)
    return {connections_per_peer == 1 ? kSameMachineSendBufferAlone : kSameMachineSendBuffer, 0};
  const size_t bytes = option > 0 ? static_cast<size_t>(option) : 0;
  return {bytes, bytes};
}

inline void applySendBuffer(int fd, const SendBuffers& buffers) {
  const size_t bytes = net::peerOnThisMachine(fd) ? buffers.same_machine : buffers.other_machines;
  if (bytes > 0) net::setSendBuffer(fd, bytes);
}

}  // namespace ferry::tcp_socket
