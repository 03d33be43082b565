#include "core/engine.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <algorithm>
#include <cinttypes>
#include <new>
#include <random>
#include <set>

#include "common/base64.h"
#include "common/log.h"
#include "common/net.h"
#include "common/shm_file.h"

#include <nlohmann/json.hpp>

namespace ferry {

// One request's transport candidates toward one segment, and the failover of its slices.
struct EngineImpl::Route : SliceRoute {
  std::shared_ptr<const PeerEndpoint> peer;
  std::vector<Transport*> candidates;
  bool pinned = false;
  size_t max_failover = 0;
  uint64_t slice_size = 0;  // the smallest of the candidates': any of them can carry a slice

  // Errors another transport might not have. A refusal by the target (permission, range)
  // or a passed deadline would only repeat.
  static bool retryable(const Status& s) {
    switch (s.code()) {
      case Status::Code::kUnavailable:
      case Status::Code::kNotSupported:
      case Status::Code::kInternalError:
      case Status::Code::kCorrupted: return true;
      default: return false;
    }
  }
  void finish(size_t max_failover_attempts) {
    max_failover = pinned ? 0 : max_failover_attempts;
    slice_size = UINT64_MAX;
    for (size_t i = 0; i < candidates.size() && i <= max_failover; ++i)
      slice_size = std::min(slice_size, candidates[i]->sliceSize());
    if (candidates.empty()) slice_size = 1 << 20;
  }
  // Whether a failed slice has somewhere to go; tasks without it carry no route.
  bool canFailOver() const { return max_failover > 0 && candidates.size() > 1; }
  bool failover(Slice* slice, const Status& why) override {
    if (pinned || !retryable(why)) return false;
    while (slice->attempt < max_failover && slice->attempt + 1u < candidates.size()) {
      Transport* from = candidates[slice->attempt];
      Transport* to = candidates[++slice->attempt];
      static std::atomic<uint64_t> logged{0};
      if (logged.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
        FERRY_LOG(WARN) << "segment '" << peer->segment_name << "': " << from->name()
                        << " failed (" << why.ToString() << "); retrying on " << to->name();
      Slice* one = slice;
      if (to->submit(*peer, &one, 1).ok()) return true;
    }
    return false;
  }
};


using wire::FrameHeader;
using wire::MsgType;

namespace {

constexpr char kExportPrefix[] = "ferry-segment:v1:";
constexpr char kFilePrefix[] = "file://";
constexpr size_t kMaxPendingNotifications = 1 << 20;

// The exposed file `name` of a descriptor, or null when it no longer lists it.
std::shared_ptr<const FileDesc> fileIn(const SegmentDescriptor& d, const std::string& name) {
  const FileDesc* f = d.findFile(name);
  return f ? std::make_shared<const FileDesc>(*f) : nullptr;
}

std::string randomInstanceId() {
  std::random_device rd;
  uint64_t v = (uint64_t(rd()) << 32) ^ rd();
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

bool isWildcard(const std::string& addr) {
  return addr.empty() || addr == "0.0.0.0" || addr == "::" || addr == "[::]";
}

log::Level parseLevel(const std::string& s, log::Level def) {
  if (s == "debug") return log::DEBUG;
  if (s == "info") return log::INFO;
  if (s == "warn" || s == "warning") return log::WARN;
  if (s == "error") return log::ERROR;
  if (s == "off") return log::OFF;
  return def;
}

}  // namespace

EngineImpl::EngineImpl(std::shared_ptr<Config> config) : config_(std::move(config)) {
  init_status_ = init();
  if (!init_status_.ok()) {
    FERRY_LOG(ERROR) << "engine failed to start: " << init_status_.ToString();
    rpc_server_.stop();
    for (auto& t : transports_) t->stop();
  }
}

Status EngineImpl::init() {
  if (!config_) return Status::InvalidArgument("null config");
  if (!std::getenv("FERRY_LOG_LEVEL") && config_->has("log_level"))
    log::setLevel(parseLevel(config_->get("log_level", "info"), log::INFO));
  if (std::string embed = config_->get("metadata/embedded_server", ""); !embed.empty()) {
    // Host the HTTP metadata service in this process (small clusters, tests).
    MetadataServer::Options mo;
    FERRY_RETURN_IF_ERROR(net::parseHostPort(embed, mo.bind_address, mo.port));
    embedded_store_ = std::make_unique<MetadataServer>();
    FERRY_RETURN_IF_ERROR(embedded_store_->start(mo));
  }
  FERRY_RETURN_IF_ERROR(createMetadataStore(*config_, store_));
  cluster_ = config_->get("metadata/cluster_id", "default");
  int64_t timeout_ms = config_->get<int64_t>("transfer_timeout_ms", 30000);
  if (timeout_ms <= 0) return Status::InvalidArgument("transfer_timeout_ms must be > 0");
  transfer_timeout_ns_ = timeout_ms * 1000000;
  max_batch_size_ = config_->get<uint64_t>("batch/max_size", 1 << 20);
  machine_id_ = net::machineId();
  instance_id_ = randomInstanceId();
  rpc_client_ = std::make_unique<RpcClient>(config_->get<int>("connect_timeout_ms", 3000) +
                                            static_cast<int>(timeout_ms));

  files_.setTryDirect(config_->get<bool>("files/direct_io", true));
  transports_ = createTransports(*config_);
  if (transports_.empty()) return Status::InvalidArgument("every transport is disabled");
  installControlHandlers();
  for (auto& t : transports_) FERRY_RETURN_IF_ERROR(t->start(*this));
  {
    std::vector<Transport*> order;
    for (auto& t : transports_) order.push_back(t.get());
    FERRY_RETURN_IF_ERROR(selector_.configure(*config_, std::move(order)));
  }
  if (std::any_of(transports_.begin(), transports_.end(),
                  [](auto& t) { return std::string_view(t->name()) == "shm"; }))
    initSharedMemory();
  FERRY_RETURN_IF_ERROR(exposeConfiguredFiles());  // before the first descriptor goes out

  RpcServer::Options ro;
  ro.bind_address = config_->get("rpc/bind_address", "0.0.0.0");
  int64_t port = config_->get<int64_t>("rpc/port", 0);
  if (port < 0 || port > 65535)
    return Status::InvalidArgument("rpc/port must be 0..65535, got " + std::to_string(port));
  ro.port = static_cast<uint16_t>(port);
  bool polling = config_->get<bool>("polling", false);
  ro.spin_us = polling ? config_->get<int>("polling_spin_us", 200) : 0;
  // In polling mode the I/O threads spin; a spinning caller too would be a third spinner
  // on two cores and starve them, so the caller sleeps.
  wait_spin_us_ = polling ? 0 : config_->get<int>("wait_spin_us", 50);
  ro.max_connections = config_->get<uint64_t>("rpc/max_connections", 1024);
  ro.stall_timeout_ms = static_cast<int>(std::min<int64_t>(timeout_ms, INT32_MAX));
  ro.epoch = &registry_.versionCounter();
  FERRY_RETURN_IF_ERROR(rpc_server_.start(ro));

  rpc_host_ = config_->get("rpc/advertise_address", "");
  if (rpc_host_.empty())
    rpc_host_ = isWildcard(ro.bind_address) ? net::primaryIpv4() : ro.bind_address;
  name_ = config_->get("local_segment_name", "");
  if (name_.empty()) name_ = net::joinHostPort(rpc_host_, rpc_server_.port());

  if (store_) {
    // Fail fast and clearly when the store is unreachable at start (bounded by the
    // connect timeout), rather than run unseen.
    Status st = store_->put(segmentKey(cluster_, name_), localDescriptor().toJson());
    if (!st.ok())
      return Status(st.code(), "cannot publish segment '" + name_ + "' to " + store_->describe() +
                                   ": " + st.message());
    keeper_ = std::thread([this] { keeperLoop(); });
  }
  worker_ = std::thread([this] { workerLoop(); });
  if (config_->get<bool>("metrics/enable", false)) {
    auto every = std::chrono::seconds(std::max<int64_t>(1, config_->get<int64_t>("metrics/interval_s", 5)));
    metrics_ = std::thread([this, every] { metricsLoop(every); });
  }
  FERRY_LOG(INFO) << "engine '" << name_ << "' up: rpc " << net::joinHostPort(rpc_host_, rpcPort())
                  << ", transports " << [&] {
                       std::string s;
                       for (auto& t : transports_) s += (s.empty() ? "" : ",") + std::string(t->name());
                       return s;
                     }();
  return Status::OK();
}

EngineImpl::~EngineImpl() {
  // First: shm peers stop copying into memory that is about to go away.
  if (shm_control_) shm_control_->store(shm::kEngineGone, std::memory_order_release);
  if (store_ && init_status_.ok()) {
    Status st = store_->remove(segmentKey(cluster_, name_));  // a clean exit leaves no entry
    if (!st.ok()) FERRY_LOG(WARN) << "could not remove segment '" << name_ << "': " << st.ToString();
  }
  rpc_server_.stop();
  for (auto& t : transports_) t->stop();
  {
    std::lock_guard lock(work_mu_);
    work_stop_ = true;
    work_cv_.notify_all();
    stop_cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  if (metrics_.joinable()) metrics_.join();
  if (keeper_.joinable()) keeper_.join();
  if (embedded_store_) embedded_store_->stop();
  std::lock_guard lock(alloc_mu_);
  for (auto& [addr, a] : allocations_) shm::destroy(a.shm_name, reinterpret_cast<void*>(addr), a.size);
  if (shm_control_) shm::destroy(shm_control_name_, shm_control_, 4096);
}

Status EngineImpl::exposeConfiguredFiles() {
  nlohmann::json list = nlohmann::json::parse(config_->get("files/expose", "[]"), nullptr, false);
  if (list.is_discarded() || !list.is_array())
    return Status::InvalidArgument("files/expose must be a list of {\"name\", \"path\"} objects");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& f = list[i];
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("files/expose[" + std::to_string(i) + "]: " + why);
    };
    std::string name, path;
    bool read_only = false;
    uint64_t size = 0;
    try {
      if (!f.is_object() || !f.contains("name") || !f.contains("path")) return bad("needs \"name\" and \"path\"");
      name = f.at("name").get<std::string>();
      path = f.at("path").get<std::string>();
      read_only = f.value("read_only", false);
      size = f.value("size", uint64_t{0});
    } catch (const std::exception& e) {
      return bad(e.what());
    }
    Status st = files_.expose(name, path, read_only, size);
    if (!st.ok()) return bad(st.message());
  }
  if (!list.empty()) registry_.bumpVersion();
  return Status::OK();
}

Status EngineImpl::exposeFile(const std::string& name, const std::string& path, Permission perm,
                              uint64_t size) {
  if (perm != kGlobalReadOnly && perm != kGlobalReadWrite)
    return Status::InvalidArgument("a file is exposed to peers: permission must be kGlobalReadOnly or kGlobalReadWrite");
  FERRY_RETURN_IF_ERROR(files_.expose(name, path, perm == kGlobalReadOnly, size));
  registry_.bumpVersion();  // peers holding our descriptor refresh it
  updateShmControl();
  publish();
  return Status::OK();
}

Status EngineImpl::unexposeFile(const std::string& name) {
  FERRY_RETURN_IF_ERROR(files_.unexpose(name));
  registry_.bumpVersion();
  updateShmControl();
  publish();
  return Status::OK();
}

void EngineImpl::initSharedMemory() {
  shm::sweepStaleShmFiles();
  void* page = nullptr;
  Status st = shm::create(4096, shm_control_name_, &page);
  if (!st.ok()) {
    // Peers then cannot tell a changed registry without an ack; say so, keep going.
    FERRY_LOG(WARN) << "shm: no control page (" << st.ToString() << "); allocations stay private";
    return;
  }
  shm_control_ = new (page) std::atomic<uint64_t>(registry_.version());
  shm_alloc_ = true;
}

void EngineImpl::updateShmControl() {
  if (shm_control_) shm_control_->store(registry_.version(), std::memory_order_release);
}

// ---------------- control handlers ----------------

void EngineImpl::installControlHandlers() {
  rpc_server_.setHandler(MsgType::kGetDescriptor, [this](const FrameHeader& h, ServerConnection& c) {
    c.respond(MsgType::kDescriptor, h.request_id, Status::OK(), localDescriptor().toJson());
    return Status::OK();
  });
  rpc_server_.setHandler(MsgType::kProbe, [](const FrameHeader& h, ServerConnection& c) {
    c.respond(MsgType::kProbeAck, h.request_id, Status::OK());
    return Status::OK();
  });
  rpc_server_.setHandler(MsgType::kNotify, [this](const FrameHeader& h, ServerConnection& c) {
    std::string body(h.body_len, '\0');
    FERRY_RETURN_IF_ERROR(c.reader().readExact(body.data(), body.size()));
    Notification n;
    FERRY_RETURN_IF_ERROR(wire::decodeNotify(body, n));
    deliverNotification(std::move(n));
    c.respond(MsgType::kNotifyAck, h.request_id, Status::OK());
    return Status::OK();
  });
}

SegmentDescriptor EngineImpl::localDescriptor() {
  SegmentDescriptor d;
  d.name = name_;
  d.machine_id = machine_id_;
  d.instance_id = instance_id_;
  d.rpc_host = rpc_host_;
  d.rpc_port = rpcPort();
  d.version = registry_.version();
  d.buffers = registry_.snapshot();
  d.pid = ::getpid();
  d.shm_control = shm_control_name_;
  d.files = files_.exposed();
  for (auto& t : transports_) d.transports.push_back(t->name());
  return d;
}

void EngineImpl::deliverNotification(Notification n) {
  std::lock_guard lock(notify_mu_);
  if (notifications_.size() >= kMaxPendingNotifications) {
    FERRY_LOG(WARN) << "dropping notification from '" << n.name << "': "
                    << notifications_.size() << " unread";
    return;
  }
  notifications_.push_back(std::move(n));
}

void EngineImpl::postWork(std::function<void()> fn) {
  std::lock_guard lock(work_mu_);
  if (work_stop_) return;
  work_.push_back(std::move(fn));
  work_cv_.notify_one();
}

void EngineImpl::workerLoop() {
  std::unique_lock lock(work_mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return work_stop_ || !work_.empty(); });
    if (work_.empty() && work_stop_) return;
    auto fn = std::move(work_.front());
    work_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void EngineImpl::publish() {
  if (!store_) return;
  Status st = store_->put(segmentKey(cluster_, name_), localDescriptor().toJson());
  if (!st.ok()) {
    FERRY_LOG(WARN) << "publishing segment '" << name_ << "' failed (will retry): " << st.ToString();
    publish_pending_ = true;
  }
}

// Keeps our entry alive (etcd lease, Redis TTL) and republishes, with backoff, after a
// failed publish or a lost lease, until the store is back.
void EngineImpl::keeperLoop() {
  using Clock = std::chrono::steady_clock;
  const auto keepalive_every = std::chrono::milliseconds(store_->keepAliveIntervalMs());
  auto next_keepalive = Clock::now() + keepalive_every;
  auto backoff = std::chrono::milliseconds(100);
  std::unique_lock lock(work_mu_);
  while (!stop_cv_.wait_for(lock, backoff, [&] { return work_stop_; })) {
    lock.unlock();
    if (keepalive_every.count() > 0 && Clock::now() >= next_keepalive) {
      next_keepalive = Clock::now() + keepalive_every;
      Status st = store_->keepAlive();
      if (!st.ok()) {
        FERRY_LOG(WARN) << "keep-alive of segment '" << name_ << "' failed: " << st.ToString();
        publish_pending_ = true;
      }
    }
    if (publish_pending_.exchange(false)) {
      Status st = store_->put(segmentKey(cluster_, name_), localDescriptor().toJson());
      if (st.ok()) {
        FERRY_LOG(INFO) << "segment '" << name_ << "' published to " << store_->describe();
        backoff = std::chrono::milliseconds(100);
      } else {
        publish_pending_ = true;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
    }
    lock.lock();
  }
}

Status EngineImpl::lookupInStore(const std::string& name, SegmentDescriptor& out) {
  std::string text;
  Status st = store_->get(segmentKey(cluster_, name), text);
  if (st.IsNotFound())
    return Status::NotFound("segment '" + name + "' is not registered in " + store_->describe());
  if (!st.ok()) return st;
  return SegmentDescriptor::fromJson(text, out);
}

void EngineImpl::metricsLoop(std::chrono::seconds interval) {
  uint64_t last = 0;
  std::unique_lock lock(work_mu_);
  while (!stop_cv_.wait_for(lock, interval, [&] { return work_stop_; })) {
    uint64_t now = bytes_moved_.load(std::memory_order_relaxed);
    double mbps = static_cast<double>(now - last) / 1e6 / static_cast<double>(interval.count());
    FERRY_LOG(INFO) << "metrics '" << name_ << "': " << mbps << " MB/s over the last "
                    << interval.count() << " s, " << now << " bytes in total";
    last = now;
  }
}

// ---------------- memory ----------------

Status EngineImpl::allocateLocalMemory(void** addr, size_t size, const MemoryOptions& options) {
  if (!addr) return Status::InvalidArgument("addr is null");
  if (size == 0) return Status::InvalidArgument("cannot allocate 0 bytes");
  const std::string& loc = options.location;
  if (loc.rfind("cuda", 0) == 0 || loc.rfind("npu", 0) == 0 || loc.rfind("musa", 0) == 0)
    return Status::NotSupported("allocating '" + loc +
                                "' memory needs a GPU transport, which this engine does not have");
  MemoryOptions o = options;
  if (o.location == kWildcardLocation) o.location = "cpu:0";
  Allocation a{size, ""};
  void* p = nullptr;
  // In a shared-memory file when the shm transport is on: same-machine peers map it.
  if (shm_alloc_ && o.shm_path.empty()) {
    Status st = shm::create(size, a.shm_name, &p);
    if (!st.ok()) FERRY_LOG(WARN) << "allocating private memory instead: " << st.ToString();
  }
  if (!p) {
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return Status::InternalError("cannot allocate " + std::to_string(size) + " bytes: " +
                                   strerror(errno));
  } else {
    o.shm_path = a.shm_name;
    o.shm_offset = 0;
  }
  Status st = registerLocalMemory(p, size, o);
  if (!st.ok()) {
    shm::destroy(a.shm_name, p, size);
    return st;
  }
  std::lock_guard lock(alloc_mu_);
  allocations_[reinterpret_cast<uintptr_t>(p)] = a;
  *addr = p;
  return Status::OK();
}

Status EngineImpl::freeLocalMemory(void* addr) {
  Allocation a;
  {
    std::lock_guard lock(alloc_mu_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(addr));
    if (it == allocations_.end())
      return Status::InvalidArgument("address was not returned by allocateLocalMemory");
    a = it->second;
    allocations_.erase(it);
  }
  Status st = unregisterLocalMemory(addr, a.size);
  shm::destroy(a.shm_name, addr, a.size);  // a peer's mapping keeps its pages, not ours
  return st;
}

Status EngineImpl::registerLocalMemory(void* addr, size_t size, const MemoryOptions& options) {
  if (!addr) return Status::InvalidArgument("cannot register a null address");
  if (size == 0) return Status::InvalidArgument("cannot register 0 bytes");
  BufferDesc d;
  d.base = reinterpret_cast<uint64_t>(addr);
  d.length = size;
  d.location = options.location == kWildcardLocation ? "cpu:0" : options.location;
  d.perm = options.perm;
  if (d.perm < kLocalReadWrite || d.perm > kGlobalReadWrite)
    return Status::InvalidArgument("unknown permission " + std::to_string(int(d.perm)));
  // A local-only buffer is never offered for mapping.
  if (d.perm != kLocalReadWrite && !options.shm_path.empty()) {
    if (options.shm_path[0] != '/' || options.shm_path.find('/', 1) != std::string::npos)
      return Status::InvalidArgument("shm_path must be a POSIX shared-memory name like /name, got '" +
                                     options.shm_path + "'");
    d.shm_name = options.shm_path;
    d.shm_offset = options.shm_offset;
  }
  FERRY_RETURN_IF_ERROR(registry_.add(d));
  for (size_t i = 0; i < transports_.size(); ++i) {
    Status st = transports_[i]->registerMemory(d);
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) transports_[j]->unregisterMemory(d).IgnoreError();
      registry_.remove(d.base, d.length).IgnoreError();
      return st;
    }
  }
  updateShmControl();
  publish();
  return Status::OK();
}

Status EngineImpl::unregisterLocalMemory(void* addr, size_t size) {
  BufferDesc d;
  FERRY_RETURN_IF_ERROR(registry_.remove(reinterpret_cast<uint64_t>(addr), size, &d));
  for (auto& t : transports_) t->unregisterMemory(d).IgnoreError();
  updateShmControl();
  publish();
  return Status::OK();
}

// ---------------- segments ----------------

void EngineImpl::setDescriptorLocked(SegmentEntry& seg,
                                     std::shared_ptr<const SegmentDescriptor> desc,
                                     const std::string* host, uint16_t port) {
  auto peer = std::make_shared<PeerEndpoint>(*seg.peer);
  if (host) {
    peer->host = *host;
    peer->port = port;
  }
  if (desc) peer->machine_id = desc->machine_id;
  peer->desc = std::move(desc);
  if (!seg.file_name.empty() && peer->desc) peer->file = fileIn(*peer->desc, seg.file_name);
  seg.peer = std::move(peer);
  auto route = std::make_shared<Route>();
  route->peer = seg.peer;
  route->candidates = selector_.defaultOrder(*seg.peer);  // used when no policy is set
  route->finish(static_cast<size_t>(selector_.maxFailoverAttempts()));
  seg.route = std::move(route);
}

Status EngineImpl::fetchDescriptor(const PeerEndpoint& peer, SegmentDescriptor& out) {
  std::string body;
  Status st = rpc_client_->call(peer.host, peer.port, MsgType::kGetDescriptor, {}, &body);
  if (!st.ok())
    return Status(st.code(), "cannot reach segment '" + peer.segment_name + "': " + st.message());
  return SegmentDescriptor::fromJson(body, out);
}

Status EngineImpl::refreshDescriptor(SegmentEntry& seg) {
  if (seg.is_self) return Status::OK();
  auto peer = seg.endpoint();
  auto fresh = std::make_shared<SegmentDescriptor>();
  if (seg.via_store) {
    // The store knows where the segment lives now (a restart may have moved its port).
    FERRY_RETURN_IF_ERROR(lookupInStore(seg.base_name, *fresh));
  } else {
    FERRY_RETURN_IF_ERROR(fetchDescriptor(*peer, *fresh));
  }
  std::lock_guard lock(seg.mu);
  bool moved = seg.via_store && (fresh->rpc_host != seg.peer->host || fresh->rpc_port != seg.peer->port);
  if (moved)
    FERRY_LOG(INFO) << "segment '" << seg.name << "' moved to "
                    << net::joinHostPort(fresh->rpc_host, fresh->rpc_port);
  if (seg.desc() && seg.desc()->instance_id != fresh->instance_id)
    FERRY_LOG(INFO) << "segment '" << seg.name << "' restarted (instance "
                    << seg.desc()->instance_id << " -> " << fresh->instance_id << ")";
  std::string host = fresh->rpc_host;
  uint16_t port = fresh->rpc_port;
  setDescriptorLocked(seg, std::move(fresh), moved ? &host : nullptr, port);
  return Status::OK();
}

Status EngineImpl::addSegment(const std::string& name, PeerEndpoint peer,
                              std::shared_ptr<const SegmentDescriptor> desc, SegmentID& handle,
                              bool via_store, const std::string& file_name) {
  if (desc) peer.machine_id = desc->machine_id;
  peer.desc = desc;
  if (!file_name.empty() && desc) peer.file = fileIn(*desc, file_name);
  if (selector_.defaultOrder(peer).empty())
    return Status::Unavailable("no transport can reach segment '" + name + "'");
  std::lock_guard lock(seg_mu_);
  auto it = segment_ids_.find(name);
  if (it != segment_ids_.end()) {
    auto& seg = segments_[it->second];
    ++seg->refs;
    if (desc) {
      std::lock_guard slock(seg->mu);
      setDescriptorLocked(*seg, std::move(desc));
    }
    handle = seg->id;
    return Status::OK();
  }
  auto seg = std::make_shared<SegmentEntry>();
  seg->id = next_segment_id_++;
  seg->name = name;
  seg->refs = 1;
  seg->via_store = via_store;
  seg->is_self = peer.is_self;
  seg->is_file = peer.file != nullptr;
  seg->file_name = file_name;
  seg->base_name = file_name.empty() ? name : name.substr(0, name.size() - file_name.size() - 1);
  seg->peer = std::make_shared<const PeerEndpoint>(std::move(peer));
  {
    std::lock_guard slock(seg->mu);
    setDescriptorLocked(*seg, std::move(desc));
  }
  segments_[seg->id] = seg;
  segment_ids_[name] = seg->id;
  handle = seg->id;
  return Status::OK();
}

Status EngineImpl::locateSegment(const std::string& name, PeerEndpoint& peer,
                                 std::shared_ptr<SegmentDescriptor>& desc, bool& via_store) {
  peer.segment_name = name;
  via_store = false;
  desc = nullptr;
  if (name == name_ || name == net::joinHostPort(rpc_host_, rpcPort())) {
    peer.is_self = true;
    peer.host = rpc_host_;
    peer.port = rpcPort();
    peer.machine_id = machine_id_;
    return Status::OK();
  }
  desc = std::make_shared<SegmentDescriptor>();
  if (store_) {
    FERRY_RETURN_IF_ERROR(lookupInStore(name, *desc));
    peer.host = desc->rpc_host;
    peer.port = desc->rpc_port;
    via_store = true;
    return Status::OK();
  }
  Status st = net::parseHostPort(name, peer.host, peer.port);
  if (!st.ok())
    return Status::InvalidArgument("cannot open segment '" + name +
                                   "': with p2p metadata a segment name is host:port");
  return fetchDescriptor(peer, *desc);
}

Status EngineImpl::openSegment(SegmentID& handle, const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("segment name is empty");
  if (name.rfind(kFilePrefix, 0) == 0 || name.find('#') != std::string::npos)
    return openFileSegment(handle, name);
  PeerEndpoint peer;
  std::shared_ptr<SegmentDescriptor> desc;
  bool via_store = false;
  FERRY_RETURN_IF_ERROR(locateSegment(name, peer, desc, via_store));
  return addSegment(peer.is_self ? name_ : name, peer, std::move(desc), handle, via_store);
}

// "file:///path": a local file this engine opens for itself. "SEGMENT#FILE": a file that
// segment exposes (ours included).
Status EngineImpl::openFileSegment(SegmentID& handle, const std::string& name) {
  if (name.rfind(kFilePrefix, 0) == 0) {
    std::shared_ptr<OpenFile> f;
    FERRY_RETURN_IF_ERROR(files_.openPrivate(name.substr(sizeof kFilePrefix - 1), f));
    PeerEndpoint peer;
    peer.segment_name = name;
    peer.is_self = true;
    peer.host = rpc_host_;
    peer.port = rpcPort();
    peer.machine_id = machine_id_;
    peer.file = std::make_shared<const FileDesc>(f->desc);
    return addSegment(name, peer, nullptr, handle);
  }
  size_t hash = name.rfind('#');
  std::string base = name.substr(0, hash), file = name.substr(hash + 1);
  if (base.empty() || file.empty())
    return Status::InvalidArgument("a file segment is named SEGMENT#FILE or file:///PATH, got '" + name + "'");
  PeerEndpoint peer;
  std::shared_ptr<SegmentDescriptor> desc;
  bool via_store = false;
  FERRY_RETURN_IF_ERROR(locateSegment(base, peer, desc, via_store));
  if (peer.is_self) {
    for (const FileDesc& f : files_.exposed())
      if (f.name == file) peer.file = std::make_shared<const FileDesc>(f);
    if (!peer.file) return Status::NotFound("this engine exposes no file '" + file + "'");
    peer.segment_name = name_ + "#" + file;
    return addSegment(peer.segment_name, peer, nullptr, handle, false, file);
  }
  if (!desc->findFile(file))
    return Status::NotFound("segment '" + base + "' exposes no file '" + file + "'");
  peer.segment_name = name;
  return addSegment(name, peer, std::move(desc), handle, via_store, file);
}

Status EngineImpl::closeSegment(SegmentID handle) {
  std::lock_guard lock(seg_mu_);
  auto it = segments_.find(handle);
  if (it == segments_.end())
    return Status::NotFound("unknown segment handle " + std::to_string(handle));
  if (--it->second->refs == 0) {
    auto& seg = *it->second;
    if (seg.is_self && seg.is_file && seg.file_name.empty())  // a private file: close it
      files_.closePrivate(seg.endpoint()->file->id);
    segment_ids_.erase(seg.name);
    segments_.erase(it);
  }
  return Status::OK();
}

std::shared_ptr<EngineImpl::SegmentEntry> EngineImpl::findSegment(SegmentID id) {
  std::lock_guard lock(seg_mu_);
  auto it = segments_.find(id);
  return it == segments_.end() ? nullptr : it->second;
}

std::string EngineImpl::transportName(SegmentID id) {
  auto seg = findSegment(id);
  if (!seg) return "";
  std::lock_guard lock(seg->mu);
  return seg->route->candidates.empty() ? "" : seg->route->candidates[0]->name();
}

Status EngineImpl::describeSelection(SegmentID id, std::string& out) {
  auto seg = findSegment(id);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(id));
  auto peer = seg->endpoint();
  bool same_machine = peer->machine_id == machine_id_;
  auto names = [](const std::vector<Transport*>& ts) {
    nlohmann::json a = nlohmann::json::array();
    for (Transport* t : ts) a.push_back(t->name());
    return a;
  };
  nlohmann::json j = {{"segment", seg->name}, {"segment_type", seg->is_file ? "file" : "memory"},
                      {"same_machine", same_machine}, {"self", seg->is_self}};
  for (Transport* t : selector_.transports())
    j["transports"].push_back({{"name", t->name()}, {"reaches", t->canReach(*peer)},
                               {"slice_size", t->sliceSize()}});
  j["default"] = names(selector_.defaultOrder(*peer));
  j["max_failover_attempts"] = selector_.maxFailoverAttempts();
  j["policies"] = nlohmann::json::array();
  for (const auto& r : selector_.rules()) {
    nlohmann::json m;
    if (r.same_machine) m["same_machine"] = *r.same_machine;
    if (r.min_size) m["min_size"] = r.min_size;
    if (r.max_size != UINT64_MAX) m["max_size"] = r.max_size;
    if (!r.local_location.empty()) m["local_location"] = r.local_location;
    if (!r.remote_location.empty()) m["remote_location"] = r.remote_location;
    if (!r.segment_type.empty()) m["segment_type"] = r.segment_type;
    j["policies"].push_back({{"match", m}, {"order", names(selector_.ruleOrder(r, *peer))}});
  }
  out = j.dump(2);
  return Status::OK();
}

