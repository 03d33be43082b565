#include "fake_verbs.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace ferry::rdma::fake {

namespace {
using Clock = std::chrono::steady_clock;
uint64_t addrOf(const ibv_mr& m) { return reinterpret_cast<uint64_t>(m.addr); }
}  // namespace

struct FakeFabric::Impl {
  struct Ctx;
  struct NicState {
    NicSpec spec;
    ibv_device device{};
    std::vector<Ctx*> contexts;  // open on this NIC (async events go to each)
    bool down = false;
    uint64_t bytes = 0;
    uint8_t gids[3][16] = {};  // link-local (RoCEv1 at 1 on RoCE), IPv4-mapped RoCEv2
  };
  struct Ctx {
    ibv_context c{};
    NicState* nic = nullptr;
    std::deque<ibv_async_event> events;  // read through c.async_fd (an eventfd)
  };
  struct Pd {
    ibv_pd pd{};
    NicState* nic = nullptr;
  };
  struct Mr {
    ibv_mr mr{};
    Pd* pd = nullptr;
    int access = 0;
  };
  struct Channel {
    ibv_comp_channel ch{};
    std::deque<ibv_cq*> events;
  };
  struct Cq {
    ibv_cq cq{};
    std::deque<ibv_wc> entries;
    int capacity = 0;
    bool armed = false;
    Channel* channel = nullptr;
  };
  struct Qp {
    ibv_qp qp{};
    NicState* nic = nullptr;
    Pd* pd = nullptr;
    Cq* cq = nullptr;
    int access = 0;
    ibv_mtu mtu = IBV_MTU_256;
    uint32_t dest_qpn = 0;
    uint8_t dgid[16] = {};
    uint32_t max_send_wr = 0;
    uint32_t held = 0;       // send-queue slots not yet covered by a completion
    uint32_t since_cqe = 0;  // run since the last completion
  };
  struct Job {
    Clock::time_point ready_at;  // posted + the completion delay
    uint32_t qpn;
    uint64_t wr_id;
    ibv_wr_opcode opcode;
    bool signaled;
    ibv_sge sge;
    uint64_t remote_addr;
    uint32_t rkey;
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<NicState>> nics;
  std::map<uint32_t, Mr*> mrs;  // by key (lkey == rkey)
  std::map<uint32_t, Qp*> qps;  // by number
  std::deque<Job> jobs;
  bool stopping = false;
  std::thread worker;
  uint32_t next_key = 0x1000, next_qpn = 0x100;
  std::string fail_verb;
  int fail_in = 0;
  std::chrono::microseconds delay{0};
  LiveObjects live;
  uint64_t posted = 0, signaled = 0, violations = 0, control_calls = 0, created_qps = 0;

