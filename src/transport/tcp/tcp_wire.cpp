#include "transport/tcp/tcp_wire.h"

#include <utility>

#include "common/endian.h"

namespace ferry::tcp_wire {

Status defineMessages(wire::MessageTable& table) {
  using wire::MessageSpec;
  const std::pair<MsgType, MessageSpec> messages[] = {
      {kWriteAck, {"WriteAck", false, 0, 0}},
      {kReadData, {"ReadData", false, 0, kMaxDataBytes}},
      {kWrite, {"Write", true, kRangeSize, kRangeSize + kMaxDataBytes, kWriteAck}},
      {kRead, {"Read", true, kRangeSize, kRangeSize, kReadData}},
      {kFileWrite, {"FileWrite", true, kFileRangeSize, kFileRangeSize + kMaxDataBytes, kWriteAck}},
      {kFileRead, {"FileRead", true, kFileRangeSize, kFileRangeSize, kReadData}},
  };
  for (const auto& [type, spec] : messages) FERRY_RETURN_IF_ERROR(table.define(type, spec));
  return Status::OK();
}

const wire::MessageTable& messages() {
  static const wire::MessageTable table = wire::controlMessagesWith(&defineMessages);
  return table;
}

size_t rangeSizeOf(MsgType t) {
  return t == kFileWrite || t == kFileRead ? kFileRangeSize : kRangeSize;
}

bool isWrite(MsgType t) { return t == kWrite || t == kFileWrite; }

void encodeRange(uint64_t addr, uint64_t length, uint8_t out[kRangeSize]) {
  putU64(out, addr);
  putU64(out + 8, length);
}

void encodeFileRange(uint64_t file_id, uint64_t offset, uint64_t length, uint8_t out[kFileRangeSize]) {
  putU64(out, file_id);
  encodeRange(offset, length, out + 8);
}

Status decodeRange(const wire::FrameHeader& h, const uint8_t* data, size_t len, uint64_t& addr,
                   uint64_t& length, uint64_t* file_id) {
  const size_t range_size = rangeSizeOf(h.type);
  if (len < range_size) return Status::Corrupted("truncated range");
  if (range_size == kFileRangeSize) {
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

Status checkBody(const wire::FrameHeader& h, const uint8_t* body) {
  if (h.type == kWrite || h.type == kRead || h.type == kFileWrite || h.type == kFileRead) {
    uint64_t addr, length, file_id;
    return decodeRange(h, body, h.body_len, addr, length, &file_id);
  }
  return wire::checkControlBody(h, body);
}

}  // namespace ferry::tcp_wire