Status EngineImpl::exposedFiles(SegmentID id, std::vector<FileDesc>& out) {
  auto seg = findSegment(id);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(id));
  if (seg->is_file) {  // a file exposes nothing further
    out.clear();
    return Status::OK();
  }
  if (seg->is_self) {
    out = files_.exposed();
    return Status::OK();
  }
  std::lock_guard lock(seg->mu);
  out = seg->desc() ? seg->desc()->files : std::vector<FileDesc>{};
  return Status::OK();
}

Status EngineImpl::getSegmentInfo(SegmentID handle, SegmentInfo& info) {
  auto seg = findSegment(handle);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(handle));
  if (!seg->is_self) {
    Status st = refreshDescriptor(*seg);
    if (!st.ok())  // peer unreachable: answer from the cache, say so in the log
      FERRY_LOG(WARN) << "getSegmentInfo('" << seg->name << "') uses cached data: " << st.ToString();
  }
  SegmentInfo out;
  if (seg->is_file) {
    // One buffer: the whole file, addressed by file offset.
    auto peer = seg->endpoint();
    if (!peer->file) return Status::NotFound("segment '" + seg->base_name + "' no longer exposes file '" + seg->file_name + "'");
    uint64_t length = peer->file->length;
    if (peer->is_self)
      if (auto f = files_.find(peer->file->id); f && !f->exposed) f->file->size(length).IgnoreError();
    out.type = SegmentInfo::File;
    out.buffers.push_back({0, length, "file"});
    info = std::move(out);
    return Status::OK();
  }
  std::vector<BufferDesc> bufs;
  if (seg->is_self) {
    bufs = registry_.snapshot();
  } else {
    std::lock_guard lock(seg->mu);
    if (seg->desc()) bufs = seg->desc()->buffers;
  }
  out.type = SegmentInfo::Memory;
  for (auto& b : bufs) out.buffers.push_back({b.base, b.length, b.location});
  info = std::move(out);
  return Status::OK();
}

