#include "control/wire.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "common/endian.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry::wire {

using namespace ferry::tcp_wire;
// What an engine with the tcp transport understands: the control messages and tcp's.
const MessageTable& T = tcp_wire::messages();

std::vector<uint8_t> frame(MsgType t, uint64_t id, const std::string& body, uint32_t status = 0) {
  std::vector<uint8_t> out(kHeaderSize + body.size());
  encodeHeader(FrameHeader{t, static_cast<uint32_t>(body.size()), status, id}, out.data());
  std::copy(body.begin(), body.end(), out.begin() + kHeaderSize);
  return out;
}

std::string range(uint64_t addr, uint64_t len) {
  std::string s(kRangeSize, '\0');
  encodeRange(addr, len, reinterpret_cast<uint8_t*>(s.data()));
  return s;
}

TEST(Wire, HeaderRoundTripIsLittleEndian) {
  uint8_t b[kHeaderSize];
  encodeHeader(FrameHeader{kWrite, 0x71020304, 0, 0x1122334455667788ull}, b);
  EXPECT_EQ(b[0], 'F');
  EXPECT_EQ(b[1], 'R');
  EXPECT_EQ(b[8], 0x04);  // body_len low byte first
  EXPECT_EQ(b[11], 0x71);
  EXPECT_EQ(b[16], 0x88);
  FrameHeader h;
  // 0x71020304 is too long for a write: decoding must refuse it...
  EXPECT_EQ(decodeHeader(b, sizeof b, T, h).code(), Status::Code::kCorrupted);
  // ...and accept a sane one.
  encodeHeader(FrameHeader{kWrite, 16 + 100, 0, 42}, b);
  ASSERT_TRUE(decodeHeader(b, sizeof b, T, h).ok());
  EXPECT_EQ(h.type, kWrite);
  EXPECT_EQ(h.body_len, 116u);
  EXPECT_EQ(h.request_id, 42u);
}

TEST(Wire, EpochTravelsInResponsesOnly) {
  uint8_t b[kHeaderSize];
  encodeHeader(FrameHeader{kWriteAck, 0, 0, 9, 0x0102030405060708ull}, b);
  EXPECT_EQ(b[24], 0x08);
  FrameHeader h;
  ASSERT_TRUE(decodeHeader(b, sizeof b, T, h).ok());
  EXPECT_EQ(h.epoch, 0x0102030405060708ull);
  encodeHeader(FrameHeader{MsgType::kProbe, 0, 0, 9, 5}, b);  // a request claiming one
  EXPECT_EQ(decodeHeader(b, sizeof b, T, h).code(), Status::Code::kCorrupted);
}

TEST(Wire, HeaderValidation) {
  FrameHeader h;
  auto f = frame(MsgType::kProbe, 1, "");
  ASSERT_TRUE(decodeHeader(f.data(), f.size(), T, h).ok());
  EXPECT_FALSE(decodeHeader(f.data(), kHeaderSize - 1, T, h).ok());  // truncated
  auto bad = f;
  bad[0] ^= 1;
  EXPECT_NE(decodeHeader(bad.data(), bad.size(), T, h).message().find("magic"), std::string::npos);
  bad = f;
  putU16(bad.data() + 4, 1);  // the 24-byte-header protocol of old
  EXPECT_NE(decodeHeader(bad.data(), bad.size(), T, h).message().find("version"), std::string::npos);
  bad = f;
  putU16(bad.data() + 6, 99);
  EXPECT_NE(decodeHeader(bad.data(), bad.size(), T, h).message().find("type"), std::string::npos);
  bad = f;
  putU32(bad.data() + 8, 5);  // a probe has no body
  EXPECT_FALSE(decodeHeader(bad.data(), bad.size(), T, h).ok());
  bad = f;
  putU32(bad.data() + 12, 3);  // requests carry no status
  EXPECT_FALSE(decodeHeader(bad.data(), bad.size(), T, h).ok());
  auto resp = frame(kWriteAck, 1, "", 200);  // unknown status code
  EXPECT_FALSE(decodeHeader(resp.data(), resp.size(), T, h).ok());
  resp = frame(kWriteAck, 1, std::string(100, 'e'), 5);  // error text is fine
  EXPECT_TRUE(decodeHeader(resp.data(), resp.size(), T, h).ok());
  uint8_t big[kHeaderSize];
  encodeHeader(FrameHeader{MsgType::kDescriptor, kMaxDescriptorBytes + 1, 0, 1}, big);
  EXPECT_FALSE(decodeHeader(big, sizeof big, T, h).ok());
  encodeHeader(FrameHeader{kRead, 17, 0, 1}, big);
  EXPECT_FALSE(decodeHeader(big, sizeof big, T, h).ok());
}

