#include "transport/tcp/tcp_transport.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "common/net.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_rails.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry {

// One peer instance's connections, one per path (tcp_rails::plan). A path whose connection
// is lost is reconnected on a later submit; one that cannot connect waits out a backoff, so a
// dead rail costs a connect attempt now and then, not one per submit. The first contact
// connects every path (each bounded by connect_timeout_ms); later, while another path works,
// reconnects run on a thread of their own: a submit never waits for a rail that died.
class TcpEndpoint : public Endpoint {
 public:
  explicit TcpEndpoint(TcpTransport& transport) : transport_(transport) {}
  ~TcpEndpoint() override {
    abortAll(Status::Canceled("the peer's endpoint was released"));
    for (auto& p : paths_) {  // without mu_: a connector takes it to finish
      if (!p.connector.joinable()) continue;
      // The engine may drop us from a connector's own call (a restarted peer): it touches
      // nothing of ours after that call, so it is let go rather than joined by itself.
      if (p.connector.get_id() == std::this_thread::get_id())
        p.connector.detach();
      else
        p.connector.join();
    }
  }

  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override;
  void cancel() override { abortAll(Status::Canceled("transfers to the peer were canceled")); }
  void checkDeadlines(int64_t now_ns) {
    std::lock_guard lock(mu_);
    for (auto& p : paths_)
      if (p.conn) p.conn->checkDeadline(now_ns);
  }
  // Aborts every connection (their slices complete with `why`) and hands them over to be joined.
  void abortAll(const Status& why) {
    std::vector<std::shared_ptr<TcpConnection>> all;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      for (auto& p : paths_)
        if (p.conn) all.push_back(std::move(p.conn));
    }
    for (auto& c : all) c->abort(why);
    if (!all.empty()) transport_.bury(std::move(all));
  }

 private:
  struct PathState {
    tcp_rails::Path path;
    std::shared_ptr<TcpConnection> conn;
    int64_t retry_at_ns = 0;  // a failed connect is not retried before this
    int64_t backoff_ms = 0;
    bool tried = false;       // a connect was attempted (the first one is inline)
    bool connecting = false;  // `connector` is connecting this path
    std::thread connector;    // the last background connect (bounded by connect_timeout_ms)
  };
  static constexpr uint8_t kMaxResends = 3;

  // Live connections to the peer, connecting the paths that have none (and are not backing
  // off): under mu_ on first contact or when no path is live (submits to this peer wait,
  // ≤ connect_timeout_ms a path; others do not), else on the path's connector thread.
  Status connections(const PeerEndpoint& peer, std::vector<std::shared_ptr<TcpConnection>>& out);
  TcpConnection::Options connectionOptions(const PeerEndpoint& peer, const tcp_rails::Path& path);
  // What a connect attempt of path `p` came to, under mu_: the connection installed, or the
  // path backing off. Returns the error for the caller, if any.
  Status settle(PathState& p, const PeerEndpoint& peer, Status opened, std::shared_ptr<TcpConnection> c);
  // A path's reconnect on its connector thread.
  void connectInBackground(size_t index, PeerEndpoint peer);
  // A lost connection's unfinished slices: re-posted on the other live connections, or
  // failed with `why` when there are none or a slice was re-posted too often.
  void resend(TcpConnection* lost, std::deque<Slice*> orphans, const Status& why);
  // Spreads slices over `conns` by bytes: each goes to the one with the least work.
  static void spread(const std::vector<std::shared_ptr<TcpConnection>>& conns, Slice* const* slices, size_t count,
                     bool may_send_inline);

  TcpTransport& transport_;
  std::mutex mu_;
  std::vector<PathState> paths_;  // planned on first use, never resized after
  bool closed_ = false;           // abortAll ran: a background connect must not install
  log::RateLimit path_logs_{5};
};

TcpConnection::Options TcpEndpoint::connectionOptions(const PeerEndpoint& peer, const tcp_rails::Path& path) {
  const TcpTransport::Options& o = transport_.options_;
  TcpConnection::Options copts;
  copts.inline_send_bytes = o.inline_send_bytes;
  copts.transfer_timeout_ms = o.transfer_timeout_ms;
  copts.spin_us = o.spin_us;
  copts.rcvlowat_bytes = o.rcvlowat_bytes;
  copts.liveness_ms = o.liveness_ms;
  copts.send_buffers = o.send_buffers;
  copts.source = path.source;
  copts.on_epoch = [ctx = transport_.ctx_, host = peer.host, port = peer.port](uint64_t epoch) {
    ctx->onPeerEpoch(host, port, epoch);
  };
  // The slices a lost connection leaves belong to tasks whose routes hold this endpoint
  // (Task::route), so it outlives the call.
  copts.on_lost = [this](TcpConnection* lost, std::deque<Slice*> orphans, const Status& why) {
    resend(lost, std::move(orphans), why);
  };
  copts.token = transport_.ctx_->authToken();
  copts.gpu = &transport_.ctx_->gpu();
  copts.live = &transport_.live_connections_;
  if (peer.desc) {
    copts.expect_name = peer.desc->name;
    copts.expect_instance = peer.desc->instance_id;
  }
  return copts;
}