  // Counts a control call; true when it must fail now. Caller holds mu.
  bool injectLocked(const char* verb) {
    ++control_calls;
    if (fail_in <= 0 || (fail_verb != "*" && fail_verb != verb)) return false;
    return --fail_in == 0;
  }
  NicState* nicByGid(const uint8_t* gid) {
    for (auto& n : nics)
      for (auto& g : n->gids)
        if (std::memcmp(g, gid, 16) == 0) return n.get();
    return nullptr;
  }
  void pushLocked(Cq* cq, const ibv_wc& wc) {
    if (static_cast<int>(cq->entries.size()) >= cq->capacity) {
      ++violations;  // a real CQ overflows and errors every QP on it
      return;
    }
    cq->entries.push_back(wc);
    if (cq->armed && cq->channel) {
      cq->armed = false;
      cq->channel->events.push_back(&cq->cq);
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(cq->channel->ch.fd, &one, sizeof one);
    }
  }
  ibv_wc_status checkLocked(Qp* q, const Job& j, uint8_t*& local, uint8_t*& remote) {
    if (q->qp.state == IBV_QPS_ERR) return IBV_WC_WR_FLUSH_ERR;
    NicState* peer = nicByGid(q->dgid);
    if (q->nic->down || !peer || peer->down) return IBV_WC_RETRY_EXC_ERR;
    auto rit = qps.find(q->dest_qpn);
    if (rit == qps.end() || rit->second->nic != peer || rit->second->qp.state < IBV_QPS_RTR)
      return IBV_WC_RETRY_EXC_ERR;  // nobody acknowledges
    Qp* r = rit->second;
    if (r->mtu != q->mtu) return IBV_WC_REM_INV_REQ_ERR;  // packets larger than the responder takes
    auto lit = mrs.find(j.sge.lkey);
    const bool read = j.opcode == IBV_WR_RDMA_READ;
    if (lit == mrs.end() || lit->second->pd != q->pd || j.sge.addr < addrOf(lit->second->mr) ||
        j.sge.addr + j.sge.length > addrOf(lit->second->mr) + lit->second->mr.length ||
        (read && !(lit->second->access & IBV_ACCESS_LOCAL_WRITE)))
      return IBV_WC_LOC_PROT_ERR;
    auto mit = mrs.find(j.rkey);
    const int need = read ? IBV_ACCESS_REMOTE_READ : IBV_ACCESS_REMOTE_WRITE;
    if (mit == mrs.end() || mit->second->pd != r->pd || j.remote_addr < addrOf(mit->second->mr) ||
        j.remote_addr + j.sge.length > addrOf(mit->second->mr) + mit->second->mr.length ||
        !(mit->second->access & need) || !(r->access & need))
      return IBV_WC_REM_ACCESS_ERR;
    local = reinterpret_cast<uint8_t*>(j.sge.addr);
    remote = reinterpret_cast<uint8_t*>(j.remote_addr);
    return IBV_WC_SUCCESS;
  }
  void workerLoop() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !jobs.empty(); });
      if (stopping) return;
      // A delayed request waits for its time, unless its QP failed meanwhile (a flush is
      // immediate on hardware too).
      const Job& front = jobs.front();
      auto fq = qps.find(front.qpn);
      if (Clock::now() < front.ready_at && fq != qps.end() && fq->second->qp.state != IBV_QPS_ERR) {
        cv.wait_until(lock, front.ready_at);
        continue;
      }
      Job j = jobs.front();
      jobs.pop_front();
      auto it = qps.find(j.qpn);
      if (it == qps.end()) continue;  // destroyed meanwhile: nothing reports
      uint8_t *local = nullptr, *remote = nullptr;
      ibv_wc_status status = checkLocked(it->second, j, local, remote);
      if (status == IBV_WC_SUCCESS) {
        lock.unlock();
        if (j.opcode == IBV_WR_RDMA_WRITE)
          std::memcpy(remote, local, j.sge.length);
        else
          std::memcpy(local, remote, j.sge.length);
        lock.lock();
        it = qps.find(j.qpn);
        if (it == qps.end()) continue;
        it->second->nic->bytes += j.sge.length;
      }
      Qp* q = it->second;
      ++q->since_cqe;
      if (status != IBV_WC_SUCCESS || j.signaled) {
        ibv_wc wc{};
        wc.wr_id = j.wr_id;
        wc.status = status;
        wc.opcode = j.opcode == IBV_WR_RDMA_WRITE ? IBV_WC_RDMA_WRITE : IBV_WC_RDMA_READ;
        wc.qp_num = q->qp.qp_num;
        wc.byte_len = status == IBV_WC_SUCCESS ? j.sge.length : 0;
        wc.vendor_err = status == IBV_WC_SUCCESS ? 0 : 0x42;
        q->held -= q->since_cqe;
        q->since_cqe = 0;
        pushLocked(q->cq, wc);
      }
      if (status != IBV_WC_SUCCESS) q->qp.state = IBV_QPS_ERR;
    }
  }
};

namespace {

using Impl = FakeFabric::Impl;
Impl* g = nullptr;  // the live fabric

// ---- the table ----

ibv_device** getDeviceList(int* n) {
  std::lock_guard lock(g->mu);
  auto** list = new ibv_device*[g->nics.size() + 1];
  for (size_t i = 0; i < g->nics.size(); ++i) list[i] = &g->nics[i]->device;
  list[g->nics.size()] = nullptr;
  if (n) *n = static_cast<int>(g->nics.size());
  return list;
}
void freeDeviceList(ibv_device** list) { delete[] list; }
const char* getDeviceName(ibv_device* d) { return d->name; }

Impl::NicState* nicOf(ibv_device* d) {
  for (auto& n : g->nics)
    if (&n->device == d) return n.get();
  return nullptr;
}

ibv_context* openDevice(ibv_device* d) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("open_device")) {
    errno = ENODEV;
    return nullptr;
  }
  auto* c = new Impl::Ctx;
  c->c.device = d;
  c->c.async_fd = ::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
  c->c.cmd_fd = -1;
  c->nic = nicOf(d);
  c->nic->contexts.push_back(c);
  ++g->live.contexts;
  return &c->c;
}
int closeDevice(ibv_context* c) {
  std::lock_guard lock(g->mu);
  auto* ctx = reinterpret_cast<Impl::Ctx*>(c);
  std::erase(ctx->nic->contexts, ctx);
  ::close(c->async_fd);
  --g->live.contexts;
  delete ctx;
  return 0;
}
Impl::NicState* nicOfCtx(ibv_context* c) { return reinterpret_cast<Impl::Ctx*>(c)->nic; }

