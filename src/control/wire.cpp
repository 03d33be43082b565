#include "control/wire.h"

#include "common/endian.h"

namespace ferry::wire {

bool isRequest(MsgType t) {
  switch (t) {
    case MsgType::kGetDescriptor:
    case MsgType::kNotify:
    case MsgType::kProbe:
    case MsgType::kWrite:
    case MsgType::kRead:
    case MsgType::kFileWrite:
    case MsgType::kFileRead:
      return true;
    default:
      return false;
  }
}

size_t rangeSizeOf(MsgType t) {
  return t == MsgType::kFileWrite || t == MsgType::kFileRead ? kFileRangeSize : kRangeSize;
}

const char* typeName(MsgType t) {
  switch (t) {
    case MsgType::kGetDescriptor: return "GetDescriptor";
    case MsgType::kDescriptor: return "Descriptor";
    case MsgType::kNotify: return "Notify";
    case MsgType::kNotifyAck: return "NotifyAck";
    case MsgType::kProbe: return "Probe";
    case MsgType::kProbeAck: return "ProbeAck";
    case MsgType::kWrite: return "Write";
    case MsgType::kWriteAck: return "WriteAck";
    case MsgType::kRead: return "Read";
    case MsgType::kReadData: return "ReadData";
    case MsgType::kFileWrite: return "FileWrite";
    case MsgType::kFileRead: return "FileRead";
  }
  return "?";
}

void encodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  putU32(out, kMagic);
  putU16(out + 4, kVersion);
  putU16(out + 6, static_cast<uint16_t>(h.type));
  putU32(out + 8, h.body_len);
  putU32(out + 12, h.status);
  putU64(out + 16, h.request_id);
  putU64(out + 24, h.epoch);
}

namespace {

// Largest body each type may carry; error responses may carry kMaxErrorBytes of text.
bool bodyLenAllowed(MsgType t, uint32_t status, uint32_t len) {
  if (status != 0) return !isRequest(t) && len <= kMaxErrorBytes;
  switch (t) {
    case MsgType::kGetDescriptor:
    case MsgType::kProbe:
    case MsgType::kProbeAck:
    case MsgType::kNotifyAck:
    case MsgType::kWriteAck:
      return len == 0;
    case MsgType::kDescriptor: return len <= kMaxDescriptorBytes;
    case MsgType::kNotify: return len >= 8 && len <= kMaxNotifyBytes + 8;
    case MsgType::kWrite: return len >= kRangeSize && len - kRangeSize <= kMaxDataBytes;
    case MsgType::kRead: return len == kRangeSize;
    case MsgType::kReadData: return len <= kMaxDataBytes;
    case MsgType::kFileWrite: return len >= kFileRangeSize && len - kFileRangeSize <= kMaxDataBytes;
    case MsgType::kFileRead: return len == kFileRangeSize;
  }
  return false;
}

}  // namespace

Status decodeHeader(const uint8_t* data, size_t len, FrameHeader& out) {
  if (len < kHeaderSize) return Status::Corrupted("truncated frame header");
  uint32_t magic = getU32(data);
  if (magic != kMagic) return Status::Corrupted("bad magic 0x" + [&] {
      char b[16];
      snprintf(b, sizeof b, "%08x", magic);
      return std::string(b);
    }());
  uint16_t version = getU16(data + 4);
  if (version != kVersion)
    return Status::Corrupted("unsupported protocol version " + std::to_string(version));
  uint16_t type = getU16(data + 6);
  if (type < static_cast<uint16_t>(MsgType::kGetDescriptor) ||
      type > static_cast<uint16_t>(MsgType::kFileRead))
    return Status::Corrupted("unknown message type " + std::to_string(type));
  FrameHeader h;
  h.type = static_cast<MsgType>(type);
  h.body_len = getU32(data + 8);
  h.status = getU32(data + 12);
  h.request_id = getU64(data + 16);
  h.epoch = getU64(data + 24);
  if (isRequest(h.type) && (h.status != 0 || h.epoch != 0))
    return Status::Corrupted(std::string("request ") + typeName(h.type) +
                             " with a status or epoch");
  if (h.status > static_cast<uint32_t>(Status::Code::kInternalError))
    return Status::Corrupted("unknown status code " + std::to_string(h.status));
  if (!bodyLenAllowed(h.type, h.status, h.body_len))
    return Status::Corrupted(std::string("body length ") + std::to_string(h.body_len) +
                             " not allowed for " + typeName(h.type));
  out = h;
  return Status::OK();
}

