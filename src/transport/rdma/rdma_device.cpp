#include "transport/rdma/rdma_device.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "common/log.h"
#include "model/slice.h"
#include "transport/rdma/rdma_gid.h"

namespace ferry::rdma {

namespace {
std::string errnoText(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err ? err : EIO);
}

// Lanes x per-lane rate of the port (ibv_port_attr active_width / active_speed codes).
int portGbps(const ibv_port_attr& a) {
  int lanes = a.active_width == 1 ? 1 : a.active_width == 2 ? 4 : a.active_width == 4 ? 8 : a.active_width == 8 ? 12
            : a.active_width == 16 ? 2 : 1;
  int per_lane = 0;
  switch (a.active_speed) {
    case 1: per_lane = 2; break;    // SDR 2.5
    case 2: per_lane = 5; break;    // DDR
    case 4: case 8: per_lane = 10; break;  // QDR, FDR10
    case 16: per_lane = 14; break;  // FDR
    case 32: per_lane = 25; break;  // EDR
    case 64: per_lane = 50; break;  // HDR
    case 128: per_lane = 100; break;  // NDR
    default: per_lane = 0;
  }
  return lanes * per_lane;
}
}  // namespace

int mtuBytes(ibv_mtu mtu) { return 128 << static_cast<int>(mtu); }

ibv_mtu mtuFromBytes(int bytes) {
  int m = IBV_MTU_256;
  while (m < IBV_MTU_4096 && (128 << (m + 1)) <= bytes) ++m;
  return static_cast<ibv_mtu>(m);
}

int deviceNumaNode(const std::string& name) {
  std::ifstream f("/sys/class/infiniband/" + name + "/device/numa_node");
  int node = -1;
  if (!(f >> node)) return -1;
  return node;
}

RdmaDevice::~RdmaDevice() {
  stopThread();
  close();
}

