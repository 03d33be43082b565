#include "transport/tcp/tcp_transport.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "common/net.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry {

// One peer instance's connections.
class TcpEndpoint : public Endpoint {
 public:
  explicit TcpEndpoint(TcpTransport& transport) : transport_(transport) {}
  ~TcpEndpoint() override { abortAll(Status::Canceled("the peer's endpoint was released")); }

  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override { abortAll(Status::Canceled("transfers to the peer were canceled")); }
  void checkDeadlines(int64_t now_ns) {
    std::lock_guard lock(mu_);
    for (auto& c : conns_) c->checkDeadline(now_ns);
  }
  // Aborts every connection (their slices complete with `why`) and hands them over to be joined.
  void abortAll(const Status& why) {
    std::vector<std::shared_ptr<TcpConnection>> all;
    {
      std::lock_guard lock(mu_);
      all.swap(conns_);
    }
    for (auto& c : all) c->abort(why);
    if (!all.empty()) transport_.bury(std::move(all));
  }

 private:
  // Live connections to the peer, connecting up to connections_per_peer. Connects under
  // mu_: submits to this peer wait for them (≤ connect_timeout_ms each), others do not.
  Status connections(const PeerEndpoint& peer, std::vector<std::shared_ptr<TcpConnection>>& out);

  TcpTransport& transport_;
  std::mutex mu_;
  std::vector<std::shared_ptr<TcpConnection>> conns_;
};

Status TcpEndpoint::connections(const PeerEndpoint& peer, std::vector<std::shared_ptr<TcpConnection>>& out) {
  if (transport_.stopping_) return Status::Canceled("engine is shutting down");
  const TcpTransport::Options& o = transport_.options_;
  std::vector<std::shared_ptr<TcpConnection>> dead;
  Status st;
  bool other_instance = false;  // told to the engine after mu_ (it takes the segment table's lock)
  {
    std::lock_guard lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->dead()) {
        dead.push_back(*it);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    // This runs on every submit: the options (a std::function among them) are built only
    // when a connection is to be made.
    while (conns_.size() < o.connections_per_peer) {
      TcpConnection::Options copts;
      copts.inline_send_bytes = o.inline_send_bytes;
      copts.transfer_timeout_ms = o.transfer_timeout_ms;
      copts.spin_us = o.spin_us;
      copts.rcvlowat_bytes = o.rcvlowat_bytes;
      copts.on_epoch = [ctx = transport_.ctx_, host = peer.host, port = peer.port](uint64_t epoch) {
        ctx->onPeerEpoch(host, port, epoch);
      };
      copts.token = transport_.ctx_->authToken();
      if (peer.desc) {
        copts.expect_name = peer.desc->name;
        copts.expect_instance = peer.desc->instance_id;
      }
      std::shared_ptr<TcpConnection> c;
      Status opened = TcpConnection::open(peer.host, peer.port, o.connect_timeout_ms, copts, c, &other_instance);
      if (!opened.ok()) {
        if (conns_.empty()) st = Status(opened.code(), "segment '" + peer.segment_name + "': " + opened.message());
        break;  // serve with the connections we have
      }
      conns_.push_back(std::move(c));
    }
    out = conns_;
  }
  if (!dead.empty()) transport_.bury(std::move(dead));
  if (other_instance) transport_.ctx_->onPeerEpoch(peer.host, peer.port, kPeerGone);
  return st;
}

Status TcpEndpoint::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  std::vector<std::shared_ptr<TcpConnection>> conns;
  FERRY_RETURN_IF_ERROR(connections(peer, conns));
  const uint32_t file_id = peer.file ? peer.file->id : 0;  // the target does a file's I/O
  for (size_t i = 0; i < count; ++i) slices[i]->file_id = file_id;
  if (conns.size() == 1) {
    conns[0]->enqueue(slices, count);
    return Status::OK();
  }
  // Spread by bytes: each slice goes to the connection with the least work assigned.
  std::vector<std::vector<Slice*>> per(conns.size());
  std::vector<uint64_t> load(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) load[i] = conns[i]->load();
  for (size_t i = 0; i < count; ++i) {
    size_t best = std::min_element(load.begin(), load.end()) - load.begin();
    per[best].push_back(slices[i]);
    load[best] += slices[i]->length + 256;  // + per-message cost, so tiny slices spread too
  }
  for (size_t i = 0; i < conns.size(); ++i)
    if (!per[i].empty()) conns[i]->enqueue(per[i].data(), per[i].size());
  return Status::OK();
}

TcpTransport::TcpTransport() = default;
TcpTransport::~TcpTransport() { stop(); }