void encodeRange(uint64_t addr, uint64_t length, uint8_t out[kRangeSize]) {
  putU64(out, addr);
  putU64(out + 8, length);
}

void encodeFileRange(uint64_t file_id, uint64_t offset, uint64_t length, uint8_t out[kFileRangeSize]) {
  putU64(out, file_id);
  encodeRange(offset, length, out + 8);
}

Status decodeRange(const FrameHeader& h, const uint8_t* data, size_t len, uint64_t& addr,
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
  bool write = h.type == MsgType::kWrite || h.type == MsgType::kFileWrite;
  if (write && h.body_len != range_size + length)
    return Status::Corrupted("write length disagrees with frame length");
  return Status::OK();
}

std::string encodeNotify(const Notification& n) {
  std::string out(8 + n.name.size() + n.msg.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  putU32(p, static_cast<uint32_t>(n.name.size()));
  std::copy(n.name.begin(), n.name.end(), out.begin() + 4);
  putU32(p + 4 + n.name.size(), static_cast<uint32_t>(n.msg.size()));
  std::copy(n.msg.begin(), n.msg.end(), out.begin() + 8 + static_cast<long>(n.name.size()));
  return out;
}

Status decodeNotify(std::string_view body, Notification& out) {
  auto* p = reinterpret_cast<const uint8_t*>(body.data());
  if (body.size() < 8) return Status::Corrupted("truncated notification");
  uint64_t name_len = getU32(p);
  if (name_len > body.size() - 8) return Status::Corrupted("notification name overruns body");
  uint64_t msg_len = getU32(p + 4 + name_len);
  if (8 + name_len + msg_len != body.size())
    return Status::Corrupted("notification lengths disagree with body");
  out.name.assign(body.data() + 4, name_len);
  out.msg.assign(body.data() + 8 + name_len, msg_len);
  return Status::OK();
}

uint32_t toWire(const Status& s) { return static_cast<uint32_t>(s.code()); }

Status fromWire(uint32_t code, std::string_view message) {
  if (code == 0) return Status::OK();
  if (code > static_cast<uint32_t>(Status::Code::kInternalError))
    return Status::Corrupted("peer sent unknown status code " + std::to_string(code));
  return Status(static_cast<Status::Code>(code), message);
}

Status parseFrames(const uint8_t* data, size_t len, size_t* frames_out) {
  size_t frames = 0;
  while (len > 0) {
    FrameHeader h;
    FERRY_RETURN_IF_ERROR(decodeHeader(data, len, h));
    data += kHeaderSize;
    len -= kHeaderSize;
    if (h.body_len > len) return Status::Corrupted("truncated frame body");
    if (h.status == 0) {
      if (h.type == MsgType::kWrite || h.type == MsgType::kRead || h.type == MsgType::kFileWrite ||
          h.type == MsgType::kFileRead) {
        uint64_t addr, length, file_id;
        FERRY_RETURN_IF_ERROR(decodeRange(h, data, h.body_len, addr, length, &file_id));
      } else if (h.type == MsgType::kNotify) {
        Notification n;
        FERRY_RETURN_IF_ERROR(
            decodeNotify({reinterpret_cast<const char*>(data), h.body_len}, n));
      }
    }
    data += h.body_len;
    len -= h.body_len;
    ++frames;
  }
  if (frames_out) *frames_out = frames;
  return Status::OK();
}

}  // namespace ferry::wire