Status EngineImpl::exportLocalSegment(std::string& shared_handle) {
  shared_handle = kExportPrefix + base64Encode(localDescriptor().toJson());
  return Status::OK();
}

Status EngineImpl::importRemoteSegment(SegmentID& handle, const std::string& shared_handle) {
  if (shared_handle.rfind(kExportPrefix, 0) != 0)
    return Status::InvalidArgument("not a Ferry segment handle (expected prefix '" +
                                   std::string(kExportPrefix) + "')");
  std::string text;
  if (!base64Decode(std::string_view(shared_handle).substr(sizeof kExportPrefix - 1), text))
    return Status::InvalidArgument("segment handle is not valid base64");
  auto desc = std::make_shared<SegmentDescriptor>();
  Status st = SegmentDescriptor::fromJson(text, *desc);
  if (!st.ok()) return Status::InvalidArgument("segment handle: " + st.message());
  PeerEndpoint peer;
  peer.segment_name = desc->name;
  peer.host = desc->rpc_host;
  peer.port = desc->rpc_port;
  peer.machine_id = desc->machine_id;
  peer.is_self = desc->instance_id == instance_id_;
  if (peer.is_self) return addSegment(name_, peer, nullptr, handle);
  std::string name = desc->name;
  return addSegment(name, peer, std::move(desc), handle);
}