Status RdmaDevice::open(ibv_device* device, const DeviceOptions& options) {
  options_ = options;
  const VerbsApi& v = *verbs_;
  auto fail = [&](const Status& st) {
    close();
    return Status(st.code(), name_ + ": " + st.message());
  };
  ctx_ = v.open_device(device);
  if (!ctx_) return fail(Status::Unavailable(errnoText("cannot open", errno)));
  ibv_port_attr port{};
  if (int rc = v.query_port(ctx_, options.port, &port)) return fail(Status::Unavailable(errnoText("query_port", rc)));
  if (port.state != IBV_PORT_ACTIVE)
    return fail(Status::Unavailable("port " + std::to_string(options.port) + " is not ACTIVE (state " +
                                    std::to_string(port.state) + ")"));
  address_.lid = port.lid;
  address_.ib_link = port.link_layer == IBV_LINK_LAYER_INFINIBAND;
  mtu_ = std::min(port.active_mtu, mtuFromBytes(options.mtu_bytes));
  speed_gbps_ = portGbps(port);
  numa_ = deviceNumaNode(name_);
  Status st = queryGid();
  if (!st.ok()) return fail(st);
  pd_ = v.alloc_pd(ctx_);
  if (!pd_) return fail(Status::Unavailable(errnoText("alloc_pd", errno)));
  channel_ = v.create_comp_channel(ctx_);
  if (!channel_) return fail(Status::Unavailable(errnoText("create_comp_channel", errno)));
  // Non-blocking: the completion thread polls it together with its wake-up descriptor.
  int fl = ::fcntl(channel_->fd, F_GETFL);
  if (fl < 0 || ::fcntl(channel_->fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return fail(Status::Unavailable(errnoText("completion channel", errno)));
  cq_ = v.create_cq(ctx_, options.max_cqe, nullptr, channel_, 0);
  if (!cq_) return fail(Status::Unavailable(errnoText("create_cq", errno)));
  cq_room_.store(cq_->cqe > 0 ? std::min(cq_->cqe, options.max_cqe) : options.max_cqe);
  if (int rc = v.req_notify_cq(cq_, 0)) return fail(Status::Unavailable(errnoText("req_notify_cq", rc)));
  if (ctx_->async_fd >= 0) {  // read by the completion thread alongside the channel
    int afl = ::fcntl(ctx_->async_fd, F_GETFL);
    if (afl < 0 || ::fcntl(ctx_->async_fd, F_SETFL, afl | O_NONBLOCK) < 0)
      return fail(Status::Unavailable(errnoText("async event descriptor", errno)));
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return fail(Status::Unavailable(errnoText("eventfd", errno)));
  return Status::OK();
}

Status RdmaDevice::queryGid() {
  std::vector<GidCandidate> table;
  for (uint32_t i = 0; i < 256; ++i) {
    ibv_gid_entry e{};
    if (int rc = verbs_->query_gid_ex(ctx_, options_.port, i, &e)) {
      if (rc == ENODATA || rc == -ENODATA) continue;  // an empty slot
      break;                                          // past the table's end
    }
    GidCandidate c;
    c.index = i;
    std::memcpy(c.gid, e.gid.raw, 16);
    c.type = e.gid_type == IBV_GID_TYPE_ROCE_V2 ? GidCandidate::kRoceV2
           : e.gid_type == IBV_GID_TYPE_ROCE_V1 ? GidCandidate::kRoceV1 : GidCandidate::kIb;
    c.has_netdev = e.ndev_ifindex != 0;
    table.push_back(c);
  }
  uint32_t index = 0;
  FERRY_RETURN_IF_ERROR(selectGid(table, address_.ib_link, options_.gid_index, name_, index, gid_reason_));
  for (const auto& c : table)
    if (c.index == index) std::memcpy(address_.gid, c.gid, 16);
  address_.gid_index = static_cast<uint8_t>(index);
  return Status::OK();
}

void RdmaDevice::start() {
  stopping_ = false;
  thread_ = std::thread([this] { completionLoop(); });
}

void RdmaDevice::stopThread() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

void RdmaDevice::close() {
  const VerbsApi& v = *verbs_;
  {
    std::lock_guard lock(mu_);
    if (!owners_.empty())
      FERRY_LOG(WARN) << name_ << ": closing with " << owners_.size() << " queue pair(s) registered";
    owners_.clear();
  }
  if (cq_) v.destroy_cq(cq_);
  if (channel_) v.destroy_comp_channel(channel_);
  if (pd_) v.dealloc_pd(pd_);
  if (ctx_) v.close_device(ctx_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  cq_ = nullptr;
  channel_ = nullptr;
  pd_ = nullptr;
  ctx_ = nullptr;
  wake_fd_ = -1;
}

Status RdmaDevice::createQp(uint32_t max_wr, std::shared_ptr<QpOwner> owner, ibv_qp*& out) {
  const VerbsApi& v = *verbs_;
  ibv_qp_init_attr init{};
  init.send_cq = cq_;
  init.recv_cq = cq_;
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 0;
  init.cap.max_send_wr = max_wr;
  init.cap.max_recv_wr = 1;
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  ibv_qp* qp = v.create_qp(pd_, &init);
  if (!qp) return Status::Busy(name_ + ": " + errnoText("create_qp", errno));
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = options_.port;
  a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
  if (int rc = v.modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)) {
    v.destroy_qp(qp);
    return Status::Unavailable(name_ + ": " + errnoText("queue pair to INIT", rc));
  }
  if (owner) {
    std::lock_guard lock(mu_);
    owners_[qp->qp_num] = std::move(owner);
  }
  qp_count_.fetch_add(1, std::memory_order_relaxed);
  out = qp;
  return Status::OK();
}

Status RdmaDevice::connectQp(ibv_qp* qp, const Connect& c) {
  const VerbsApi& v = *verbs_;
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = c.mtu;
  a.dest_qp_num = c.remote_qpn;
  a.rq_psn = c.remote_psn;
  a.max_dest_rd_atomic = 16;
  a.min_rnr_timer = 12;
  a.ah_attr.port_num = options_.port;
  a.ah_attr.dlid = c.remote_lid;
  if (!address_.ib_link || c.remote_lid == 0) {  // RoCE (or a routed IB fabric): address by GID
    a.ah_attr.is_global = 1;
    std::memcpy(a.ah_attr.grh.dgid.raw, c.remote_gid, 16);
    a.ah_attr.grh.sgid_index = address_.gid_index;
    a.ah_attr.grh.hop_limit = 64;
  }
  if (int rc = v.modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                                      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
    return Status::Unavailable(name_ + ": " + errnoText("queue pair to RTR", rc));
  a = {};
  a.qp_state = IBV_QPS_RTS;
  a.timeout = c.timeout;
  a.retry_cnt = c.retry_cnt;
  a.rnr_retry = c.rnr_retry;
  a.sq_psn = c.local_psn;
  a.max_rd_atomic = 16;
  if (int rc = v.modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                                      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
    return Status::Unavailable(name_ + ": " + errnoText("queue pair to RTS", rc));
  return Status::OK();
}

void RdmaDevice::errorQp(ibv_qp* qp) {
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_ERR;
  if (int rc = verbs_->modify_qp(qp, &a, IBV_QP_STATE))
    FERRY_LOG(WARN) << name_ << ": queue pair " << qp->qp_num << " to ERR: " << std::strerror(rc);
}

void RdmaDevice::destroyQp(ibv_qp* qp) {
  std::shared_ptr<QpOwner> owner;  // released after the lock
  {
    std::lock_guard lock(mu_);
    auto it = owners_.find(qp->qp_num);
    if (it != owners_.end()) {
      owner = std::move(it->second);
      owners_.erase(it);
    }
  }
  if (int rc = verbs_->destroy_qp(qp))
    FERRY_LOG(WARN) << name_ << ": destroy_qp: " << std::strerror(rc);
  qp_count_.fetch_sub(1, std::memory_order_relaxed);
}

bool RdmaDevice::reserveCqe(int n) {
  int room = cq_room_.load(std::memory_order_relaxed);
  while (room >= n)
    if (cq_room_.compare_exchange_weak(room, room - n, std::memory_order_acq_rel)) return true;
  return false;
}

void RdmaDevice::releaseCqe(int n) { cq_room_.fetch_add(n, std::memory_order_acq_rel); }

std::vector<std::shared_ptr<QpOwner>> RdmaDevice::ownersSnapshot() {
  std::vector<std::shared_ptr<QpOwner>> owners;
  std::lock_guard lock(mu_);
  std::set<QpOwner*> seen;
  for (auto& [qpn, o] : owners_)
    if (seen.insert(o.get()).second) owners.push_back(o);
  return owners;
}

size_t RdmaDevice::closeIdle(size_t count) {
  std::vector<std::pair<int64_t, std::shared_ptr<QpOwner>>> idle;
  for (auto& o : ownersSnapshot())
    if (int64_t since = o->idleSinceNs(); since >= 0) idle.emplace_back(since, std::move(o));
  std::sort(idle.begin(), idle.end(), [](auto& a, auto& b) { return a.first < b.first; });
  const size_t before = qpCount();
  for (auto& [since, o] : idle) {
    if (before - std::min(before, qpCount()) >= count) break;
    o->fail(Status::Canceled(name_ + ": idle path closed to make room for new queue pairs"));
  }
  return before - std::min(before, qpCount());
}

const char* RdmaDevice::stateName() const {
  return fatal_.load(std::memory_order_acquire) ? "failed" : usable() ? "active" : "down";
}

void RdmaDevice::onAsyncEvents(log::RateLimit& lines) {
  const VerbsApi& v = *verbs_;
  ibv_async_event ev;
  while (v.get_async_event(ctx_, &ev) == 0) {
    const ibv_event_type type = ev.event_type;
    std::shared_ptr<QpOwner> qp_owner;
    bool port_event = false;
    switch (type) {
      case IBV_EVENT_PORT_ERR:
      case IBV_EVENT_PORT_ACTIVE:
        port_event = ev.element.port_num == options_.port;
        break;
      case IBV_EVENT_QP_FATAL:
      case IBV_EVENT_QP_REQ_ERR:
      case IBV_EVENT_QP_ACCESS_ERR: {
        std::lock_guard lock(mu_);
        auto it = owners_.find(ev.element.qp->qp_num);
        if (it != owners_.end()) qp_owner = it->second;
        break;
      }
      default:
        break;
    }
    v.ack_async_event(&ev);  // before acting: destroying a QP waits for its events' acks
    if (lines.allow())
      FERRY_LOG(WARN) << name_ << ": async event " << type << (port_event ? " on our port" : "")
                      << lines.suppressedNote();
    Status why;
    if (port_event && type == IBV_EVENT_PORT_ACTIVE) {
      if (!fatal_.load(std::memory_order_acquire)) usable_.store(true, std::memory_order_release);
    } else if (port_event || type == IBV_EVENT_DEVICE_FATAL) {
      if (type == IBV_EVENT_DEVICE_FATAL) fatal_.store(true, std::memory_order_release);
      usable_.store(false, std::memory_order_release);
      why = Status::Unavailable(name_ + (type == IBV_EVENT_DEVICE_FATAL ? ": the device failed" : ": the port went down"));
      for (auto& o : ownersSnapshot()) o->fail(why);
    } else if (qp_owner) {
      qp_owner->fail(Status::Unavailable(name_ + ": a queue pair hit a fatal error (async event " +
                                         std::to_string(type) + ")"));
    }
  }
}

void RdmaDevice::completionLoop() {
  const VerbsApi& v = *verbs_;
  constexpr int kBatch = 64;
  ibv_wc wc[kBatch];
  int64_t next_sweep = 0;
  log::RateLimit errors;
  int64_t spin_until = 0;  // polling mode: keep polling the CQ until then
  while (!stopping_.load(std::memory_order_acquire)) {
    pollfd fds[3] = {{channel_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}, {ctx_->async_fd, POLLIN, 0}};
    int rc = ::poll(fds, ctx_->async_fd >= 0 ? 3 : 2, nowNs() < spin_until ? 0 : options_.sweep_ms);
    if (rc > 0 && ctx_->async_fd >= 0 && (fds[2].revents & POLLIN)) onAsyncEvents(errors);
    if (rc < 0 && errno != EINTR) {
      FERRY_LOG(ERROR) << name_ << ": poll: " << std::strerror(errno);
      break;
    }
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      ibv_cq* cq = nullptr;
      void* ctx = nullptr;
      if (v.get_cq_event(channel_, &cq, &ctx) == 0) {
        v.ack_cq_events(cq, 1);
        if (v.req_notify_cq(cq, 0) != 0 && errors.allow())
          FERRY_LOG(ERROR) << name_ << ": cannot re-arm the completion queue";
      }
    }
    // Drain: grouped by owner, in CQ order within each.
    while (true) {
      int n = v.poll_cq(cq_, kBatch, wc);
      if (n <= 0) {
        if (n < 0 && errors.allow()) FERRY_LOG(ERROR) << name_ << ": poll_cq failed";
        break;
      }
      int i = 0;
      while (i < n) {
        int j = i + 1;
        std::shared_ptr<QpOwner> owner;
        {
          std::lock_guard lock(mu_);
          auto it = owners_.find(wc[i].qp_num);
          if (it != owners_.end()) owner = it->second;
          while (j < n && wc[j].qp_num == wc[i].qp_num) ++j;
        }
        if (owner)
          owner->onCompletions(wc + i, j - i);
        else if (errors.allow())
          FERRY_LOG(WARN) << name_ << ": completion for unknown queue pair " << wc[i].qp_num << " dropped";
        spin_until = options_.spin_us ? nowNs() + int64_t{options_.spin_us} * 1000 : 0;
        i = j;
      }
    }
    const int64_t now = nowNs();
    if (now >= next_sweep) {
      next_sweep = now + int64_t{options_.sweep_ms} * 1000000;
      for (auto& o : ownersSnapshot()) o->sweep(now);
    }
  }
}

}  // namespace ferry::rdma