TEST(Wire, RangeValidation) {
  FrameHeader w{kWrite, kRangeSize + 10, 0, 1};
  uint64_t a, l;
  std::string r = range(0x1000, 10);
  ASSERT_TRUE(decodeRange(w, reinterpret_cast<const uint8_t*>(r.data()), r.size(), a, l).ok());
  EXPECT_EQ(a, 0x1000u);
  EXPECT_EQ(l, 10u);
  r = range(0x1000, 11);  // disagrees with body_len
  EXPECT_FALSE(decodeRange(w, reinterpret_cast<const uint8_t*>(r.data()), r.size(), a, l).ok());
  FrameHeader rd{kRead, kRangeSize, 0, 1};
  r = range(0x1000, 0);
  EXPECT_FALSE(decodeRange(rd, reinterpret_cast<const uint8_t*>(r.data()), r.size(), a, l).ok());
  r = range(UINT64_MAX - 2, 10);  // wraps
  EXPECT_FALSE(decodeRange(rd, reinterpret_cast<const uint8_t*>(r.data()), r.size(), a, l).ok());
  r = range(0x1000, uint64_t(kMaxDataBytes) + 1);
  EXPECT_FALSE(decodeRange(rd, reinterpret_cast<const uint8_t*>(r.data()), r.size(), a, l).ok());
}

TEST(Wire, FileRangeCarriesTheFileId) {
  uint8_t fr[kFileRangeSize];
  encodeFileRange(7, 4096, 10, fr);
  FrameHeader w{kFileWrite, kFileRangeSize + 10, 0, 1};
  uint64_t a, l, id = 0;
  ASSERT_TRUE(decodeRange(w, fr, sizeof fr, a, l, &id).ok());
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(a, 4096u);
  EXPECT_EQ(l, 10u);
  EXPECT_FALSE(decodeRange(w, fr, sizeof fr, a, l).ok());  // no place for the id: refused
  FrameHeader bad{kFileWrite, kRangeSize + 10, 0, 1};  // memory-sized body
  EXPECT_FALSE(decodeRange(bad, fr, sizeof fr, a, l, &id).ok());
  uint8_t hb[kHeaderSize];
  FrameHeader h;
  encodeHeader(FrameHeader{kFileRead, kRangeSize, 0, 1}, hb);  // too short for a file read
  EXPECT_FALSE(decodeHeader(hb, sizeof hb, T, h).ok());
  encodeHeader(FrameHeader{kFileRead, kFileRangeSize, 0, 1}, hb);
  EXPECT_TRUE(decodeHeader(hb, sizeof hb, T, h).ok());
  EXPECT_EQ(rangeSizeOf(kFileRead), kFileRangeSize);
  EXPECT_EQ(rangeSizeOf(kRead), kRangeSize);
}