Status EngineImpl::probe(const std::string& segment_name) {
  std::string host;
  uint16_t port;
  Status addr = net::parseHostPort(segment_name, host, port);
  if (store_) {  // a registered name first, then a plain host:port
    SegmentDescriptor desc;
    Status st = lookupInStore(segment_name, desc);
    if (st.ok()) return rpc_client_->call(desc.rpc_host, desc.rpc_port, MsgType::kProbe, {});
    if (!addr.ok()) return st;
  }
  FERRY_RETURN_IF_ERROR(addr);
  return rpc_client_->call(host, port, MsgType::kProbe, {});
}

// ---------------- batches ----------------

BatchID EngineImpl::allocateBatch(size_t batch_size) {
  if (batch_size == 0 || batch_size > max_batch_size_) {
    FERRY_LOG(WARN) << "allocateBatch(" << batch_size << ") refused: size must be 1.."
                    << max_batch_size_ << " (batch/max_size)";
    return 0;
  }
  std::lock_guard lock(batch_mu_);
  BatchID id = next_batch_id_++;
  auto batch = std::make_shared<Batch>(id, batch_size);
  if (metrics_.joinable()) batch->bytes_moved = &bytes_moved_;  // only paid for when on
  batches_[id] = std::move(batch);
  return id;
}

