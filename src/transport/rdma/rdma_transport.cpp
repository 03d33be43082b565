#include "transport/rdma/rdma_transport.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "transport/rdma/rdma_gid.h"
#include "transport/rdma/rdma_peer.h"

namespace ferry {

using json = nlohmann::json;
using rdma::RdmaDevice;

namespace {
// "cpu:1" -> 1; other locations -> -1 (no preference).
int numaOfLocation(const std::string& location) {
  if (location.rfind("cpu:", 0) != 0) return -1;
  try {
    return std::stoi(location.substr(4));
  } catch (...) {
    return -1;
  }
}

// "mlx5_0,mlx5_1:2" -> {name, port}; empty for "" (every device, port 1).
std::vector<std::pair<std::string, uint8_t>> parseDeviceList(const std::string& text) {
  std::vector<std::pair<std::string, uint8_t>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(std::remove_if(item.begin(), item.end(), [](char c) { return c == ' ' || c == '\t'; }), item.end());
    if (!item.empty()) {
      uint8_t port = 1;
      if (size_t colon = item.find(':'); colon != std::string::npos) {
        port = static_cast<uint8_t>(std::clamp(std::atoi(item.c_str() + colon + 1), 1, 255));
        item.resize(colon);
      }
      out.emplace_back(item, port);
    }
    start = end + 1;
  }
  return out;
}
}  // namespace

RdmaTransport::RdmaTransport() = default;

RdmaTransport::~RdmaTransport() { stop(); }

void RdmaTransport::declareOptions(OptionTable& t) {
  t.text("provider", "system",
         "where verbs come from: system = libibverbs.so.1, loaded at run time (tests register an emulation)");
  t.text("devices", "", "NICs to use, comma-separated name[:port] (\"\": every device whose port 1 is ACTIVE)");
  t.integer("gid_index", -1, -1, 255,
            "GID table index; -1 chooses (RoCEv2 IPv4-mapped with a netdev first)");
  t.integer("mtu", 4096, 256, 4096, "path MTU upper bound in bytes; a path uses the smaller of both ends'");
  t.integer("qps_per_path", 2, 1, static_cast<int64_t>(rdma_wire::kMaxQpsPerPath),
            "RC queue pairs per path (one of our NICs to one of the peer's)");
  t.integer("max_qp_wr", 256, 16, 16384, "send queue depth of each queue pair");
  t.integer("max_cqe", 4096, 64, 1 << 22, "completion queue entries per NIC: work requests in flight on it");
  t.integer("signal_every", 16, 1, 1024, "ask for a completion every this many work requests (and for the last of each post)");
  t.integer("post_batch", 32, 1, 64, "work requests chained per doorbell");
  t.integer("slice_size", 256 << 10, 4096, 64 << 20, "requests are cut into slices of this size (striping unit over NICs)");
  t.integer("max_qps", 16384, 1, 1 << 22,
            "queue pairs per NIC, ours and those held for peers' paths to us; past it idle paths close, then the oldest peers'");
  t.integer("qp_timeout", 14, 1, 31, "ACK timeout exponent: 4.096 us x 2^N before a retry");
  t.integer("retry_cnt", 7, 0, 7, "NIC retransmissions before a path fails");
  t.integer("rnr_retry", 7, 0, 7, "receiver-not-ready retries (7: infinite)");
  t.integer("path_cooldown_ms", 1000, 0, 3600000,
            "a NIC pair whose path failed is not used for this long, doubling while it keeps failing");
  t.integer("path_cooldown_max_ms", 60000, 0, 3600000, "upper bound of the pause of a failing NIC pair");
  t.integer("max_resends", 3, 0, 16, "re-posts of a slice on other paths before the engine fails it over");
}

TransportCaps RdmaTransport::caps() const {
  double gbps = 0;
  for (const auto& d : devices_) gbps += d->speedGbps();
  return {.remote_kinds = kHostMemory,
          .reaches_self = false,
          .reaches_same_machine = true,
          .reaches_remote = true,
          .latency_us = 5,
          .bandwidth_GBps = gbps > 0 ? gbps / 8 : 12};
}

