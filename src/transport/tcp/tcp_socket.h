// Socket settings of the tcp transport's connections that both ends apply.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/net.h"

namespace ferry::tcp_socket {

/// The send buffer of a socket that carries payloads, on both ends
/// (transports/tcp/send_buffer_bytes). kAutoSendBuffer fixes it at kSameMachineSendBuffer
/// when the peer is on this machine and leaves it to the kernel's sizing otherwise; 0
/// always leaves it; N fixes it at N. On loopback the kernel grows it to 4 MiB; fixed at
/// 128 KiB, 1 MiB x 16 batches moved 1.6-2.5x faster, the receiver's copies costing a third
/// of the CPU per byte (docs/architecture.md "TCP send buffers"). Across a network the
/// buffer must cover the path's bandwidth x round trip, which only the kernel measures.
constexpr int64_t kAutoSendBuffer = -1;
constexpr size_t kSameMachineSendBuffer = 128 << 10;
inline void applySendBuffer(int fd, int64_t option) {
  if (option == kAutoSendBuffer && net::peerOnThisMachine(fd)) option = kSameMachineSendBuffer;
  if (option > 0) net::setSendBuffer(fd, static_cast<size_t>(option));
}

}  // namespace ferry::tcp_socket
