#include "transport/rdma/rdma_wire.h"

#include <algorithm>

#include "common/endian.h"

namespace ferry::rdma_wire {

namespace {
constexpr size_t kFixedBytes = 2 + 1 + 1 + 2 + 16;  // version, mtu, qp count, lid, gid
constexpr uint32_t kMax24 = (1u << 24) - 1;

void putString(std::string& out, const std::string& s) {
  out.push_back(static_cast<char>(s.size()));
  out += s;
}

// A name we will log and compare: printable ASCII, no spaces.
bool plain(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
}

struct Reader {
  std::string_view in;
  bool take(size_t n, std::string_view& out) {
    if (in.size() < n) return false;
    out = in.substr(0, n);
    in.remove_prefix(n);
    return true;
  }
  bool string(size_t max, std::string& out) {
    std::string_view len, s;
    if (!take(1, len)) return false;
    const size_t n = static_cast<uint8_t>(len[0]);
    if (n > max || !take(n, s) || !plain(s)) return false;
    out.assign(s);
    return true;
  }
};
}  // namespace

std::string encode(const ConnectInfo& info) {
  std::string out(kFixedBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  putU16(p, info.version);
  p[2] = info.mtu;
  p[3] = static_cast<uint8_t>(info.qp_nums.size());
  putU16(p + 4, info.lid);
  std::copy(info.gid, info.gid + 16, p + 6);
  putString(out, info.initiator_instance);
  putString(out, info.target_instance);
  putString(out, info.initiator_device);
  putString(out, info.target_device);
  for (size_t i = 0; i < info.qp_nums.size(); ++i) {
    uint8_t b[8];
    putU32(b, info.qp_nums[i]);
    putU32(b + 4, i < info.psns.size() ? info.psns[i] : 0);
    out.append(reinterpret_cast<char*>(b), sizeof b);
  }
  return out;
}

Status decode(std::string_view body, ConnectInfo& out) {
  out = ConnectInfo{};
  Reader r{body};
  std::string_view fixed;
  if (!r.take(kFixedBytes, fixed)) return Status::Corrupted("rdma connect: truncated");
  auto* p = reinterpret_cast<const uint8_t*>(fixed.data());
  out.version = getU16(p);
  if (out.version != kVersion)
    return Status::NotSupported("rdma connect: version " + std::to_string(out.version) + " (we speak " +
                                std::to_string(kVersion) + ")");
  out.mtu = p[2];
  if (out.mtu < 1 || out.mtu > 5) return Status::Corrupted("rdma connect: bad mtu");  // IBV_MTU_256..4096
  const size_t count = p[3];
  if (count == 0 || count > kMaxQpsPerPath) return Status::Corrupted("rdma connect: bad queue pair count");
  out.lid = getU16(p + 4);
  std::copy(p + 6, p + 22, out.gid);
  if (!r.string(kMaxInstanceBytes, out.initiator_instance) || !r.string(kMaxInstanceBytes, out.target_instance) ||
      !r.string(kMaxDeviceNameBytes, out.initiator_device) || !r.string(kMaxDeviceNameBytes, out.target_device) ||
      out.initiator_device.empty() || out.target_device.empty())
    return Status::Corrupted("rdma connect: bad name");
  for (size_t i = 0; i < count; ++i) {
    std::string_view q;
    if (!r.take(8, q)) return Status::Corrupted("rdma connect: truncated queue pairs");
    auto* b = reinterpret_cast<const uint8_t*>(q.data());
    const uint32_t qpn = getU32(b), psn = getU32(b + 4);
    if (qpn == 0 || qpn > kMax24 || psn > kMax24) return Status::Corrupted("rdma connect: bad queue pair number");
    out.qp_nums.push_back(qpn);
    out.psns.push_back(psn);
  }
  if (!r.in.empty()) return Status::Corrupted("rdma connect: trailing bytes");
  return Status::OK();
}

Status defineMessages(wire::MessageTable& table) {
  FERRY_RETURN_IF_ERROR(table.define(kRdmaConnectAck, {"RdmaConnectAck", false, 0, kMaxBodyBytes}));
  return table.define(kRdmaConnect, {"RdmaConnect", true, static_cast<uint32_t>(kFixedBytes), kMaxBodyBytes,
                                     kRdmaConnectAck});
}

const wire::MessageTable& messages() {
  static const wire::MessageTable table = wire::controlMessagesWith(&defineMessages);
  return table;
}

Status checkBody(const wire::FrameHeader& h, const uint8_t* body) {
  if ((h.type == kRdmaConnect || h.type == kRdmaConnectAck) && h.status == 0) {
    ConnectInfo info;
    return decode(std::string_view(reinterpret_cast<const char*>(body), h.body_len), info);
  }
  return wire::checkControlBody(h, body);
}

}  // namespace ferry::rdma_wire
