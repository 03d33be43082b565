// The tcp transport's messages on the shared RPC server (docs/wire-protocol.md, types 7-12):
// WRITE/READ of a registered memory range, and FILE_WRITE/FILE_READ of an exposed file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/net.h"
#include "control/wire.h"

namespace ferry::tcp_wire {

using wire::MsgType;
constexpr MsgType kWrite{7};       // body: range, then `length` payload bytes -> kWriteAck
constexpr MsgType kWriteAck{8};
constexpr MsgType kRead{9};        // body: range -> kReadData (body: `length` bytes)
constexpr MsgType kReadData{10};
constexpr MsgType kFileWrite{11};  // body: file range, then `length` payload bytes -> kWriteAck
constexpr MsgType kFileRead{12};   // body: file range -> kReadData

// Many ranges of registered memory in one frame (a run of slices): one header, one answer.
// Body: u32 count, u32 0, `count` ranges, then (WriteV) their payloads in order.
constexpr MsgType kWriteV{23};  // -> kWriteAck once every payload is in place
constexpr MsgType kReadV{24};   // -> kReadData: the ranges' bytes in order
// 1024: a frame of 16 KiB pages carries 16 MiB, as a frame of 1 MiB slices does (version 4
// allowed 64 ranges, version 5 256; with 16 MiB frames for contiguous runs, frames of 256
// pages moved paged 16 KiB transfers at ~0.8x of contiguous ones, 1024 at ~0.95x).
constexpr size_t kMaxRanges = net::kMaxScatterParts;

// A slice whose bytes are checked end to end (Task::checksum): the sender's XXH3-64 of the
// payload travels with it. WriteSum: body = range, u64 checksum, payload -> kWriteAck, OK
// only when the landed bytes hash the same (else Corrupted). ReadSum: body = range ->
// kReadData with body = the target's u64 checksum of the range, then its bytes.
constexpr MsgType kWriteSum{27};
constexpr MsgType kReadSum{28};
constexpr size_t kSumSize = 8;
// Checked runs of small slices: WriteSumV is WriteV with each range followed by its
// checksum (u64 addr, u64 length, u64 checksum) -> kSumVerdicts, one byte per range: 0 where
// what landed hashes to the range's checksum, 1 where it does not (a refused frame is
// answered with the status and its text, and nothing landed). ReadSumV is ReadV -> kReadData
// carrying the ranges' checksums (u64 each, in order), then their bytes.
constexpr MsgType kWriteSumV{29};
constexpr MsgType kReadSumV{30};
constexpr MsgType kSumVerdicts{31};
constexpr size_t kRangesHeadSize = 8;

constexpr size_t kRangeSize = 16;      // u64 address + u64 length
constexpr size_t kSumRangeSize = kRangeSize + kSumSize;  // a WriteSumV range: and its checksum
constexpr size_t kFileRangeSize = 24;  // u64 file id, then a range (the address is a file offset)
constexpr uint32_t kMaxDataBytes = 64u << 20;  // one WRITE/READ payload

/// Defines the four exchanges in `table` (the RPC server's, or a connection's own).
Status defineMessages(wire::MessageTable& table);
/// The control messages and these: what a tcp initiator's connection understands.
const wire::MessageTable& messages();

/// Bytes of range in front of a payload: kRangeSize, kFileRangeSize for the file types,
/// kRangeSize + kSumSize for WriteSum.
size_t rangeSizeOf(MsgType t);
bool isWrite(MsgType t);
bool isFileOp(MsgType t);

void encodeRange(uint64_t addr, uint64_t length, uint8_t out[kRangeSize]);
void encodeFileRange(uint64_t file_id, uint64_t offset, uint64_t length, uint8_t out[kFileRangeSize]);
/// Decodes a (FILE_)WRITE/READ(_SUM) range and checks it against the header's body_len. For
/// the file types `file_id` receives the file id (it must be non-null then); for WriteSum
/// `sum` receives the checksum (when non-null).
Status decodeRange(const wire::FrameHeader& h, const uint8_t* data, size_t len, uint64_t& addr,
                   uint64_t& length, uint64_t* file_id = nullptr, uint64_t* sum = nullptr);
struct Range {
  uint64_t addr = 0, length = 0;
  uint64_t sum = 0;  // WriteSumV only
};
/// WriteV/ReadV/WriteSumV/ReadSumV.
bool isVector(MsgType t);
/// Bytes per encoded range of a vectored frame: kSumRangeSize for WriteSumV, else kRangeSize.
size_t rangeEntrySize(MsgType t);
void encodeSumRange(uint64_t addr, uint64_t length, uint64_t sum, uint8_t out[kSumRangeSize]);
void encodeRangesHead(uint32_t count, uint8_t out[kRangesHeadSize]);
/// The count of a vectored frame's head: Corrupted unless 1..kMaxRanges
/// and the frame has room for that many ranges.
Status decodeRangesHead(const wire::FrameHeader& h, const uint8_t head[kRangesHeadSize], size_t& count);
/// Decodes `count` ranges at `data` (after the head, rangeEntrySize each), each as a
/// Write/Read range, their lengths' sum at most kMaxDataBytes and (writes) equal to the
/// payload the frame carries; `total` = that sum.
Status decodeRanges(const wire::FrameHeader& h, const uint8_t* data, size_t count, Range* out, uint64_t& total);

/// A wire::BodyChecker for these messages (ranges) and the control ones.
Status checkBody(const wire::FrameHeader& h, const uint8_t* body);

}  // namespace ferry::tcp_wire
