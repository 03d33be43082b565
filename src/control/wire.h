// Ferry's framed binary protocol (docs/wire-protocol.md). Every frame is a 32-byte
// little-endian header followed by body_len bytes. A frame is checked against a
// MessageTable (type defined, request/response rules, body bounds) before anything else
// looks at it. The control plane defines message types 1-6 and 13-16 here; each transport defines
// its own in its folder (tcp: 7-12) on the RPC server it shares, and a type is defined
// once: a second definition is refused, never silently overwritten.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry::wire {

constexpr uint32_t kMagic = 0x59525246;  // bytes "FRRY" on the wire
constexpr uint16_t kVersion = 6;
constexpr size_t kHeaderSize = 32;

constexpr uint32_t kMaxDescriptorBytes = 16u << 20;  // a segment descriptor
constexpr uint32_t kMaxNotifyBytes = 1u << 20;       // name + message of a notification
constexpr uint32_t kMaxErrorBytes = 4096;            // error text in a failed response

/// A message type, 1..kMaxMessageType.
enum class MsgType : uint16_t {
  kGetDescriptor = 1,  // -> kDescriptor (body: descriptor JSON)
  kDescriptor = 2,
  kNotify = 3,  // body: u32 name_len, name, u32 msg_len, msg -> kNotifyAck
  kNotifyAck = 4,
  kProbe = 5,  // -> kProbeAck
  kProbeAck = 6,
  // 7..12: the tcp transport's (transport/tcp/tcp_wire.h).
  kHello = 13,      // the cluster token's handshake (control/handshake.h) -> kHelloAck
  kHelloAck = 14,
  kAuthProof = 15,  // -> kAuthOk
  kAuthOk = 16,
  // 17..18: shm's, 19..20: file's (same-machine attach), 21..22: rdma's, 23..24: tcp's.
  kDigest = 25,  // body: u64 addr, u64 length -> kDigestAck (body: u64 XXH3-64 of the range)
  kDigestAck = 26,
  // 27..63 free.
};
constexpr uint64_t kMaxDigestBytes = 1ull << 30;  // one digest request's range
constexpr uint32_t kHelloNonceBytes = 32;     // a handshake nonce, and a MAC
constexpr uint32_t kMaxIdentityBytes = 1024;  // a segment name or instance id in HelloAck
constexpr uint32_t kHelloAckFixedBytes = 1 + 2 * kHelloNonceBytes + 2 + 2;
constexpr uint16_t kMaxMessageType = 63;

struct FrameHeader {
  MsgType type{};
  uint32_t body_len = 0;
  uint32_t status = 0;  // responses: a Status::Code; non-zero bodies then hold error text
  uint64_t request_id = 0;
  // Responses: the responder's registry version, so a peer learns from any answer that
  // its cached descriptor is stale. Requests: 0.
  uint64_t epoch = 0;
};

/// What frames of one type may carry.
struct MessageSpec {
  const char* name = nullptr;  // null: the type is not defined
  bool request = false;
  uint32_t min_body = 0, max_body = 0;  // bounds of an OK frame's body
  MsgType response{};  // a request's answer (also for "not served here" replies)
};

/// The message types one side understands, with their bounds.
class MessageTable {
 public:
  /// Defines `type`. InvalidArgument outside 1..kMaxMessageType (or a request whose
  /// response type is not defined yet); AlreadyExists when the type is taken.
  Status define(MsgType type, const MessageSpec& spec);
  /// The spec of `type`, or null when it is not defined here.
  const MessageSpec* find(MsgType type) const;
  /// Name for messages and logs ("?" when not defined here).
  const char* name(MsgType type) const;
  /// Request/response rules and body bounds; Corrupted with the reason on a violation.
  Status check(const FrameHeader& h) const;

 private:
  std::array<MessageSpec, kMaxMessageType + 1> specs_{};
};

/// Defines the control plane's messages (descriptor, notify, probe) in `table`.
void defineControlMessages(MessageTable& table);
/// A table holding only the control messages (for the control plane's clients).
const MessageTable& controlMessages();
/// The control messages plus those `define` adds: what a transport's client side understands.
/// `define` adds fixed types, so it cannot fail on a fresh table (the server's table, where a
/// clash would show, is checked at engine start).
MessageTable controlMessagesWith(Status (*define)(MessageTable&));

void encodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]);
/// Validates and decodes a header against `table`. Corrupted on any violation, with the
/// reason.
Status decodeHeader(const uint8_t* data, size_t len, const MessageTable& table, FrameHeader& out);

/// A Digest request's body, and its check (length 1..kMaxDigestBytes, no wrap-around).
std::string encodeDigest(uint64_t addr, uint64_t length);
Status decodeDigest(std::string_view body, uint64_t& addr, uint64_t& length);

std::string encodeNotify(const Notification& n);
Status decodeNotify(std::string_view body, Notification& out);

/// Status <-> wire status code.
uint32_t toWire(const Status& s);
Status fromWire(uint32_t code, std::string_view message);

/// Checks the body of a frame already decoded against `table`; the control plane's (a
/// notification's lengths) here, a transport's through its own checker. Used by the fuzz
/// target and the bounded random-input test.
using BodyChecker = Status (*)(const FrameHeader& h, const uint8_t* body);
Status checkControlBody(const FrameHeader& h, const uint8_t* body);

/// Walks a buffer holding whole frames, decoding every header against `table` and checking
/// each OK body with `check_body`. Returns the first error.
Status parseFrames(const uint8_t* data, size_t len, const MessageTable& table,
                   BodyChecker check_body, size_t* frames_out = nullptr);

}  // namespace ferry::wire
