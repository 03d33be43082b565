// What net.cpp and socket_reader.cpp share (not for use outside common/net*).
#pragma once

#include "common/net.h"

namespace ferry::net {

/// A send or receive timed out on the socket. Without a deadline that ends the wait; with
/// one it was a tick, and the wait goes on until the deadline.
bool keepWaiting(Clock::time_point deadline);
/// The Status of a failed recv (errno `err`).
Status recvError(int err);

}  // namespace ferry::net