Status TcpEndpoint::settle(PathState& p, const PeerEndpoint& peer, Status opened, std::shared_ptr<TcpConnection> c) {
  if (opened.ok()) {
    p.conn = std::move(c);
    p.backoff_ms = 0;
    return Status::OK();
  }
  p.backoff_ms = std::clamp<int64_t>(p.backoff_ms * 2, 100, 5000);
  p.retry_at_ns = nowNs() + p.backoff_ms * 1000000;
  if (paths_.size() > 1)
    FERRY_LOG_LIMITED(WARN, path_logs_) << "tcp path to '" << peer.segment_name << "' unavailable, retried in "
                                        << p.backoff_ms << " ms: " << opened.message();
  return Status(opened.code(), "segment '" + peer.segment_name + "': " + opened.message());
}

void TcpEndpoint::connectInBackground(size_t index, PeerEndpoint peer) {
  const TcpTransport::Options& o = transport_.options_;
  tcp_rails::Path path;
  {
    std::lock_guard lock(mu_);
    path = paths_[index].path;
  }
  std::shared_ptr<TcpConnection> c;
  bool other_instance = false;
  Status opened = TcpConnection::open(path.host, peer.port, o.connect_timeout_ms, connectionOptions(peer, path), c,
                                      &other_instance);
  {
    std::lock_guard lock(mu_);
    PathState& p = paths_[index];
    p.connecting = false;
    if (!(opened.ok() && (closed_ || transport_.stopping_)))
      settle(p, peer, opened, std::move(c)).IgnoreError();  // logged; submits use the other paths
  }
  if (c) {  // canceled while we connected
    c->abort(Status::Canceled("the peer's endpoint was closed"));
    transport_.bury({std::move(c)});
  }
  if (other_instance) transport_.ctx_->onPeerEpoch(peer.host, peer.port, kPeerGone);
}

Status TcpEndpoint::connections(const PeerEndpoint& peer, std::vector<std::shared_ptr<TcpConnection>>& out) {
  if (transport_.stopping_) return Status::Canceled("engine is shutting down");
  const TcpTransport::Options& o = transport_.options_;
  std::vector<std::shared_ptr<TcpConnection>> dead;
  std::vector<std::thread> finished;  // earlier connectors, joined after mu_
  Status st;
  bool other_instance = false;  // told to the engine after mu_ (it takes the segment table's lock)
  {
    std::lock_guard lock(mu_);
    closed_ = false;
    if (paths_.empty()) {
      std::vector<std::string> peer_rails;
      if (peer.desc) {
        auto it = peer.desc->attrs.find("tcp");
        if (it != peer.desc->attrs.end()) peer_rails = tcp_rails::parsePeer(it->second);
      }
      for (auto& p : tcp_rails::plan(o.rails, peer_rails, peer.host, o.connections_per_peer))
        paths_.push_back(PathState{std::move(p), nullptr, 0, 0, false, false, {}});
    }
    for (auto& p : paths_) {
      if (p.conn && p.conn->dead()) dead.push_back(std::move(p.conn));
      if (p.conn) out.push_back(p.conn);
    }
    const int64_t now = nowNs();
    for (size_t i = 0; i < paths_.size(); ++i) {
      PathState& p = paths_[i];
      if (p.conn || p.connecting || now < p.retry_at_ns) continue;
      if (!out.empty() && p.tried) {
        // Other paths carry this submit: reconnect this one on the side. (A first contact
        // connects every path here, so the first batches spread over all of them.)
        if (p.connector.joinable()) finished.push_back(std::move(p.connector));
        p.connecting = true;
        p.connector = std::thread([this, i, peer] { connectInBackground(i, peer); });
        continue;
      }
      p.tried = true;
      std::shared_ptr<TcpConnection> c;
      Status opened = TcpConnection::open(p.path.host, peer.port, o.connect_timeout_ms,
                                          connectionOptions(peer, p.path), c, &other_instance);
      Status result = settle(p, peer, opened, std::move(c));
      if (result.ok()) {
        out.push_back(p.conn);
      } else if (st.ok()) {
        st = result;
      }
      if (other_instance) break;  // the descriptor is stale: no path will do
    }
  }
  for (auto& t : finished) t.join();  // each had cleared `connecting`: done or about to be
  if (!dead.empty()) transport_.bury(std::move(dead));
  if (other_instance) transport_.ctx_->onPeerEpoch(peer.host, peer.port, kPeerGone);
  if (!out.empty()) return Status::OK();  // serve with the connections we have
  if (st.ok()) st = Status::Unavailable("segment '" + peer.segment_name + "': every tcp path is backing off or connecting");
  return st;
}