// A type is defined once: a transport cannot take over another's message, and types outside
// the table's range are refused instead of landing in someone else's slot.
TEST(Wire, MessageTypesAreDefinedOnceWithinBounds) {
  MessageTable t;
  defineControlMessages(t);
  MessageSpec resp{"Resp", false, 0, 0};
  EXPECT_TRUE(t.define(MsgType{20}, resp).ok());
  EXPECT_TRUE(t.define(MsgType{21}, MessageSpec{"Req", true, 0, 8, MsgType{20}}).ok());
  EXPECT_EQ(t.define(MsgType{21}, MessageSpec{"Other", true, 0, 8, MsgType{20}}).code(),
            Status::Code::kAlreadyExists);
  EXPECT_EQ(t.define(MsgType::kProbe, MessageSpec{"Mine", true, 0, 0, MsgType{20}}).code(),
            Status::Code::kAlreadyExists);  // the control plane's
  EXPECT_TRUE(t.define(MsgType{0}, resp).IsInvalidArgument());
  EXPECT_TRUE(t.define(MsgType{kMaxMessageType + 1}, resp).IsInvalidArgument());
  EXPECT_TRUE(t.define(MsgType{17}, resp).ok());  // 17 is its own slot, not 1's
  EXPECT_STREQ(t.name(MsgType::kGetDescriptor), "GetDescriptor");
  EXPECT_TRUE(t.define(MsgType{30}, MessageSpec{"NoResponse", true, 0, 0, MsgType{31}}).IsInvalidArgument());
  // tcp's messages on a table that has them already: refused, whole.
  EXPECT_EQ(tcp_wire::defineMessages(t).code(), Status::Code::kOk);
  EXPECT_EQ(tcp_wire::defineMessages(t).code(), Status::Code::kAlreadyExists);
  // A frame of a type this side does not define is refused by the decoder.
  uint8_t b[kHeaderSize];
  encodeHeader(FrameHeader{kWrite, kRangeSize + 1, 0, 1}, b);
  FrameHeader h;
  EXPECT_TRUE(decodeHeader(b, sizeof b, controlMessages(), h).message().find("unknown message type") !=
              std::string::npos);
}

TEST(Wire, NotifyRoundTripAndValidation) {
  Notification n{"sender", std::string("payload\0with zero", 17)};
  std::string body = encodeNotify(n);
  Notification m;
  ASSERT_TRUE(decodeNotify(body, m).ok());
  EXPECT_EQ(m.name, n.name);
  EXPECT_EQ(m.msg, n.msg);
  EXPECT_FALSE(decodeNotify(body.substr(0, body.size() - 1), m).ok());
  std::string lying = body;
  putU32(reinterpret_cast<uint8_t*>(lying.data()), 1000);  // name longer than the body
  EXPECT_FALSE(decodeNotify(lying, m).ok());
  EXPECT_FALSE(decodeNotify("abc", m).ok());
}

TEST(Wire, StatusMapping) {
  EXPECT_TRUE(fromWire(0, "").ok());
  Status s = fromWire(toWire(Status::PermissionDenied("x")), "read-only");
  EXPECT_EQ(s.code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "read-only");
  EXPECT_EQ(fromWire(250, "").code(), Status::Code::kCorrupted);
}

TEST(Wire, ParseFramesAcceptsValidStream) {
  std::vector<uint8_t> all;
  for (auto& f : {frame(MsgType::kProbe, 1, ""), frame(kWrite, 2, range(0x10, 3) + "abc"),
                  frame(MsgType::kNotify, 3, encodeNotify({"a", "b"})),
                  frame(kRead, 4, range(0x10, 3))})
    all.insert(all.end(), f.begin(), f.end());
  size_t n = 0;
  ASSERT_TRUE(parseFrames(all.data(), all.size(), T, tcp_wire::checkBody, &n).ok());
  EXPECT_EQ(n, 4u);
}

// The decoder must survive arbitrary bytes: random buffers, valid frames cut short, and
// valid frames with random bytes flipped. Bounded so the suite stays fast; the libFuzzer
// target (tests/fuzz) runs the same entry point for as long as you like.
TEST(Wire, SurvivesRandomAndTruncatedInput) {
  std::mt19937_64 rng(12345);
  std::vector<std::vector<uint8_t>> seeds = {
      frame(kWrite, 2, range(0x10, 5) + "hello"),
      frame(MsgType::kNotify, 3, encodeNotify({"name", "message"})),
      frame(kReadData, 4, std::string(32, 'x')),
      frame(MsgType::kDescriptor, 5, "{}")};
  size_t accepted = 0, rejected = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    std::vector<uint8_t> buf;
    int kind = iter % 3;
    if (kind == 0) {
      buf.resize(rng() % 96);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
    } else {
      buf = seeds[rng() % seeds.size()];
      if (kind == 1) {
        buf.resize(rng() % (buf.size() + 1));
      } else {
        for (int k = 0; k < 3; ++k) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
      }
    }
    Status st = parseFrames(buf.data(), buf.size(), T, tcp_wire::checkBody);
    (st.ok() ? accepted : rejected)++;
  }
  EXPECT_GT(rejected, 100000u);  // it really rejects garbage
  EXPECT_GT(accepted, 0u);       // and keeps what is still valid
}

}  // namespace ferry::wire