Status RdmaTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  options_.provider = c.get<std::string>("transports/rdma/provider");
  options_.devices = c.get<std::string>("transports/rdma/devices");
  options_.gid_index = c.get<int>("transports/rdma/gid_index");
  options_.mtu = c.get<int>("transports/rdma/mtu");
  options_.path.qps = static_cast<uint32_t>(c.get<int>("transports/rdma/qps_per_path"));
  options_.path.max_wr = static_cast<uint32_t>(c.get<int>("transports/rdma/max_qp_wr"));
  options_.path.signal_every = static_cast<uint32_t>(c.get<int>("transports/rdma/signal_every"));
  options_.path.post_batch = static_cast<uint32_t>(c.get<int>("transports/rdma/post_batch"));
  options_.path.timeout = static_cast<uint8_t>(c.get<int>("transports/rdma/qp_timeout"));
  options_.path.retry_cnt = static_cast<uint8_t>(c.get<int>("transports/rdma/retry_cnt"));
  options_.path.rnr_retry = static_cast<uint8_t>(c.get<int>("transports/rdma/rnr_retry"));
  options_.max_cqe = c.get<int>("transports/rdma/max_cqe");
  options_.max_qps = c.get<uint64_t>("transports/rdma/max_qps");
  options_.cooldown_ms = c.get<int64_t>("transports/rdma/path_cooldown_ms");
  options_.cooldown_max_ms = std::max(options_.cooldown_ms, c.get<int64_t>("transports/rdma/path_cooldown_max_ms"));
  options_.max_resends = static_cast<uint8_t>(c.get<int>("transports/rdma/max_resends"));
  options_.connect_timeout_ms = c.get<int>("connect_timeout_ms");
  options_.spin_us = c.get<bool>("polling") ? c.get<int>("polling_spin_us") : 0;
  slice_size_ = c.get<uint64_t>("transports/rdma/slice_size");

  // The handshake is defined whether or not we have NICs: a peer asking gets a clear answer.
  const wire::MessageTable& m = rdma_wire::messages();
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(rdma_wire::kRdmaConnectAck, *m.find(rdma_wire::kRdmaConnectAck), nullptr));
  FERRY_RETURN_IF_ERROR(ctx.defineMessage(rdma_wire::kRdmaConnect, *m.find(rdma_wire::kRdmaConnect),
                                          [this](const wire::FrameHeader& h, ServerConnection& conn) {
                                            return serveConnect(h, conn);
                                          }));
  stopping_ = false;
  Status st = rdma::loadVerbs(options_.provider, verbs_);
  if (st.ok()) st = openDevices();
  if (!st.ok()) {
    // The common case on machines without RDMA: the engine runs on its other transports.
    inert_reason_ = st.message();
    devices_.clear();
    FERRY_LOG(INFO) << "rdma: inert (" << inert_reason_ << ")";
    return Status::OK();
  }
  inert_reason_.clear();
  rpc_ = std::make_unique<RpcClient>(options_.connect_timeout_ms, ctx.authToken(), 4, &rdma_wire::messages());
  for (auto& d : devices_) d->start();
  return Status::OK();
}

Status RdmaTransport::openDevices() {
  const rdma::VerbsApi& v = *verbs_;
  int n = 0;
  ibv_device** list = v.get_device_list(&n);
  if (!list)
    return Status::NotSupported(errno == ENOSYS ? std::string("no RDMA devices (no RDMA support in this kernel)")
                                                : std::string("no RDMA devices (") + std::strerror(errno) + ")");
  const auto wanted = parseDeviceList(options_.devices);
  std::string skipped;
  for (int i = 0; i < n; ++i) {
    const std::string name = v.get_device_name(list[i]);
    uint8_t port = 1;
    if (!wanted.empty()) {
      auto it = std::find_if(wanted.begin(), wanted.end(), [&](auto& w) { return w.first == name; });
      if (it == wanted.end()) continue;
      port = it->second;
    }
    rdma::DeviceOptions o;
    o.port = port;
    o.gid_index = options_.gid_index;
    o.mtu_bytes = options_.mtu;
    o.max_cqe = options_.max_cqe;
    o.spin_us = options_.spin_us;
    auto dev = std::make_unique<RdmaDevice>(verbs_, name);
    Status st = dev->open(list[i], o);
    if (!st.ok()) {
      FERRY_LOG(WARN) << "rdma: skipping " << st.message();
      skipped += (skipped.empty() ? "" : "; ") + st.message();
      continue;
    }
    const rdma::PortAddress& a = dev->address();
    FERRY_LOG(INFO) << "rdma: " << name << " port " << int(port) << ": gid[" << int(a.gid_index) << "] "
                    << rdma::gidText(a.gid) << " (" << dev->gidReason() << "), lid " << a.lid << ", mtu "
                    << rdma::mtuBytes(dev->activeMtu()) << ", numa " << dev->numaNode() << ", "
                    << dev->speedGbps() << " Gb/s";
    devices_.push_back(std::move(dev));
  }
  v.free_device_list(list);
  for (auto& w : wanted)
    if (std::none_of(devices_.begin(), devices_.end(), [&](auto& d) { return d->name() == w.first; }) &&
        skipped.find(w.first) == std::string::npos)
      skipped += (skipped.empty() ? "" : "; ") + w.first + ": no such device";
  if (devices_.empty())
    return Status::NotSupported(n == 0 ? "no RDMA devices" : "no usable RDMA device (" + skipped + ")");
  return Status::OK();
}