std::shared_ptr<Batch> EngineImpl::findBatch(BatchID id) {
  std::lock_guard lock(batch_mu_);
  auto it = batches_.find(id);
  return it == batches_.end() ? nullptr : it->second;
}

Status EngineImpl::freeBatch(BatchID id) {
  std::lock_guard lock(batch_mu_);
  auto it = batches_.find(id);
  if (it == batches_.end()) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  Batch& b = *it->second;
  {
    std::unique_lock block(b.mu);
    size_t pending = b.pending.load(std::memory_order_acquire);
    if (pending > 0) {
      // Every task may already show its final state while the last completer is still
      // settling (state first, counter last); wait that out, refuse real work in flight.
      size_t n = b.size.load(std::memory_order_acquire);
      for (size_t i = 0; i < n; ++i) {
        auto s = b.tasks[i].state.load(std::memory_order_acquire);
        if (s == PENDING || s == INITIAL)
          return Status::Busy("batch " + std::to_string(id) + " still has " +
                              std::to_string(pending) + " task(s) in flight");
      }
      if (!b.cv.wait_for(block, std::chrono::seconds(1), [&] { return b.pending.load() == 0; }))
        return Status::Busy("batch " + std::to_string(id) + " is still settling");
    }
  }
  batches_.erase(it);
  return Status::OK();
}