int queryDevice(ibv_context*, ibv_device_attr* a) {
  *a = {};
  a->max_qp = 1 << 16;
  a->max_qp_wr = 16384;
  a->max_cqe = 1 << 22;
  a->max_mr_size = UINT64_MAX;
  return 0;
}

int queryPort(ibv_context* c, uint8_t port, ibv_port_attr* a) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("query_port")) return EIO;
  if (port != 1) return EINVAL;
  Impl::NicState* n = nicOfCtx(c);
  *a = {};
  a->state = n->down ? IBV_PORT_DOWN : IBV_PORT_ACTIVE;
  a->max_mtu = IBV_MTU_4096;
  a->active_mtu = n->spec.active_mtu;
  a->lid = n->spec.infiniband ? static_cast<uint16_t>(n->spec.ipv4_last + 1) : 0;
  a->link_layer = n->spec.infiniband ? IBV_LINK_LAYER_INFINIBAND : IBV_LINK_LAYER_ETHERNET;
  a->active_width = 2;   // 4x
  a->active_speed = 32;  // EDR: 100 Gb/s
  return 0;
}

int queryGid(ibv_context* c, uint32_t port, uint32_t index, ibv_gid_entry* e) {
  std::lock_guard lock(g->mu);
  Impl::NicState* n = nicOfCtx(c);
  if (port != 1 || index >= 3) return EINVAL;
  if (n->spec.infiniband && index > 0) return ENODATA;
  *e = {};
  std::memcpy(e->gid.raw, n->gids[index], 16);
  e->gid_index = index;
  e->port_num = port;
  e->gid_type = n->spec.infiniband ? IBV_GID_TYPE_IB : index == 1 ? IBV_GID_TYPE_ROCE_V1 : IBV_GID_TYPE_ROCE_V2;
  e->ndev_ifindex = n->spec.infiniband ? 0 : 7;
  return 0;
}

ibv_pd* allocPd(ibv_context* c) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("alloc_pd")) {
    errno = ENOMEM;
    return nullptr;
  }
  auto* p = new Impl::Pd;
  p->pd.context = c;
  p->nic = nicOfCtx(c);
  ++g->live.pds;
  return &p->pd;
}
int deallocPd(ibv_pd* p) {
  std::lock_guard lock(g->mu);
  --g->live.pds;
  delete reinterpret_cast<Impl::Pd*>(p);
  return 0;
}

ibv_mr* regMr(ibv_pd* pd, void* addr, size_t length, int access) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("reg_mr")) {
    errno = ENOMEM;
    return nullptr;
  }
  auto* m = new Impl::Mr;
  m->pd = reinterpret_cast<Impl::Pd*>(pd);
  m->access = access;
  m->mr.context = pd->context;
  m->mr.pd = pd;
  m->mr.addr = addr;
  m->mr.length = length;
  m->mr.lkey = m->mr.rkey = g->next_key++;
  g->mrs[m->mr.lkey] = m;
  ++g->live.mrs;
  return &m->mr;
}
int deregMr(ibv_mr* mr) {
  std::lock_guard lock(g->mu);
  g->mrs.erase(mr->lkey);
  --g->live.mrs;
  delete reinterpret_cast<Impl::Mr*>(mr);
  return 0;
}

ibv_comp_channel* createChannel(ibv_context* c) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("create_comp_channel")) {
    errno = EMFILE;
    return nullptr;
  }
  auto* ch = new Impl::Channel;
  ch->ch.context = c;
  ch->ch.fd = ::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
  ++g->live.channels;
  return &ch->ch;
}
int destroyChannel(ibv_comp_channel* ch) {
  std::lock_guard lock(g->mu);
  ::close(ch->fd);
  --g->live.channels;
  delete reinterpret_cast<Impl::Channel*>(ch);
  return 0;
}