void RdmaTransport::stop() {
  if (stopping_.exchange(true)) return;
  if (devices_.empty()) return;
  // Every path to ERR: what is in flight flushes and completes as CANCELED.
  for (auto& peer : endpoints_.live()) peer->cancel();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(options_.path.drain_ns) +
                        std::chrono::milliseconds(500);
  auto busy = [&] {
    for (auto& d : devices_)
      if (d->qpCount() > 0) return true;
    return false;
  };
  {
    std::map<std::string, PassivePath> passive;
    {
      std::lock_guard lock(passive_mu_);
      passive.swap(passive_);
      passive_qps_ = 0;
    }
    for (auto& [key, p] : passive) destroyPassive(p);
  }
  while (busy() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (auto& d : devices_) d->stopThread();
  {
    std::unique_lock lock(mr_mu_);
    for (auto& [base, b] : mrs_)
      for (ibv_mr* mr : b.mrs)
        if (mr) verbs_->dereg_mr(mr);
    mrs_.clear();
  }
  for (auto& d : devices_) d->close();
  if (rpc_) rpc_->shutdown();
}

bool RdmaTransport::canReach(const PeerEndpoint& peer) const {
  if (devices_.empty() || peer.is_self || peer.file || !peer.desc || !peer.desc->speaks("rdma")) return false;
  return peerHasRdmaNics(*peer.desc);
}

std::string RdmaTransport::unusableFor(const PeerEndpoint& peer) const {
  if (!devices_.empty() || peer.is_self || peer.file || !peer.desc || !peer.desc->speaks("rdma") ||
      !peerHasRdmaNics(*peer.desc))
    return "";
  return "the peer has RDMA NICs, this engine none: " + inert_reason_;
}

Status RdmaTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  if (devices_.empty()) return Status::NotSupported("rdma: " + inert_reason_);
  if (stopping_.load(std::memory_order_acquire)) return Status::Unavailable("rdma: stopped");
  out = endpoints_.get(peer.instanceKey(), [this] { return std::make_shared<RdmaPeer>(*this); });
  return Status::OK();
}

Status RdmaTransport::registerMemory(const BufferDesc& buffer, const MemoryOptions&, std::string& attrs) {
  if (devices_.empty() || stopping_.load(std::memory_order_acquire) || memoryKindOf(buffer.location) != kHostMemory)
    return Status::OK();
  int access = IBV_ACCESS_LOCAL_WRITE;
  if (buffer.perm == kGlobalReadOnly) access |= IBV_ACCESS_REMOTE_READ;
  if (buffer.perm == kGlobalReadWrite) access |= IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
  LocalBuffer lb;
  lb.length = buffer.length;
  lb.numa = numaOfLocation(buffer.location);
  json rkeys = json::array();
  bool any = false;
  for (auto& d : devices_) {
    ibv_mr* mr = verbs_->reg_mr(d->pd(), reinterpret_cast<void*>(buffer.base), buffer.length, access);
    if (!mr) {
      // Not fatal: the buffer stays usable over the other transports (the selector moves on).
      static log::RateLimit lines;
      if (lines.allow())
        FERRY_LOG(WARN) << "rdma: cannot register " << rangeText(buffer.base, buffer.length) << " with " << d->name()
                        << ": " << std::strerror(errno)
                        << (errno == ENOMEM || errno == EPERM ? " (locked-memory limit? ulimit -l)" : "")
                        << lines.suppressedNote();
      rkeys.push_back(nullptr);
    } else {
      rkeys.push_back(mr->rkey);
      any = true;
    }
    lb.mrs.push_back(mr);
  }
  if (any && buffer.perm != kLocalReadWrite) attrs = json({{"rkeys", rkeys}}).dump();
  std::unique_lock lock(mr_mu_);
  mrs_[buffer.base] = std::move(lb);
  return Status::OK();
}