void EngineImpl::onPeerEpoch(const std::string& host, uint16_t port, uint64_t epoch) {
  std::lock_guard lock(seg_mu_);
  for (auto& [id, seg] : segments_) {
    if (seg->is_self) continue;
    std::lock_guard slock(seg->mu);
    if (seg->peer->host == host && seg->peer->port == port && seg->desc() &&
        seg->desc()->version != epoch)
      seg->stale.store(true, std::memory_order_release);
  }
}

Status EngineImpl::checkFileTarget(const PeerEndpoint& peer, const Request& req) {
  const bool write = req.opcode == Request::WRITE;
  if (!peer.file)
    return Status::NotFound("segment '" + peer.segment_name + "' no longer exposes that file");
  if (!peer.is_self) return checkFileAccess(*peer.file, req.target_offset, req.length, write);
  auto f = files_.find(peer.file->id);
  if (!f) return Status::NotFound("file '" + peer.file->name + "' is no longer open here");
  FileDesc d = f->desc;
  if (!f->exposed) FERRY_RETURN_IF_ERROR(f->file->size(d.length));  // a private file may grow
  return checkFileAccess(d, req.target_offset, req.length, write);
}

Status EngineImpl::validateTarget(SegmentEntry& seg, const Request& req) {
  if (seg.is_self && seg.is_file) return checkFileTarget(*seg.endpoint(), req);
  if (seg.is_self) {
    Status st = registry_.checkLocal(req.target_offset, req.length);
    if (!st.ok()) return Status::InvalidArgument("target: " + st.message());
    return Status::OK();
  }
  if (seg.stale.load(std::memory_order_acquire) && seg.stale.exchange(false)) {
    // Its registrations changed since we fetched the descriptor: buffers may be gone or
    // have other permissions now. The target checks every access anyway, so a failed
    // refresh (store down) leaves us on the cached copy rather than failing the request.
    Status st = refreshDescriptor(seg);
    if (!st.ok())
      FERRY_LOG(WARN) << "segment '" << seg.name << "' changed but its descriptor could not be "
                      << "refreshed (" << st.ToString() << "); using the cached one";
  }
  Status file_status;
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard lock(seg.mu);
      if (seg.is_file) {
        file_status = checkFileTarget(*seg.peer, req);
        // A range past the end may fit a file re-exposed larger: refresh once, like a miss.
        if (file_status.code() != Status::Code::kOutOfRange && !file_status.IsNotFound())
          return file_status;
      } else if (const SegmentDescriptor* d = seg.desc())
        if (const BufferDesc* b = d->find(req.target_offset, req.length))
          return d->checkAccess(*b, req.opcode == Request::WRITE);
    }
    if (attempt == 0) {
      Status st = refreshDescriptor(seg);  // it may have registered the buffer since
      if (!st.ok()) return st;
    }
  }
  if (seg.is_file) return file_status;
  return Status::InvalidArgument("target range " + rangeText(req.target_offset, req.length) +
                                 " is not inside a registered buffer of segment '" + seg.name + "'");
}

