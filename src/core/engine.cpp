#include "core/engine.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cinttypes>
#include <random>

#include "common/environment.h"
#include "common/log.h"
#include "common/net.h"
#include "transport/registry.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

namespace {

std::string randomInstanceId() {
  std::random_device rd;
  uint64_t v = (uint64_t(rd()) << 32) ^ rd();
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

bool isWildcard(const std::string& addr) {
  return addr.empty() || addr == "0.0.0.0" || addr == "::" || addr == "[::]";
}

bool isLoopback(const std::string& addr) {
  return addr.rfind("127.", 0) == 0 || addr == "::1" || addr == "[::1]" || addr == "localhost";
}

}  // namespace

EngineImpl::EngineImpl(std::shared_ptr<Config> config, Status config_status) : config_(std::move(config)) {
  init_status_ = config_status.ok() ? init() : config_status;
  if (!init_status_.ok()) FERRY_LOG(ERROR) << "engine failed to start: " << init_status_.ToString();
}

Status EngineImpl::init() {
  if (!config_) return Status::InvalidArgument("null config");
  FERRY_RETURN_IF_ERROR(config_->validate());
  FERRY_RETURN_IF_ERROR(EngineOptions::read(*config_, options_));
  gpu_ = std::make_unique<cuda::Gpu>(options_.gpu);
  if (options_.gpu_required) {
    Status cuda = gpu_->available();
    if (!cuda.ok()) return Status::NotSupported("cuda/enable=true, but " + cuda.message());
  }
  if (!env::value("FERRY_LOG_LEVEL")) log::setLevel(log::parseLevel(options_.log_level.c_str(), log::INFO));
  if (!options_.embedded_metadata_server.empty()) {
    // Host the HTTP metadata service in this process (small clusters, tests).
    MetadataServer::Options mo;
    FERRY_RETURN_IF_ERROR(net::parseHostPort(options_.embedded_metadata_server, mo.bind_address, mo.port));
    mo.token = options_.auth_token;
    embedded_store_ = std::make_unique<MetadataServer>();
    FERRY_RETURN_IF_ERROR(embedded_store_->start(mo));
  }
  FERRY_RETURN_IF_ERROR(createMetadataStore(*config_, store_));
  machine_id_ = net::machineId();
  instance_id_ = randomInstanceId();
  openLocalDir();
  rpc_client_ = std::make_unique<RpcClient>(options_.connect_timeout_ms + static_cast<int>(options_.transfer_timeout_ms),
                                            options_.auth_token);

  transports_ = createTransports(*config_);
  if (transports_.empty()) return Status::InvalidArgument("every transport is disabled");
  for (auto& t : transports_) transport_list_.push_back(t.get());
  FERRY_RETURN_IF_ERROR(selector_.configure(*config_, transport_list_));
  files_ = std::make_unique<FileSegments>([this] {
    registry_.bumpVersion();  // the descriptor lists exposed files too
    localChanged();
  });
  segments_ = std::make_unique<SegmentTable>(selector_, static_cast<size_t>(selector_.maxFailoverAttempts()));
  directory_ = std::make_unique<PeerDirectory>(*rpc_client_, store_.get(), config_->get<std::string>("metadata/cluster_id"),
                                               *segments_);
  memory_ = std::make_unique<LocalMemory>(registry_, *gpu_, transport_list_, [this] { localChanged(); });
  notifications_ = std::make_unique<Notifications>(
      *rpc_client_, Notifications::Limits{options_.notify_inbox_bytes, options_.notify_queued_bytes_per_peer});
  if (options_.metrics_enable || options_.metrics_port >= 0) metrics_.enable();
  batches_ = std::make_unique<BatchTable>(options_.max_batch_size, options_.wait_spin_us,
                                          options_.transfer_timeout_ms, transport_list_,
                                          metrics_.counters(), metrics_.checksumMismatches());
  submitter_ = std::make_unique<Submitter>(
      Submitter::Parts{registry_, *segments_, *directory_, *files_, selector_, *batches_, *notifications_},
      machine_id_, options_.transfer_timeout_ms, options_.checksum);
  stream_ordered_ = std::make_unique<StreamOrdered>(
      *submitter_, *batches_, registry_, *gpu_,
      options_.stream_error == "exit" ? StreamOrdered::OnFailure::kExit : StreamOrdered::OnFailure::kRelease);

  // Control messages, then each transport's (before the RPC server starts).
  FERRY_RETURN_IF_ERROR(rpc_server_.setHandler(MsgType::kGetDescriptor, [this](const FrameHeader& h, ServerConnection& c) {
    // A same-machine peer gets our beacon with it: it then knows when this goes stale.
    if (c.local() && beacon_) return c.respondWithFds(MsgType::kDescriptor, h.request_id, localDescriptor().toJson(),
                                                      {beacon_->readOnlyFd()});
    c.respond(MsgType::kDescriptor, h.request_id, Status::OK(), localDescriptor().toJson());
    return Status::OK();
  }));
  FERRY_RETURN_IF_ERROR(rpc_server_.setHandler(MsgType::kProbe, [](const FrameHeader& h, ServerConnection& c) {
    c.respond(MsgType::kProbeAck, h.request_id, Status::OK());
    return Status::OK();
  }));
  FERRY_RETURN_IF_ERROR(rpc_server_.setHandler(MsgType::kDigest, [this](const FrameHeader& h, ServerConnection& c) {
    return serveDigest(h, c);
  }));
  FERRY_RETURN_IF_ERROR(notifications_->install(rpc_server_));
  for (auto& t : transports_) FERRY_RETURN_IF_ERROR(t->start(*this));
  for (auto& t : transports_)
    if (std::string a = t->describeLocal(); !a.empty()) local_attrs_[t->name()] = std::move(a);
  FERRY_RETURN_IF_ERROR(files_->start(*config_));  // before the first descriptor goes out

  RpcServer::Options ro;
  ro.bind_address = options_.rpc_bind_address;
  ro.port = options_.rpc_port;
  ro.spin_us = options_.polling ? options_.polling_spin_us : 0;
  ro.max_connections = options_.rpc_max_connections;
  ro.max_connections_per_address = options_.rpc_max_connections_per_address;
  ro.first_frame_timeout_ms = options_.rpc_first_frame_timeout_ms;
  ro.frame_timeout_ms = static_cast<int>(options_.transfer_timeout_ms);
  ro.max_reply_backlog_bytes = options_.rpc_max_reply_backlog_bytes;
  ro.token = options_.auth_token;
  if (!local_dir_path_.empty()) ro.unix_path = shm::localSocketPath(local_dir_path_, instance_id_);
  ro.epoch = &registry_.versionCounter();
  // Bound first, served once our name is known: a peer asking for our descriptor at once
  // waits in the backlog instead of reading a half-made one.
  FERRY_RETURN_IF_ERROR(rpc_server_.listen(ro));
  rpc_host_ = options_.rpc_advertise_address;
  if (rpc_host_.empty()) rpc_host_ = isWildcard(ro.bind_address) ? net::primaryIpv4() : ro.bind_address;
  name_ = options_.segment_name;
  if (name_.empty()) name_ = net::joinHostPort(rpc_host_, rpc_server_.port());
  rpc_server_.serve({name_, instance_id_});
  if (options_.auth_token.empty() && !isLoopback(ro.bind_address))
    FERRY_LOG(WARN) << "RPC server listens on " << ro.bind_address << " without a cluster token: anyone who can "
                    << "reach it may read and write registered memory (set FERRY_AUTH_TOKEN or auth/token; "
                    << "see README, Security)";

  if (store_) {
    publisher_ = std::make_unique<Publisher>(*store_, segmentKey(config_->get<std::string>("metadata/cluster_id"), name_),
                                             name_, [this] { return localDescriptor(); });
    FERRY_RETURN_IF_ERROR(publisher_->start());
  }
  if (options_.metrics_enable) metrics_.start(name_, std::chrono::seconds(options_.metrics_interval_s));
  if (options_.metrics_port >= 0)
    FERRY_RETURN_IF_ERROR(MetricsEndpoint::join(
        options_.metrics_bind_address, static_cast<uint16_t>(options_.metrics_port),
        [this](std::vector<prometheus::MetricFamily>& out) { metrics_.collect(name_, gauges(), out); },
        metrics_endpoint_));
  started_ = true;
  FERRY_LOG(INFO) << "engine '" << name_ << "' up: rpc " << net::joinHostPort(rpc_host_, rpcPort())
                  << ", transports " << [&] {
                       std::string s;
                       for (auto& t : transports_) s += (s.empty() ? "" : ",") + std::string(t->name());
                       return s;
                     }();
  return Status::OK();
}

void EngineImpl::openLocalDir() {
  auto fail = [&](const Status& st) {
    FERRY_LOG(WARN) << "same-machine directory " << options_.same_machine_dir << " unusable (" << st.ToString()
                    << "): peers on this machine reach us over tcp only";
    beacon_.reset();
    local_dir_.reset();
    local_dir_path_.clear();
  };
  if (shm::localSocketPath(options_.same_machine_dir, instance_id_).size() > net::kMaxUnixPathBytes)
    return fail(Status::InvalidArgument("the path is too long for a Unix socket in it"));
  Status st = shm::InstanceDir::open(options_.same_machine_dir, instance_id_, local_dir_);
  if (!st.ok()) return fail(st);
  local_dir_path_ = options_.same_machine_dir;
  beacon_ = std::make_unique<shm::Beacon>();
  st = beacon_->create(local_dir_path_, local_dir_->prefix() + "beacon", registry_.version());
  if (!st.ok()) return fail(st);
}

EngineGauges EngineImpl::gauges() const {
  EngineGauges g;
  for (const Transport* t : selector_.transports()) {
    g.transports.emplace_back(t->name());
    g.peer_states.push_back(t->peerStateCount());
    g.connections.push_back(t->connectionCount());
  }
  g.open_segments = segments_->size();
  g.rpc_connections = rpc_server_.connectionCount();
  g.notification_pending_bytes = notifications_->pendingBytes();
  const Notifications::Counts& n = notifications_->counts();
  g.notifications_received = n.received.load(std::memory_order_relaxed);
  g.notifications_refused = n.refused.load(std::memory_order_relaxed);
  g.notifications_sent = n.sent.load(std::memory_order_relaxed);
  g.notifications_failed = n.failed.load(std::memory_order_relaxed);
  g.descriptor_refreshes = directory_->refreshes();
  return g;
}

uint16_t EngineImpl::metricsPort() const { return metrics_endpoint_ ? metrics_endpoint_->port() : 0; }

EngineImpl::~EngineImpl() {
  metrics_endpoint_.reset();  // first: a scrape running our collect finishes before anything goes
  started_ = false;
  stream_ordered_.reset();  // first: streams waiting on a transfer get it, with every transport up
  if (publisher_) publisher_->stop();  // a clean exit leaves no entry in the store
  if (beacon_) beacon_->markGone();    // local peers stop copying into memory about to go away
  rpc_server_.stop();
  for (auto& t : transports_) t->stop();  // peers see us gone; what is in flight completes
  if (notifications_) notifications_->stop();
  metrics_.stop();
  // Batches and segments hold endpoints; they go before the transports do.
  if (batches_) batches_->clear();
  if (segments_) segments_->clear();
  if (memory_) memory_->releaseAll();
  if (embedded_store_) embedded_store_->stop();
  beacon_.reset();
  local_dir_.reset();  // last: removes what is left of ours there, then the lock
}

Status EngineImpl::defineMessage(MsgType type, const wire::MessageSpec& spec, MessageHandler handler) {
  FERRY_RETURN_IF_ERROR(rpc_server_.defineMessage(type, spec));
  return handler ? rpc_server_.setHandler(type, std::move(handler)) : Status::OK();
}

void EngineImpl::localChanged() {
  const uint64_t version = registry_.version();
  if (beacon_) beacon_->set(version);
  if (started_ && publisher_) publisher_->publish(version);
}

SegmentDescriptor EngineImpl::localDescriptor() {
  SegmentDescriptor d;
  d.name = name_;
  d.machine_id = machine_id_;
  d.instance_id = instance_id_;
  d.rpc_host = rpc_host_;
  d.rpc_port = rpcPort();
  d.buffers = registry_.snapshot(&d.version);
  d.files = files_->table().exposed();
  for (Transport* t : transport_list_) d.transports.push_back(t->name());
  d.attrs = local_attrs_;
  return d;
}

std::string EngineImpl::inspectTransports() const {
  nlohmann::json j = nlohmann::json::object();
  for (Transport* t : transport_list_)
    if (std::string s = t->inspect(); !s.empty()) j[t->name()] = nlohmann::json::parse(s, nullptr, false);
  return j.dump(2);
}

size_t EngineImpl::peerStateCount() const {
  size_t n = 0;
  for (Transport* t : transport_list_) n += t->peerStateCount();
  return n;
}

}  // namespace ferry
