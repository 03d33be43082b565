// Multi-rail TCP: which local address each connection to a peer leaves from and which of
// the peer's addresses it goes to. A machine with several NICs lists one address per NIC
// in `transports/tcp/rails`; it leaves from them and publishes them (the segment's "tcp"
// attrs) so peers reach it on all of them. Pure functions: tested without a network.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::tcp_rails {

constexpr size_t kMaxRails = 16;

/// Parses the config value: numeric addresses separated by commas (spaces ignored), at most
/// kMaxRails, each an address of this machine (checked by binding to it).
Status parseLocal(const std::string& text, std::vector<std::string>& out);
/// The segment attrs JSON publishing `rails` ("" when there are none).
std::string describe(const std::vector<std::string>& rails);
/// A peer's published rails from its "tcp" attrs: a claim, so anything but a short list of
/// numeric addresses is ignored (the peer is then reached at its RPC address only).
std::vector<std::string> parsePeer(const std::string& attrs_json);

struct Path {
  std::string source;  // local address to leave from ("": the routing table's choice)
  std::string host;    // the peer's address
};
/// `count` connections (at least one per rail on either side), spread round-robin over the
/// local rails; each goes to the peer rail sharing the longest address prefix with its
/// source (the same subnet: the NIC cabled to it), ties broken round-robin. Without peer
/// rails every path goes to `peer_host`.
std::vector<Path> plan(const std::vector<std::string>& local, const std::vector<std::string>& peer,
                       const std::string& peer_host, size_t count);

}  // namespace ferry::tcp_rails
