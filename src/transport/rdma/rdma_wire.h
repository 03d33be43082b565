// The rdma transport's handshake on the shared RPC server (docs/wire-protocol.md, types 21-22):
// an initiator asks a peer to connect queue pairs for one (initiator NIC, target NIC) pair and
// gets the peer's side back. Both sides' bodies are the same record, encoded explicitly
// (little-endian, bounded strings) and validated field by field before use: the request is
// a claim from the network.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/wire.h"
#include "ferry/status.h"

namespace ferry::rdma_wire {

using wire::MsgType;
constexpr MsgType kRdmaConnect{21};     // body: ConnectInfo (initiator's side) -> kRdmaConnectAck
constexpr MsgType kRdmaConnectAck{22};  // body: ConnectInfo (target's side, mtu = the one both use)

constexpr uint16_t kVersion = 1;
constexpr size_t kMaxQpsPerPath = 16;
constexpr size_t kMaxInstanceBytes = 128;
constexpr size_t kMaxDeviceNameBytes = 64;  // IBV_SYSFS_NAME_MAX
constexpr uint32_t kMaxBodyBytes = 1024;

struct ConnectInfo {
  uint16_t version = kVersion;
  std::string initiator_instance;  // who asks (a restarted initiator is someone new)
  std::string target_instance;     // whom it means: a restarted target refuses
  std::string initiator_device;    // NIC names, as the descriptors list them
  std::string target_device;
  uint16_t lid = 0;
  uint8_t gid[16] = {};
  uint8_t mtu = 0;  // enum ibv_mtu (1 = 256 .. 5 = 4096)
  std::vector<uint32_t> qp_nums;  // one per queue pair of the path, same order on both sides
  std::vector<uint32_t> psns;
};

std::string encode(const ConnectInfo& info);
/// Decodes and validates (version, lengths, names, mtu, 24-bit QP numbers and PSNs, counts).
Status decode(std::string_view body, ConnectInfo& out);

/// Defines both messages in `table`.
Status defineMessages(wire::MessageTable& table);
/// The control messages and these (the handshake client's table).
const wire::MessageTable& messages();
/// A wire::BodyChecker for these messages and the control ones (fuzzing).
Status checkBody(const wire::FrameHeader& h, const uint8_t* body);

}  // namespace ferry::rdma_wire