Status EngineImpl::submitTransfer(BatchID id, const std::vector<Request>& requests,
                                  const Notification* notifi) {
  auto batch = findBatch(id);
  if (!batch) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  if (requests.empty()) return Status::OK();

  // Validate everything before anything moves.
  std::vector<std::shared_ptr<SegmentEntry>> segs(requests.size());
  std::vector<std::shared_ptr<Route>> routes(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    auto fail = [&](const Status& st) {
      return Status(st.code(), "request " + std::to_string(i) + ": " + st.message());
    };
    // Read the opcode's bytes: callers from C or Python may pass any integer there.
    std::underlying_type_t<Request::OpCode> op;
    std::memcpy(&op, &r.opcode, sizeof op);
    if (op != Request::READ && op != Request::WRITE)
      return fail(Status::InvalidArgument("unknown opcode " + std::to_string(op)));
    if (r.length == 0) return fail(Status::InvalidArgument("length is 0"));
    if (!r.source) return fail(Status::InvalidArgument("source is null"));
    Status st = registry_.checkLocal(reinterpret_cast<uint64_t>(r.source), r.length);
    if (!st.ok()) return fail(st);
    if (i > 0 && r.target_id == requests[i - 1].target_id) {
      segs[i] = segs[i - 1];
    } else {
      segs[i] = findSegment(r.target_id);
      if (!segs[i])
        return fail(Status::NotFound("unknown segment handle " + std::to_string(r.target_id)));
    }
    st = validateTarget(*segs[i], r);
    if (!st.ok()) return fail(st);
    bool same_choice = i > 0 && segs[i] == segs[i - 1] && !selector_.hasPolicies() &&
                       std::string_view(r.transport_hint ? r.transport_hint : "") ==
                           std::string_view(requests[i - 1].transport_hint ? requests[i - 1].transport_hint : "");
    if (same_choice) {
      routes[i] = routes[i - 1];
    } else {
      st = routeFor(*segs[i], r, routes[i]);
      if (!st.ok()) return fail(st);
    }
  }

  size_t first;
  {
    std::lock_guard lock(batch->mu);
    size_t used = batch->size.load(std::memory_order_relaxed);
    if (requests.size() > batch->capacity - used)
      return Status::InvalidArgument("batch " + std::to_string(id) + " over capacity: " +
                                     std::to_string(used) + " of " +
                                     std::to_string(batch->capacity) + " used, " +
                                     std::to_string(requests.size()) + " more requested");
    first = used;
    for (size_t i = 0; i < requests.size(); ++i) {
      Task& t = batch->tasks[first + i];
      t.batch = batch.get();
      t.state.store(PENDING, std::memory_order_relaxed);
    }
    batch->pending.fetch_add(requests.size(), std::memory_order_acq_rel);
    batch->size.store(used + requests.size(), std::memory_order_release);
  }

  std::shared_ptr<CompletionGroup> group;
  if (notifi) {
    group = std::make_shared<CompletionGroup>();
    group->tasks_left = requests.size();
    std::vector<SegmentID> targets;
    for (auto& s : segs)
      if (std::find(targets.begin(), targets.end(), s->id) == targets.end()) targets.push_back(s->id);
    group->on_done = [this, targets, n = *notifi, id](bool all_ok) {
      if (!all_ok) {
        FERRY_LOG(WARN) << "batch " << id << ": notification '" << n.name
                        << "' not sent because a transfer failed";
        return;
      }
      postWork([this, targets, n] {
        for (SegmentID t : targets) {
          Status st = sendNotification(t, n);
          if (!st.ok()) FERRY_LOG(WARN) << "notification not delivered: " << st.ToString();
        }
      });
    };
  }

  int64_t deadline = nowNs() + transfer_timeout_ns_;
  for (size_t i = 0; i < requests.size(); ++i) {
    Task& t = batch->tasks[first + i];
    t.group = group;
    t.route = routes[i]->canFailOver() ? routes[i] : nullptr;
    makeSlices(t, requests[i], routes[i]->slice_size, deadline);
  }

  // Hand each run of requests with the same route over in one call.
  Status result;
  std::vector<Slice*> run;
  for (size_t i = 0; i < requests.size();) {
    size_t j = i;
    while (j < requests.size() && routes[j] == routes[i]) ++j;
    run.clear();
    for (size_t k = i; k < j; ++k) {
      Task& t = batch->tasks[first + k];
      for (uint32_t n = 0; n < t.num_slices; ++n) run.push_back(&t.slices[n]);
    }
    SegmentEntry& seg = *segs[i];
    Status st = submitRun(*routes[i], run, seg.stale);
    if (!st.ok() && (seg.stale.load(std::memory_order_acquire) || (st.IsUnavailable() && seg.via_store)))
      st = resubmitAfterRefresh(seg, &requests[i], j - i, i, &batch->tasks[first + i], run, st);
    if (!st.ok()) {
      for (size_t k = i; k < j; ++k) failTask(batch->tasks[first + k], st);
      if (result.ok()) result = st;
    }
    i = j;
  }
  return result;
}

Status EngineImpl::resubmitAfterRefresh(SegmentEntry& seg, const Request* reqs, size_t count,
                                        size_t first_index, Task* tasks, std::vector<Slice*>& run,
                                        Status failed) {
  seg.stale.store(false, std::memory_order_release);
  if (!refreshDescriptor(seg).ok()) return failed;
  for (size_t k = 0; k < count; ++k) {
    Status v = validateTarget(seg, reqs[k]);
    if (!v.ok()) return Status(v.code(), "request " + std::to_string(first_index + k) + ": " + v.message());
  }
  std::shared_ptr<Route> base;
  FERRY_RETURN_IF_ERROR(routeFor(seg, reqs[0], base));
  // The run's own copy, marked so that a transport checking the peer's live version takes
  // the descriptor just read as current. Slice sizes stay: any candidate can carry them.
  auto route = std::make_shared<Route>(*base);
  auto peer = std::make_shared<PeerEndpoint>(*route->peer);
  peer->just_refreshed = true;
  route->peer = std::move(peer);
  for (size_t k = 0; k < count; ++k) tasks[k].route = route->canFailOver() ? route : nullptr;
  return submitRun(*route, run, seg.stale);
}