Status RdmaTransport::unregisterMemory(const BufferDesc& buffer) {
  LocalBuffer lb;
  {
    std::unique_lock lock(mr_mu_);
    auto it = mrs_.find(buffer.base);
    if (it == mrs_.end()) return Status::OK();
    lb = std::move(it->second);
    mrs_.erase(it);
  }
  for (ibv_mr* mr : lb.mrs)
    if (mr) verbs_->dereg_mr(mr);
  return Status::OK();
}

bool RdmaTransport::localKeys(uint64_t addr, uint64_t len, LocalKeys& out) const {
  std::shared_lock lock(mr_mu_);
  auto it = mrs_.upper_bound(addr);
  if (it == mrs_.begin()) return false;
  --it;
  if (addr - it->first > it->second.length || len > it->second.length - (addr - it->first)) return false;
  out.base = it->first;
  out.end = it->first + it->second.length;
  out.lkeys.clear();
  for (ibv_mr* mr : it->second.mrs) out.lkeys.push_back(mr ? static_cast<int64_t>(mr->lkey) : -1);
  out.numa = it->second.numa;
  return true;
}

std::string RdmaTransport::describeLocal() const {
  if (devices_.empty()) return "";
  json devs = json::array();
  for (auto& d : devices_) devs.push_back({{"name", d->name()}, {"numa", d->numaNode()}, {"gbps", d->speedGbps()}});
  return json({{"devices", devs}}).dump();
}

std::string RdmaTransport::inspect() const {
  json j = {{"provider", options_.provider}};
  if (devices_.empty()) {
    j["inert"] = inert_reason_;
    return j.dump();
  }
  json devs = json::array();
  for (auto& d : devices_) {
    const rdma::PortAddress& a = d->address();
    devs.push_back({{"name", d->name()},
                    {"state", d->stateName()},
                    {"link", a.ib_link ? "infiniband" : "ethernet"},
                    {"gid_index", a.gid_index},
                    {"gid", rdma::gidText(a.gid)},
                    {"gid_rule", d->gidReason()},
                    {"lid", a.lid},
                    {"mtu", rdma::mtuBytes(d->activeMtu())},
                    {"numa", d->numaNode()},
                    {"gbps", d->speedGbps()},
                    {"queue_pairs", d->qpCount()}});
  }
  j["devices"] = devs;
  j["passive_queue_pairs"] = passiveQpCount();
  return j.dump();
}

size_t RdmaTransport::connectionCount() const {
  size_t n = 0;
  for (const auto& d : devices_) n += d->qpCount();
  return n;
}

size_t RdmaTransport::passiveQpCount() const {
  std::lock_guard lock(passive_mu_);
  return passive_qps_;
}

Status RdmaTransport::serveConnect(const wire::FrameHeader& h, ServerConnection& conn) {
  std::string body(h.body_len, '\0');
  FERRY_RETURN_IF_ERROR(conn.reader().readExact(body.data(), body.size()));
  rdma_wire::ConnectInfo req, reply;
  Status st = rdma_wire::decode(body, req);
  if (st.ok()) st = acceptPath(req, reply);
  if (!st.ok()) {
    if (refused_.allow())
      FERRY_LOG(WARN) << "rdma: refused a path from " << conn.peer() << ": " << st.ToString()
                      << refused_.suppressedNote();
    conn.respond(rdma_wire::kRdmaConnectAck, h.request_id, st);
    return Status::OK();
  }
  conn.respond(rdma_wire::kRdmaConnectAck, h.request_id, Status::OK(), rdma_wire::encode(reply));
  return Status::OK();
}