ibv_cq* createCq(ibv_context* c, int cqe, void* cq_context, ibv_comp_channel* ch, int) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("create_cq")) {
    errno = ENOMEM;
    return nullptr;
  }
  auto* q = new Impl::Cq;
  q->cq.context = c;
  q->cq.channel = ch;
  q->cq.cq_context = cq_context;
  q->cq.cqe = cqe;
  q->capacity = cqe;
  q->channel = reinterpret_cast<Impl::Channel*>(ch);
  ++g->live.cqs;
  return &q->cq;
}
int destroyCq(ibv_cq* cq) {
  std::lock_guard lock(g->mu);
  auto* q = reinterpret_cast<Impl::Cq*>(cq);
  for (auto& [n, qp] : g->qps)
    if (qp->cq == q) return EBUSY;  // as verbs: QPs still use it
  if (q->channel) std::erase(q->channel->events, cq);
  --g->live.cqs;
  delete q;
  return 0;
}
int getCqEvent(ibv_comp_channel* ch, ibv_cq** cq, void** ctx) {
  uint64_t v;
  if (::read(ch->fd, &v, sizeof v) != sizeof v) return -1;  // errno EAGAIN: nothing yet
  std::lock_guard lock(g->mu);
  auto* c = reinterpret_cast<Impl::Channel*>(ch);
  if (c->events.empty()) {
    errno = EAGAIN;
    return -1;
  }
  *cq = c->events.front();
  c->events.pop_front();
  *ctx = (*cq)->cq_context;
  return 0;
}
void ackCqEvents(ibv_cq*, unsigned) {}

ibv_qp* createQp(ibv_pd* pd, ibv_qp_init_attr* a) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("create_qp")) {
    errno = ENOMEM;
    return nullptr;
  }
  if (a->qp_type != IBV_QPT_RC || !a->send_cq || a->cap.max_send_wr == 0 || a->cap.max_send_wr > 16384) {
    errno = EINVAL;
    return nullptr;
  }
  auto* q = new Impl::Qp;
  q->qp.context = pd->context;
  q->qp.pd = pd;
  q->qp.send_cq = a->send_cq;
  q->qp.recv_cq = a->recv_cq;
  q->qp.qp_num = g->next_qpn++;
  q->qp.state = IBV_QPS_RESET;
  q->qp.qp_type = IBV_QPT_RC;
  q->nic = reinterpret_cast<Impl::Pd*>(pd)->nic;
  q->pd = reinterpret_cast<Impl::Pd*>(pd);
  q->cq = reinterpret_cast<Impl::Cq*>(a->send_cq);
  q->max_send_wr = a->cap.max_send_wr;
  g->qps[q->qp.qp_num] = q;
  ++g->live.qps;
  ++g->created_qps;
  return &q->qp;
}

