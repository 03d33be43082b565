#include "transport/tcp/tcp_wire.h"

#include <utility>

#include "common/endian.h"

namespace ferry::tcp_wire {

Status defineMessages(wire::MessageTable& table) {
  using wire::MessageSpec;
  const std::pair<MsgType, MessageSpec> messages[] = {
      {kWriteAck, {"WriteAck", false, 0, 0}},
      {kReadData, {"ReadData", false, 0, kMaxRanges * kSumSize + kMaxDataBytes}},
      {kSumVerdicts, {"SumVerdicts", false, 1, kMaxRanges}},
      {kWrite, {"Write", true, kRangeSize, kRangeSize + kMaxDataBytes, kWriteAck}},
      {kRead, {"Read", true, kRangeSize, kRangeSize, kReadData}},
      {kFileWrite, {"FileWrite", true, kFileRangeSize, kFileRangeSize + kMaxDataBytes, kWriteAck}},
      {kFileRead, {"FileRead", true, kFileRangeSize, kFileRangeSize, kReadData}},
      {kWriteV, {"WriteV", true, kRangesHeadSize + kRangeSize,
                 kRangesHeadSize + kMaxRanges * kRangeSize + kMaxDataBytes, kWriteAck}},
      {kReadV, {"ReadV", true, kRangesHeadSize + kRangeSize, kRangesHeadSize + kMaxRanges * kRangeSize, kReadData}},
      {kWriteSum, {"WriteSum", true, kRangeSize + kSumSize, kRangeSize + kSumSize + kMaxDataBytes, kWriteAck}},
      {kReadSum, {"ReadSum", true, kRangeSize, kRangeSize, kReadData}},
      {kWriteSumV, {"WriteSumV", true, kRangesHeadSize + kSumRangeSize,
                    kRangesHeadSize + kMaxRanges * kSumRangeSize + kMaxDataBytes, kSumVerdicts}},
      {kReadSumV, {"ReadSumV", true, kRangesHeadSize + kRangeSize, kRangesHeadSize + kMaxRanges * kRangeSize,
                   kReadData}},
  };
  for (const auto& [type, spec] : messages) FERRY_RETURN_IF_ERROR(table.define(type, spec));
  return Status::OK();
}

const wire::MessageTable& messages() {
  static const wire::MessageTable table = wire::controlMessagesWith(&defineMessages);
  return table;
}

size_t rangeSizeOf(MsgType t) {
  if (isFileOp(t)) return kFileRangeSize;
  return t == kWriteSum ? kRangeSize + kSumSize : kRangeSize;
}

bool isWrite(MsgType t) { return t == kWrite || t == kFileWrite || t == kWriteSum; }
bool isFileOp(MsgType t) { return t == kFileWrite || t == kFileRead; }
bool isVector(MsgType t) { return t == kWriteV || t == kReadV || t == kWriteSumV || t == kReadSumV; }
size_t rangeEntrySize(MsgType t) { return t == kWriteSumV ? kSumRangeSize : kRangeSize; }

void encodeSumRange(uint64_t addr, uint64_t length, uint64_t sum, uint8_t out[kSumRangeSize]) {
  encodeRange(addr, length, out);
  putU64(out + kRangeSize, sum);
}

void encodeRange(uint64_t addr, uint64_t length, uint8_t out[kRangeSize]) {
  putU64(out, addr);
  putU64(out + 8, length);
}

void encodeFileRange(uint64_t file_id, uint64_t offset, uint64_t length, uint8_t out[kFileRangeSize]) {
  putU64(out, file_id);
  encodeRange(offset, length, out + 8);
}

Status decodeRange(const wire::FrameHeader& h, const uint8_t* data, size_t len, uint64_t& addr,
                   uint64_t& length, uint64_t* file_id, uint64_t* sum) {
  const size_t range_size = rangeSizeOf(h.type);
  if (len < range_size) return Status::Corrupted("truncated range");
  if (h.type == kWriteSum && sum) *sum = getU64(data + kRangeSize);
  if (isFileOp(h.type)) {
    if (!file_id) return Status::Corrupted("file range where a memory range was expected");
    *file_id = getU64(data);
    data += 8;
  }
  addr = getU64(data);
  length = getU64(data + 8);
  if (length == 0 || length > kMaxDataBytes)
    return Status::Corrupted("range length " + std::to_string(length) + " out of bounds");
  if (addr + length < addr) return Status::Corrupted("range wraps around the address space");
  if (isWrite(h.type) && h.body_len != range_size + length)
    return Status::Corrupted("write length disagrees with frame length");
  return Status::OK();
}

void encodeRangesHead(uint32_t count, uint8_t out[kRangesHeadSize]) {
  putU32(out, count);
  putU32(out + 4, 0);
}

Status decodeRangesHead(const wire::FrameHeader& h, const uint8_t head[kRangesHeadSize], size_t& count) {
  count = getU32(head);
  if (count == 0 || count > kMaxRanges || getU32(head + 4) != 0)
    return Status::Corrupted("range count " + std::to_string(count) + " out of bounds");
  const size_t ranges = kRangesHeadSize + count * rangeEntrySize(h.type);
  if (h.body_len < ranges) return Status::Corrupted("truncated ranges");
  if ((h.type == kReadV || h.type == kReadSumV) && h.body_len != ranges)
    return Status::Corrupted("read ranges disagree with frame length");
  return Status::OK();
}

Status decodeRanges(const wire::FrameHeader& h, const uint8_t* data, size_t count, Range* out, uint64_t& total) {
  total = 0;
  const size_t entry = rangeEntrySize(h.type);
  for (size_t i = 0; i < count; ++i, data += entry) {
    out[i] = {getU64(data), getU64(data + 8), entry == kSumRangeSize ? getU64(data + kRangeSize) : 0};
    if (out[i].length == 0 || out[i].length > kMaxDataBytes)
      return Status::Corrupted("range length " + std::to_string(out[i].length) + " out of bounds");
    if (out[i].addr + out[i].length < out[i].addr) return Status::Corrupted("range wraps around the address space");
    total += out[i].length;  // <= 1024 ranges of <= 64 MiB: no overflow
  }
  if (total > kMaxDataBytes) return Status::Corrupted("ranges total more than one payload may carry");
  if ((h.type == kWriteV || h.type == kWriteSumV) && h.body_len != kRangesHeadSize + count * entry + total)
    return Status::Corrupted("write ranges disagree with frame length");
  return Status::OK();
}

Status checkBody(const wire::FrameHeader& h, const uint8_t* body) {
  if (h.type == kWrite || h.type == kRead || h.type == kFileWrite || h.type == kFileRead || h.type == kWriteSum ||
      h.type == kReadSum) {
    uint64_t addr, length, file_id;
    return decodeRange(h, body, h.body_len, addr, length, &file_id);
  }
  if (isVector(h.type)) {
    size_t count;
    FERRY_RETURN_IF_ERROR(decodeRangesHead(h, body, count));
    Range ranges[kMaxRanges];
    uint64_t total;
    return decodeRanges(h, body + kRangesHeadSize, count, ranges, total);
  }
  return wire::checkControlBody(h, body);
}

}  // namespace ferry::tcp_wire