Status EngineImpl::routeFor(SegmentEntry& seg, const Request& req, std::shared_ptr<Route>& out) {
  bool hinted = req.transport_hint && *req.transport_hint;
  if (!hinted && !selector_.hasPolicies()) {
    std::lock_guard lock(seg.mu);
    out = seg.route;
    return Status::OK();
  }
  auto r = std::make_shared<Route>();
  r->peer = seg.endpoint();
  if (hinted) {
    Transport* t = nullptr;
    FERRY_RETURN_IF_ERROR(selector_.pinned(req.transport_hint, *r->peer, t));
    r->candidates = {t};
    r->pinned = true;
  } else {
    SelectionCase c;
    c.same_machine = r->peer->machine_id == machine_id_;
    c.length = req.length;
    registry_.checkLocal(reinterpret_cast<uint64_t>(req.source), req.length, &c.local_location).IgnoreError();
    if (seg.is_file) {
      c.segment_type = "file";
      c.remote_location = "file";
    } else if (seg.is_self) {
      registry_.checkLocal(req.target_offset, req.length, &c.remote_location).IgnoreError();
    } else if (r->peer->desc) {
      if (const BufferDesc* b = r->peer->desc->find(req.target_offset, req.length)) c.remote_location = b->location;
    }
    r->candidates = selector_.candidates(*r->peer, c);
    if (r->candidates.empty())
      return Status::NotSupported("no transport allowed by selector/policies can reach segment '" +
                                  seg.name + "' for this request");
  }
  r->finish(static_cast<size_t>(selector_.maxFailoverAttempts()));
  out = std::move(r);
  return Status::OK();
}

Status EngineImpl::submitRun(Route& route, std::vector<Slice*>& run, const std::atomic<bool>& stale) {
  Status st = Status::Unavailable("no transport can reach '" + route.peer->segment_name + "'");
  size_t tries = route.pinned ? 1 : std::min(route.candidates.size(), route.max_failover + 1);
  for (size_t k = 0; k < tries; ++k) {
    for (Slice* s : run) s->attempt = static_cast<uint8_t>(k);  // before: it may complete inline
    st = route.candidates[k]->submit(*route.peer, run.data(), run.size());
    if (st.ok() || !Route::retryable(st)) return st;
    // A transport that found the peer's registrations changed wants a refresh, not the next one.
    if (stale.load(std::memory_order_acquire)) return st;
  }
  return st;
}

Status EngineImpl::getTransferStatus(BatchID id, size_t task_id, TransferStatus& status) {
  auto batch = findBatch(id);
  if (!batch) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  size_t n = batch->size.load(std::memory_order_acquire);
  if (task_id >= n)
    return Status::InvalidArgument("task " + std::to_string(task_id) + " out of range: batch " +
                                   std::to_string(id) + " has " + std::to_string(n) + " task(s)");
  Task& t = batch->tasks[task_id];
  status.s = static_cast<TransferStatusEnum>(t.state.load(std::memory_order_acquire));
  status.transferred_bytes = t.transferred.load(std::memory_order_relaxed);
  return Status::OK();
}

Status EngineImpl::getTransferStatus(BatchID id, std::vector<TransferStatus>& list) {
  auto batch = findBatch(id);
  if (!batch) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  size_t n = batch->size.load(std::memory_order_acquire);
  list.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Task& t = batch->tasks[i];
    list[i].s = static_cast<TransferStatusEnum>(t.state.load(std::memory_order_acquire));
    list[i].transferred_bytes = t.transferred.load(std::memory_order_relaxed);
  }
  return Status::OK();
}

Status EngineImpl::getTransferStatus(BatchID id, TransferStatus& overall) {
  auto batch = findBatch(id);
  if (!batch) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  overall = overallStatus(*batch);
  return Status::OK();
}

Status EngineImpl::waitTransfer(BatchID id, TransferStatus& overall,
                                std::chrono::milliseconds timeout) {
  auto batch = findBatch(id);
  if (!batch) return Status::InvalidArgument("unknown batch id " + std::to_string(id));
  // Lend this thread to the queued work it submitted (shm copies) before waiting: on a few
  // cores a sleeping waiter and busy workers lose to the waiter copying.
  const auto batch_done = [&] { return batch->pending.load(std::memory_order_acquire) == 0; };
  for (auto& t : transports_)
    if (!batch_done()) t->progress(batch_done);
  // A short spin first: a small transfer often completes within a round trip, and
  // sleeping would add a thread wake-up (~10 us here) to its latency.
  auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_spin_us_);
  while (batch->pending.load(std::memory_order_acquire) != 0 &&
         std::chrono::steady_clock::now() < spin_until) {
    cpuRelax();
  }
  {
    std::unique_lock lock(batch->mu);
    bool done = batch->cv.wait_for(lock, timeout, [&] {
      return batch->pending.load(std::memory_order_acquire) == 0;
    });
    if (!done) {
      overall = overallStatus(*batch);
      return Status::Timeout("batch " + std::to_string(id) + " still pending after " +
                             std::to_string(timeout.count()) + " ms");
    }
  }
  overall = overallStatus(*batch);
  return Status::OK();
}

// ---------------- notifications ----------------

Status EngineImpl::sendNotification(SegmentID target, const Notification& notifi) {
  auto seg = findSegment(target);
  if (!seg) return Status::NotFound("unknown segment handle " + std::to_string(target));
  if (notifi.name.size() + notifi.msg.size() > wire::kMaxNotifyBytes)
    return Status::InvalidArgument("notification larger than " +
                                   std::to_string(wire::kMaxNotifyBytes) + " bytes");
  if (seg->is_self) {
    deliverNotification(notifi);
    return Status::OK();
  }
  auto peer = seg->endpoint();
  return rpc_client_->call(peer->host, peer->port, MsgType::kNotify,
                           wire::encodeNotify(notifi));
}

Status EngineImpl::receiveNotification(std::vector<Notification>& out) {
  std::lock_guard lock(notify_mu_);
  for (auto& n : notifications_) out.push_back(std::move(n));
  notifications_.clear();
  return Status::OK();
}

}  // namespace ferry