int modifyQp(ibv_qp* qp, ibv_qp_attr* a, int mask) {
  std::lock_guard lock(g->mu);
  if (g->injectLocked("modify_qp")) return EIO;
  auto* q = reinterpret_cast<Impl::Qp*>(qp);
  if (!(mask & IBV_QP_STATE)) return EINVAL;
  auto has = [&](int m) { return (mask & m) == m; };
  const ibv_qp_state from = qp->state, to = a->qp_state;
  if (to == IBV_QPS_ERR || to == IBV_QPS_RESET) {
    qp->state = to;
    g->cv.notify_all();  // its delayed requests flush now
    return 0;
  }
  if (from == IBV_QPS_RESET && to == IBV_QPS_INIT) {
    if (!has(IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) || a->port_num != 1) return EINVAL;
    q->access = static_cast<int>(a->qp_access_flags);
  } else if (from == IBV_QPS_INIT && to == IBV_QPS_RTR) {
    if (!has(IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
             IBV_QP_MIN_RNR_TIMER))
      return EINVAL;
    if (a->path_mtu > q->nic->spec.active_mtu) return EINVAL;  // above what the port runs
    if (!q->nic->spec.infiniband && !a->ah_attr.is_global) return EINVAL;  // RoCE needs a GRH
    if (a->ah_attr.is_global) {
      if (a->ah_attr.grh.sgid_index >= 3) return EINVAL;
      std::memcpy(q->dgid, a->ah_attr.grh.dgid.raw, 16);
    } else {
      // InfiniBand by LID: ours are ipv4_last + 1; the fake routes by GID.
      for (auto& n : g->nics)
        if (n->spec.infiniband && n->spec.ipv4_last + 1 == a->ah_attr.dlid) std::memcpy(q->dgid, n->gids[0], 16);
    }
    q->mtu = a->path_mtu;
    q->dest_qpn = a->dest_qp_num;
  } else if (from == IBV_QPS_RTR && to == IBV_QPS_RTS) {
    if (!has(IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
      return EINVAL;
  } else {
    return EINVAL;
  }
  qp->state = to;
  return 0;
}

int destroyQp(ibv_qp* qp) {
  std::lock_guard lock(g->mu);
  g->qps.erase(qp->qp_num);
  std::erase_if(g->jobs, [&](const Impl::Job& j) { return j.qpn == qp->qp_num; });
  --g->live.qps;
  delete reinterpret_cast<Impl::Qp*>(qp);
  return 0;
}

int getAsyncEvent(ibv_context* c, ibv_async_event* ev) {
  uint64_t v;
  if (::read(c->async_fd, &v, sizeof v) != sizeof v) return -1;  // errno EAGAIN: none
  std::lock_guard lock(g->mu);
  auto* ctx = reinterpret_cast<Impl::Ctx*>(c);
  if (ctx->events.empty()) {
    errno = EAGAIN;
    return -1;
  }
  *ev = ctx->events.front();
  ctx->events.pop_front();
  return 0;
}
void ackAsyncEvent(ibv_async_event*) {}

int postSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) {
  std::lock_guard lock(g->mu);
  auto* q = reinterpret_cast<Impl::Qp*>(qp);
  if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) {
    *bad = wr;
    return EINVAL;
  }
  uint32_t n = 0;
  for (ibv_send_wr* w = wr; w; w = w->next) ++n;
  if (q->held + n > q->max_send_wr) {
    ++g->violations;
    *bad = wr;
    return ENOMEM;
  }
  for (ibv_send_wr* w = wr; w; w = w->next) {
    if (w->num_sge != 1 || (w->opcode != IBV_WR_RDMA_WRITE && w->opcode != IBV_WR_RDMA_READ)) {
      *bad = w;
      return EINVAL;
    }
    const bool sig = w->send_flags & IBV_SEND_SIGNALED;
    g->jobs.push_back({Clock::now() + g->delay, qp->qp_num, w->wr_id, w->opcode, sig, *w->sg_list, w->wr.rdma.remote_addr, w->wr.rdma.rkey});
    ++q->held;
    ++g->posted;
    if (sig) ++g->signaled;
  }
  g->cv.notify_one();
  return 0;
}

int pollCq(ibv_cq* cq, int n, ibv_wc* wc) {
  std::lock_guard lock(g->mu);
  auto* q = reinterpret_cast<Impl::Cq*>(cq);
  int k = 0;
  while (k < n && !q->entries.empty()) {
    wc[k++] = q->entries.front();
    q->entries.pop_front();
  }
  return k;
}

int reqNotify(ibv_cq* cq, int) {
  std::lock_guard lock(g->mu);
  reinterpret_cast<Impl::Cq*>(cq)->armed = true;
  return 0;
}

const char* wcStatusStr(ibv_wc_status s) {
  switch (s) {
    case IBV_WC_SUCCESS: return "success";
    case IBV_WC_LOC_PROT_ERR: return "local protection error";
    case IBV_WC_WR_FLUSH_ERR: return "Work Request Flushed Error";
    case IBV_WC_REM_ACCESS_ERR: return "remote access error";
    case IBV_WC_REM_INV_REQ_ERR: return "remote invalid request error";
    case IBV_WC_RETRY_EXC_ERR: return "transport retry counter exceeded";
    default: return "other error";
  }
}

