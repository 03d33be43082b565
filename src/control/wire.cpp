#include "control/wire.h"

#include <cstdio>
#include <utility>

#include "common/endian.h"

namespace ferry::wire {

Status MessageTable::define(MsgType type, const MessageSpec& spec) {
  const auto t = static_cast<uint16_t>(type);
  if (t < 1 || t > kMaxMessageType)
    return Status::InvalidArgument("message type " + std::to_string(t) + " outside 1.." +
                                   std::to_string(kMaxMessageType));
  if (!spec.name) return Status::InvalidArgument("message type " + std::to_string(t) + " needs a name");
  if (specs_[t].name)
    return Status::AlreadyExists("message type " + std::to_string(t) + " is already " + specs_[t].name);
  if (spec.request) {
    const MessageSpec* resp = find(spec.response);
    if (!resp || resp->request)
      return Status::InvalidArgument(std::string("request ") + spec.name + " needs its response defined first");
  }
  specs_[t] = spec;
  return Status::OK();
}

const MessageSpec* MessageTable::find(MsgType type) const {
  const auto t = static_cast<uint16_t>(type);
  if (t > kMaxMessageType || !specs_[t].name) return nullptr;
  return &specs_[t];
}

const char* MessageTable::name(MsgType type) const {
  const MessageSpec* s = find(type);
  return s ? s->name : "?";
}

Status MessageTable::check(const FrameHeader& h) const {
  const MessageSpec* spec = find(h.type);
  if (!spec) return Status::Corrupted("unknown message type " + std::to_string(static_cast<uint16_t>(h.type)));
  if (spec->request && (h.status != 0 || h.epoch != 0))
    return Status::Corrupted(std::string("request ") + spec->name + " with a status or epoch");
  bool fits = h.status != 0 ? !spec->request && h.body_len <= kMaxErrorBytes
                            : h.body_len >= spec->min_body && h.body_len <= spec->max_body;
  if (!fits)
    return Status::Corrupted("body length " + std::to_string(h.body_len) + " not allowed for " +
                             spec->name);
  return Status::OK();
}

void defineControlMessages(MessageTable& table) {
  // Every table starts with these, so a failure here is a programming error (tested).
  const std::pair<MsgType, MessageSpec> control[] = {
      {MsgType::kDescriptor, {"Descriptor", false, 0, kMaxDescriptorBytes}},
      {MsgType::kGetDescriptor, {"GetDescriptor", true, 0, 0, MsgType::kDescriptor}},
      {MsgType::kNotifyAck, {"NotifyAck", false, 0, 0}},
      {MsgType::kNotify, {"Notify", true, 8, kMaxNotifyBytes + 8, MsgType::kNotifyAck}},
      {MsgType::kProbeAck, {"ProbeAck", false, 0, 0}},
      {MsgType::kProbe, {"Probe", true, 0, 0, MsgType::kProbeAck}},
      {MsgType::kDigestAck, {"DigestAck", false, 8, 8}},
      {MsgType::kDigest, {"Digest", true, 16, 16, MsgType::kDigestAck}},
      {MsgType::kHelloAck, {"HelloAck", false, kHelloAckFixedBytes, kHelloAckFixedBytes + 2 * kMaxIdentityBytes}},
      {MsgType::kHello, {"Hello", true, kHelloNonceBytes, kHelloNonceBytes, MsgType::kHelloAck}},
      {MsgType::kAuthOk, {"AuthOk", false, 0, 0}},
      {MsgType::kAuthProof, {"AuthProof", true, kHelloNonceBytes, kHelloNonceBytes, MsgType::kAuthOk}},
  };
  for (const auto& [type, spec] : control) table.define(type, spec).IgnoreError();
}

MessageTable controlMessagesWith(Status (*define)(MessageTable&)) {
  MessageTable t;
  defineControlMessages(t);
  define(t).IgnoreError();
  return t;
}

const MessageTable& controlMessages() {
  static const MessageTable table = [] {
    MessageTable t;
    defineControlMessages(t);
    return t;
  }();
  return table;
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

Status decodeHeader(const uint8_t* data, size_t len, const MessageTable& table, FrameHeader& out) {
  if (len < kHeaderSize) return Status::Corrupted("truncated frame header");
  uint32_t magic = getU32(data);
  if (magic != kMagic) {
    char b[16];
    std::snprintf(b, sizeof b, "%08x", magic);
    return Status::Corrupted(std::string("bad magic 0x") + b);
  }
  uint16_t version = getU16(data + 4);
  if (version != kVersion)
    return Status::Corrupted("unsupported protocol version " + std::to_string(version));
  FrameHeader h;
  h.type = static_cast<MsgType>(getU16(data + 6));
  h.body_len = getU32(data + 8);
  h.status = getU32(data + 12);
  h.request_id = getU64(data + 16);
  h.epoch = getU64(data + 24);
  if (h.status > static_cast<uint32_t>(Status::Code::kInternalError))
    return Status::Corrupted("unknown status code " + std::to_string(h.status));
  FERRY_RETURN_IF_ERROR(table.check(h));
  out = h;
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

std::string encodeDigest(uint64_t addr, uint64_t length) {
  std::string out(16, '\0');
  putU64(reinterpret_cast<uint8_t*>(out.data()), addr);
  putU64(reinterpret_cast<uint8_t*>(out.data()) + 8, length);
  return out;
}

Status decodeDigest(std::string_view body, uint64_t& addr, uint64_t& length) {
  if (body.size() != 16) return Status::Corrupted("digest request of " + std::to_string(body.size()) + " bytes");
  addr = getU64(reinterpret_cast<const uint8_t*>(body.data()));
  length = getU64(reinterpret_cast<const uint8_t*>(body.data()) + 8);
  if (length == 0 || length > kMaxDigestBytes)
    return Status::Corrupted("digest length " + std::to_string(length) + " out of bounds");
  if (addr + length < addr) return Status::Corrupted("digest range wraps around the address space");
  return Status::OK();
}

Status checkControlBody(const FrameHeader& h, const uint8_t* body) {
  if (h.type == MsgType::kDigest) {
    uint64_t addr, length;
    return decodeDigest({reinterpret_cast<const char*>(body), h.body_len}, addr, length);
  }
  if (h.type != MsgType::kNotify) return Status::OK();
  Notification n;
  return decodeNotify({reinterpret_cast<const char*>(body), h.body_len}, n);
}

Status parseFrames(const uint8_t* data, size_t len, const MessageTable& table,
                   BodyChecker check_body, size_t* frames_out) {
  size_t frames = 0;
  while (len > 0) {
    FrameHeader h;
    FERRY_RETURN_IF_ERROR(decodeHeader(data, len, table, h));
    data += kHeaderSize;
    len -= kHeaderSize;
    if (h.body_len > len) return Status::Corrupted("truncated frame body");
    if (h.status == 0 && check_body) FERRY_RETURN_IF_ERROR(check_body(h, data));
    data += h.body_len;
    len -= h.body_len;
    ++frames;
  }
  if (frames_out) *frames_out = frames;
  return Status::OK();
}

}  // namespace ferry::wire
