// Ferry's framed binary protocol (docs/wire-protocol.md). Every frame is a 32-byte
// little-endian header followed by body_len bytes. Decoders validate magic, version,
// type and per-type length caps before anything else looks at a frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"
#include "ferry/types.h"

namespace ferry::wire {

constexpr uint32_t kMagic = 0x59525246;  // bytes "FRRY" on the wire
constexpr uint16_t kVersion = 2;
constexpr size_t kHeaderSize = 32;
constexpr size_t kRangeSize = 16;  // u64 address + u64 length
constexpr size_t kFileRangeSize = 24;  // u64 file id, then a range (the address is a file offset)

constexpr uint32_t kMaxDataBytes = 64u << 20;       // one WRITE/READ payload
constexpr uint32_t kMaxDescriptorBytes = 16u << 20;  // a segment descriptor
constexpr uint32_t kMaxNotifyBytes = 1u << 20;       // name + message of a notification
constexpr uint32_t kMaxErrorBytes = 4096;            // error text in a failed response

enum class MsgType : uint16_t {
  kGetDescriptor = 1,  // -> kDescriptor (body: descriptor JSON)
  kDescriptor = 2,
  kNotify = 3,  // body: u32 name_len, name, u32 msg_len, msg -> kNotifyAck
  kNotifyAck = 4,
  kProbe = 5,  // -> kProbeAck
  kProbeAck = 6,
  kWrite = 7,  // body: range, then `length` payload bytes -> kWriteAck
  kWriteAck = 8,
  kRead = 9,  // body: range -> kReadData (body: `length` bytes)
  kReadData = 10,
  kFileWrite = 11,  // body: file range, then `length` payload bytes -> kWriteAck
  kFileRead = 12,   // body: file range -> kReadData
};

/// Bytes of range in front of a WRITE/READ payload: kRangeSize, or kFileRangeSize for files.
size_t rangeSizeOf(MsgType t);

bool isRequest(MsgType t);
const char* typeName(MsgType t);

struct FrameHeader {
  MsgType type{};
  uint32_t body_len = 0;
  uint32_t status = 0;  // responses: a Status::Code; non-zero bodies then hold error text
  uint64_t request_id = 0;
  // Responses: the responder's registry version, so a peer learns from any answer that
  // its cached descriptor is stale. Requests: 0.
  uint64_t epoch = 0;
};

void encodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]);
/// Validates and decodes a header. Corrupted on any violation, with the reason.
Status decodeHeader(const uint8_t* data, size_t len, FrameHeader& out);

void encodeRange(uint64_t addr, uint64_t length, uint8_t out[kRangeSize]);
void encodeFileRange(uint64_t file_id, uint64_t offset, uint64_t length, uint8_t out[kFileRangeSize]);
/// Decodes a (FILE_)WRITE/READ range and checks it against the header's body_len. For the
/// file types `file_id` receives the file id (it must be non-null then).
Status decodeRange(const FrameHeader& h, const uint8_t* data, size_t len, uint64_t& addr,
                   uint64_t& length, uint64_t* file_id = nullptr);

std::string encodeNotify(const Notification& n);
Status decodeNotify(std::string_view body, Notification& out);

/// Status <-> wire status code.
uint32_t toWire(const Status& s);
Status fromWire(uint32_t code, std::string_view message);

/// Walks a buffer holding whole frames, decoding every header and control body; used by
/// the fuzz target and the bounded random-input test. Returns the first error.
Status parseFrames(const uint8_t* data, size_t len, size_t* frames_out = nullptr);

}  // namespace ferry::wire