std::shared_ptr<const VerbsApi> makeTable() {
  auto t = std::make_shared<VerbsApi>();
  t->provider = "emulated";
  t->get_device_list = &getDeviceList;
  t->free_device_list = &freeDeviceList;
  t->get_device_name = &getDeviceName;
  t->open_device = &openDevice;
  t->close_device = &closeDevice;
  t->query_device = &queryDevice;
  t->query_port = &queryPort;
  t->query_gid_ex = &queryGid;
  t->alloc_pd = &allocPd;
  t->dealloc_pd = &deallocPd;
  t->reg_mr = &regMr;
  t->dereg_mr = &deregMr;
  t->create_comp_channel = &createChannel;
  t->destroy_comp_channel = &destroyChannel;
  t->create_cq = &createCq;
  t->destroy_cq = &destroyCq;
  t->get_cq_event = &getCqEvent;
  t->ack_cq_events = &ackCqEvents;
  t->create_qp = &createQp;
  t->modify_qp = &modifyQp;
  t->destroy_qp = &destroyQp;
  t->get_async_event = &getAsyncEvent;
  t->ack_async_event = &ackAsyncEvent;
  t->post_send = &postSend;
  t->poll_cq = &pollCq;
  t->req_notify_cq = &reqNotify;
  t->wc_status_str = &wcStatusStr;
  return t;
}

}  // namespace

FakeFabric::FakeFabric() : impl_(std::make_unique<Impl>()) {
  g = impl_.get();
  impl_->worker = std::thread([this] { impl_->workerLoop(); });
  registerVerbsProvider("emulated", [](std::shared_ptr<const VerbsApi>& out) {
    if (!g) return Status::NotSupported("no emulated fabric");
    out = makeTable();
    return Status::OK();
  });
}

FakeFabric::~FakeFabric() {
  registerVerbsProvider("emulated", nullptr);
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  impl_->worker.join();
  g = nullptr;
}

void FakeFabric::addNic(const NicSpec& spec) {
  std::lock_guard lock(impl_->mu);
  auto n = std::make_unique<Impl::NicState>();
  n->spec = spec;
  std::snprintf(n->device.name, sizeof n->device.name, "%s", spec.name.c_str());
  const uint8_t k = static_cast<uint8_t>(impl_->nics.size() + 1);
  uint8_t* ll = n->gids[0];
  ll[0] = 0xfe;
  ll[1] = 0x80;
  ll[15] = k;
  std::memcpy(n->gids[1], ll, 16);
  n->gids[1][14] = 1;  // RoCEv1 twin
  uint8_t* v4 = n->gids[2];
  v4[10] = v4[11] = 0xff;
  v4[12] = 10;
  v4[14] = k;
  v4[15] = spec.ipv4_last;
  impl_->nics.push_back(std::move(n));
}

void FakeFabric::setLinkDown(const std::string& nic, bool down) {
  std::lock_guard lock(impl_->mu);
  for (auto& n : impl_->nics) {
    if (n->spec.name != nic || n->down == down) continue;
    n->down = down;
    for (Impl::Ctx* c : n->contexts) {  // as the port changes state: an async event each
      ibv_async_event ev{};
      ev.element.port_num = 1;
      ev.event_type = down ? IBV_EVENT_PORT_ERR : IBV_EVENT_PORT_ACTIVE;
      c->events.push_back(ev);
      uint64_t one = 1;
      [[maybe_unused]] ssize_t w = ::write(c->c.async_fd, &one, sizeof one);
    }
  }
}

void FakeFabric::failCall(const std::string& verb, int nth) {
  std::lock_guard lock(impl_->mu);
  impl_->fail_verb = verb;
  impl_->fail_in = nth;
}

void FakeFabric::setCompletionDelay(std::chrono::microseconds delay) {
  std::lock_guard lock(impl_->mu);
  impl_->delay = delay;
}

LiveObjects FakeFabric::live() const {
  std::lock_guard lock(impl_->mu);
  return impl_->live;
}

uint64_t FakeFabric::bytesVia(const std::string& nic) const {
  std::lock_guard lock(impl_->mu);
  for (auto& n : impl_->nics)
    if (n->spec.name == nic) return n->bytes;
  return 0;
}

uint64_t FakeFabric::postedRequests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->posted;
}
uint64_t FakeFabric::signaledRequests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->signaled;
}
uint64_t FakeFabric::capacityViolations() const {
  std::lock_guard lock(impl_->mu);
  return impl_->violations;
}
int FakeFabric::qpsOn(const std::string& nic) const {
  std::lock_guard lock(impl_->mu);
  int n = 0;
  for (auto& [num, q] : impl_->qps) n += q->nic->spec.name == nic;
  return n;
}

uint64_t FakeFabric::createdQps() const {
  std::lock_guard lock(impl_->mu);
  return impl_->created_qps;
}
uint64_t FakeFabric::controlCalls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->control_calls;
}

}  // namespace ferry::rdma::fake