Status RdmaTransport::acceptPath(const rdma_wire::ConnectInfo& req, rdma_wire::ConnectInfo& reply) {
  if (devices_.empty()) return Status::NotSupported("rdma is inert here: " + inert_reason_);
  if (stopping_.load(std::memory_order_acquire)) return Status::Unavailable("rdma: shutting down");
  if (req.target_instance != ctx_->instanceId())
    return Status::Unavailable("rdma connect is for instance " + req.target_instance + ", this is " +
                               ctx_->instanceId() + " (the peer's descriptor is stale)");
  if (req.qp_nums.size() > options_.max_qps) return Status::Busy("rdma: too many queue pairs asked");
  size_t index = 0;
  while (index < devices_.size() && devices_[index]->name() != req.target_device) ++index;
  if (index == devices_.size()) return Status::NotFound("rdma: no NIC called '" + req.target_device + "' here");
  RdmaDevice& dev = *devices_[index];
  if (!dev.usable()) return Status::Unavailable("rdma: " + dev.name() + " is " + dev.stateName());
  FERRY_RETURN_IF_ERROR(makeRoom(index, req.qp_nums.size()));
  static thread_local std::mt19937 rng{std::random_device{}()};
  PassivePath path;
  path.device = index;
  reply.mtu = static_cast<uint8_t>(std::min(dev.activeMtu(), static_cast<ibv_mtu>(req.mtu)));
  Status st;
  for (size_t i = 0; i < req.qp_nums.size() && st.ok(); ++i) {
    ibv_qp* qp = nullptr;
    st = dev.createQp(options_.path.max_wr, nullptr, qp);
    if (!st.ok()) break;
    path.qps.push_back(qp);
    RdmaDevice::Connect c;
    c.remote_qpn = req.qp_nums[i];
    c.remote_psn = req.psns[i];
    c.local_psn = rng() & 0xffffff;
    c.remote_lid = req.lid;
    c.remote_gid = req.gid;
    c.mtu = static_cast<ibv_mtu>(reply.mtu);
    c.timeout = options_.path.timeout;
    c.retry_cnt = options_.path.retry_cnt;
    c.rnr_retry = options_.path.rnr_retry;
    st = dev.connectQp(qp, c);
    reply.qp_nums.push_back(qp->qp_num);
    reply.psns.push_back(c.local_psn);
  }
  if (!st.ok()) {
    destroyPassive(path);
    return st;
  }
  reply.initiator_instance = req.initiator_instance;
  reply.target_instance = req.target_instance;
  reply.initiator_device = req.initiator_device;
  reply.target_device = req.target_device;
  reply.lid = dev.address().lid;
  std::memcpy(reply.gid, dev.address().gid, 16);
  // Keep it, replacing the same initiator's earlier path between the same NICs (room for it
  // was made before the QPs were created).
  std::vector<PassivePath> gone;
  {
    std::lock_guard lock(passive_mu_);
    const std::string key = req.initiator_instance + "|" + req.initiator_device + "|" + req.target_device;
    if (auto it = passive_.find(key); it != passive_.end()) {
      passive_qps_ -= it->second.qps.size();
      gone.push_back(std::move(it->second));
      passive_.erase(it);
    }
    path.created = ++passive_seq_;
    passive_qps_ += path.qps.size();
    passive_[key] = std::move(path);
  }
  for (auto& p : gone) destroyPassive(p);
  return Status::OK();
}

Status RdmaTransport::makeRoom(size_t device, size_t count) {
  RdmaDevice& dev = *devices_[device];
  auto over = [&] { return dev.qpCount() + count > options_.max_qps ? dev.qpCount() + count - options_.max_qps : 0; };
  if (over() == 0) return Status::OK();
  dev.closeIdle(over());
  while (over() > 0) {
    PassivePath oldest;
    {
      std::lock_guard lock(passive_mu_);
      auto it = passive_.end();
      for (auto i = passive_.begin(); i != passive_.end(); ++i)
        if (i->second.device == device && (it == passive_.end() || i->second.created < it->second.created)) it = i;
      if (it == passive_.end()) break;
      passive_qps_ -= it->second.qps.size();
      oldest = std::move(it->second);
      passive_.erase(it);
    }
    destroyPassive(oldest);  // its initiator sees errors and reconnects after a pause
  }
  if (over() == 0) return Status::OK();
  return Status::Busy("rdma: " + dev.name() + " holds " + std::to_string(dev.qpCount()) +
                      " queue pairs, all busy (transports/rdma/max_qps " + std::to_string(options_.max_qps) + ")");
}

void RdmaTransport::destroyPassive(PassivePath& p) {
  RdmaDevice& dev = *devices_[p.device];
  for (ibv_qp* qp : p.qps) {
    dev.errorQp(qp);
    dev.destroyQp(qp);
  }
  p.qps.clear();
}

}  // namespace ferry