void TcpEndpoint::spread(const std::vector<std::shared_ptr<TcpConnection>>& conns, Slice* const* slices,
                         size_t count, bool may_send_inline) {
  if (conns.size() == 1) {
    conns[0]->enqueue(slices, count, may_send_inline);
    return;
  }
  std::vector<std::vector<Slice*>> per(conns.size());
  std::vector<uint64_t> load(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) load[i] = conns[i]->load();
  for (size_t i = 0; i < count; ++i) {
    size_t best = std::min_element(load.begin(), load.end()) - load.begin();
    per[best].push_back(slices[i]);
    load[best] += slices[i]->length + 256;  // + per-message cost, so tiny slices spread too
  }
  for (size_t i = 0; i < conns.size(); ++i)
    if (!per[i].empty()) conns[i]->enqueue(per[i].data(), per[i].size(), may_send_inline);
}

Status TcpEndpoint::submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) {
  std::vector<std::shared_ptr<TcpConnection>> conns;
  FERRY_RETURN_IF_ERROR(connections(peer, conns));
  const uint32_t file_id = peer.file ? peer.file->id : 0;  // the target does a file's I/O
  for (size_t i = 0; i < count; ++i) {
    slices[i]->file_id = file_id;
    slices[i]->resends = 0;
  }
  spread(conns, slices, count, true);
  return Status::OK();
}

void TcpEndpoint::resend(TcpConnection* lost, std::deque<Slice*> orphans, const Status& why) {
  std::vector<std::shared_ptr<TcpConnection>> live;
  if (!transport_.stopping_) {
    std::lock_guard lock(mu_);
    for (auto& p : paths_)
      if (p.conn && p.conn.get() != lost && !p.conn->dead()) live.push_back(p.conn);
  }
  std::vector<Slice*> again, failed;
  for (Slice* s : orphans) {
    if (!live.empty() && s->resends < kMaxResends) {
      ++s->resends;
      again.push_back(s);
    } else {
      failed.push_back(s);
    }
  }
  FERRY_LOG_LIMITED(WARN, path_logs_) << why.message() << ": " << again.size() << " slice(s) re-posted on "
                                      << live.size() << " other connection(s), " << failed.size() << " failed";
  // Not inline: this is the lost connection's receiver thread.
  if (!again.empty()) spread(live, again.data(), again.size(), false);
  for (Slice* s : failed) completeSlice(s, why);
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
  t.integer("send_buffer_bytes", tcp_socket::kAutoSendBuffer, -1, 64 << 20,
            "-1 = auto: 128 KiB on connections to this machine (512 KiB when a peer has one connection; "
            "1.2-2.5x loopback throughput), the kernel's sizing to other machines; 0 = the kernel's "
            "everywhere; N = N everywhere (SO_SNDBUF)");
  t.text("rails", "",
           "local addresses, one per NIC, comma-separated: connections leave from each and peers are "
           "told to reach us on each (multi-rail)");
  t.integer("liveness_timeout_ms", 5000, 0, 3600000,
            "a connection whose path acknowledges nothing this long fails (TCP_USER_TIMEOUT + keepalive) "
            "and its slices move to the peer's other connections; 0 = the kernel's minutes");
  t.integer("file_bounce_bytes", 128 << 20, tcp_wire::kMaxDataBytes, 1ll << 40,
            "memory for serving peers' file I/O and accesses to our GPU memory, shared by all connections (a quarter stays cached)");
}

TransportCaps TcpTransport::caps() const {
  // GPU memory at either end moves through host staging: ours here (TcpConnection), the
  // peer's at its target (TcpTarget), so a GPU-to-GPU write is one TCP stream as any other.
  return {.local_kinds = kHostMemory | kCudaMemory,
          .remote_kinds = kHostMemory | kFileData | kCudaMemory,  // the target does a file's I/O
          .reaches_self = true,
          .reaches_same_machine = true,
          .reaches_remote = true,
          .checksum_kinds = kHostMemory,
          .multi_range = true,
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
  options_.liveness_ms = c.get<int>("transports/tcp/liveness_timeout_ms");
  options_.send_buffers = tcp_socket::sendBuffers(c.get<int64_t>("transports/tcp/send_buffer_bytes"),
                                                  options_.connections_per_peer);
  FERRY_RETURN_IF_ERROR(tcp_rails::parseLocal(c.get<std::string>("transports/tcp/rails"), options_.rails));
  slice_size_ = std::min(c.get<uint64_t>("transports/tcp/slice_size"),
                         c.get<uint64_t>("transports/tcp/max_slice_size"));
  FERRY_RETURN_IF_ERROR(target_.start(ctx, {.file_alignment = static_cast<uint32_t>(c.get<int64_t>("files/direct_alignment")),
                                            .rcvlowat_bytes = options_.rcvlowat_bytes,
                                            .bounce_bytes = c.get<uint64_t>("transports/tcp/file_bounce_bytes"),
                                            .bounce_wait = std::chrono::milliseconds(options_.transfer_timeout_ms),
                                            .send_buffers = options_.send_buffers}));
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

std::string TcpTransport::describeLocal() const { return tcp_rails::describe(options_.rails); }

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