void TcpTransport::declareOptions(OptionTable& t) {
  t.integer("connections_per_peer", 0, 0, 64, "0 = auto: half the cores, 2..4 (1 on one core)");
  t.integer("slice_size", 1 << 20, 4096, tcp_wire::kMaxDataBytes, "requests are cut into slices of this size");
  t.integer("max_slice_size", tcp_wire::kMaxDataBytes, 4096, tcp_wire::kMaxDataBytes,
            "upper bound of `slice_size`");
  t.integer("inline_send_bytes", 256 << 10, 0, INT64_MAX,
            "the submitting thread sends up to this much itself (no thread wake-up)");
  t.integer("rcvlowat_bytes", 512 << 10, 0, 64 << 20,
            "payloads are received with a low-water mark of up to this much (fewer wake-ups); 0 = off");
  t.integer("file_bounce_bytes", 128 << 20, tcp_wire::kMaxDataBytes, 1ll << 40,
            "memory for serving peers' file I/O, shared by all connections (a quarter stays cached)");
}

TransportCaps TcpTransport::caps() const {
  return {.remote_kinds = kHostMemory | kFileData,  // the target does a file's I/O
          .reaches_self = true,
          .reaches_same_machine = true,
          .reaches_remote = true,
          .latency_us = 30,
          .bandwidth_GBps = 4};
}

Status TcpTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  const Config& c = ctx.config();
  // 0 = auto. One loopback or NIC stream is bound by its sender's core (copy, send path and,
  // on loopback, the receive softirq); two streams gained 10-90 % on 2 cores in
  // bench/tcp_vs_iperf.sh, more than two gained nothing there. Each costs a sender and a
  // receiver thread per side, so more only with cores to run them.
  int64_t conns = c.get<int64_t>("transports/tcp/connections_per_peer");
  if (conns <= 0) {
    const int64_t cores = std::thread::hardware_concurrency();
    conns = cores >= 2 ? std::clamp<int64_t>(cores / 2, 2, 4) : 1;
  }
  options_.connections_per_peer = static_cast<size_t>(conns);
  options_.inline_send_bytes = c.get<uint64_t>("transports/tcp/inline_send_bytes");
  options_.connect_timeout_ms = c.get<int>("connect_timeout_ms");
  options_.transfer_timeout_ms = c.get<int64_t>("transfer_timeout_ms");
  options_.spin_us = c.get<bool>("polling") ? c.get<int>("polling_spin_us") : 0;
  options_.rcvlowat_bytes = c.get<uint64_t>("transports/tcp/rcvlowat_bytes");
  slice_size_ = std::min(c.get<uint64_t>("transports/tcp/slice_size"),
                         c.get<uint64_t>("transports/tcp/max_slice_size"));
  FERRY_RETURN_IF_ERROR(target_.start(ctx, static_cast<uint32_t>(c.get<int64_t>("files/direct_alignment")),
                                      options_.rcvlowat_bytes,
                                      c.get<uint64_t>("transports/tcp/file_bounce_bytes"),
                                      std::chrono::milliseconds(options_.transfer_timeout_ms)));
  stopping_ = false;
  timer_ = std::thread([this] { timerLoop(); });
  return Status::OK();
}

void TcpTransport::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(timer_mu_);
    timer_cv_.notify_all();
  }
  if (timer_.joinable()) timer_.join();
  for (auto& e : endpoints_.live()) e->abortAll(Status::Canceled("engine is shutting down"));
  bury({});  // joins what the timer left
}

Status TcpTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  out = endpoints_.get(peer.instanceKey(), [this] { return std::make_shared<TcpEndpoint>(*this); });
  return Status::OK();
}

void TcpTransport::bury(std::vector<std::shared_ptr<TcpConnection>> dead) {
  {
    std::lock_guard lock(graveyard_mu_);
    graveyard_.insert(graveyard_.end(), dead.begin(), dead.end());
    if (!stopping_) return;
    dead.swap(graveyard_);
  }
  for (auto& c : dead) c->join();
}

void TcpTransport::timerLoop() {
  std::unique_lock tlock(timer_mu_);
  while (!stopping_) {
    timer_cv_.wait_for(tlock, std::chrono::milliseconds(50));
    if (stopping_) break;
    tlock.unlock();  // a leaf: the endpoints' locks are taken without it
    int64_t now = nowNs();
    for (auto& e : endpoints_.live()) e->checkDeadlines(now);
    std::vector<std::shared_ptr<TcpConnection>> reap;
    {
      std::lock_guard lock(graveyard_mu_);
      reap.swap(graveyard_);
    }
    for (auto& c : reap) c->join();
    tlock.lock();
  }
}

}  // namespace ferry
