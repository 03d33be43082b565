#include "transport/rdma/rdma_path.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>

#include "common/log.h"

namespace ferry::rdma {

Status completionStatus(const VerbsApi& verbs, const ibv_wc& wc, const std::string& where) {
  const std::string text = where + ": " + (verbs.wc_status_str ? verbs.wc_status_str(wc.status) : "error") +
                           " (status " + std::to_string(wc.status) + ", vendor error " +
                           std::to_string(wc.vendor_err) + ")";
  switch (wc.status) {
    case IBV_WC_REM_ACCESS_ERR:
      return Status::PermissionDenied(text + ": the target refused the access (memory not registered for it, "
                                             "read-only, or a stale key)");
    case IBV_WC_REM_INV_REQ_ERR:
      return Status::InvalidArgument(text + ": the target refused the request (length or range)");
    case IBV_WC_LOC_PROT_ERR:
      return Status::InvalidArgument(text + ": our local memory is no longer registered");
    case IBV_WC_RETRY_EXC_ERR:
      return Status::Unavailable(text + ": no answer from the peer NIC (peer down, or a GID/routing problem)");
    case IBV_WC_RNR_RETRY_EXC_ERR:
      return Status::Unavailable(text + ": the peer was not ready to receive");
    default:
      return Status::Unavailable(text);
  }
}

bool isRefusal(const Status& s) {
  return s.code() == Status::Code::kPermissionDenied || s.code() == Status::Code::kInvalidArgument;
}

RdmaPath::~RdmaPath() {
  // Normally closed already (the device's map kept us alive until the QPs were destroyed).
  for (Qp& q : qps_)
    if (q.qp) device_.destroyQp(q.qp);
}

Status RdmaPath::prepare(rdma_wire::ConnectInfo& request) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  qps_.resize(options_.qps);
  for (Qp& q : qps_) {
    Status st = device_.createQp(options_.max_wr, shared_from_this(), q.qp);
    if (!st.ok()) {
      abandon();
      return st;
    }
    q.psn = rng() & 0xffffff;
    request.qp_nums.push_back(q.qp->qp_num);
    request.psns.push_back(q.psn);
  }
  const PortAddress& a = device_.address();
  request.lid = a.lid;
  std::memcpy(request.gid, a.gid, 16);
  request.mtu = static_cast<uint8_t>(device_.activeMtu());
  return Status::OK();
}

Status RdmaPath::complete(const rdma_wire::ConnectInfo& reply) {
  if (reply.qp_nums.size() != qps_.size())
    return Status::Corrupted("rdma connect: the peer answered with " + std::to_string(reply.qp_nums.size()) +
                             " queue pairs for " + std::to_string(qps_.size()));
  mtu_ = std::min(device_.activeMtu(), static_cast<ibv_mtu>(reply.mtu));
  for (size_t i = 0; i < qps_.size(); ++i) {
    RdmaDevice::Connect c;
    c.remote_qpn = reply.qp_nums[i];
    c.remote_psn = reply.psns[i];
    c.local_psn = qps_[i].psn;
    c.remote_lid = reply.lid;
    c.remote_gid = reply.gid;
    c.mtu = mtu_;
    c.timeout = options_.timeout;
    c.retry_cnt = options_.retry_cnt;
    c.rnr_retry = options_.rnr_retry;
    FERRY_RETURN_IF_ERROR(device_.connectQp(qps_[i].qp, c));
  }
  last_used_ns_ = nowNs();
  state_.store(State::kReady, std::memory_order_release);
  return Status::OK();
}

void RdmaPath::abandon() {
  std::vector<ibv_qp*> qps;
  {
    std::lock_guard lock(mu_);
    state_.store(State::kClosed, std::memory_order_release);
    for (Qp& q : qps_)
      if (q.qp) qps.push_back(std::exchange(q.qp, nullptr));
  }
  for (ibv_qp* qp : qps) device_.destroyQp(qp);
}

RdmaPath::Qp* RdmaPath::findLocked(uint32_t qp_num) {
  for (Qp& q : qps_)
    if (q.qp && q.qp->qp_num == qp_num) return &q;
  return nullptr;
}

void RdmaPath::post(std::vector<RdmaWork> work) {
  Outcome out;
  {
    std::lock_guard lock(mu_);
    if (state_.load(std::memory_order_relaxed) != State::kReady) {
      for (const RdmaWork& w : work) out.back.push_back(w.slice);
    } else {
      last_used_ns_ = nowNs();
      for (const RdmaWork& w : work) {
        backlog_.push_back(w);
        load_.fetch_add(w.slice->length, std::memory_order_relaxed);
      }
      postLocked(out);
    }
    captureLocked(out);
  }
  finish(out);
}

void RdmaPath::captureLocked(Outcome& out) const {
  if (out.back.empty() && !out.newly_failed) return;  // the common case: nothing to explain
  out.why = why_.ok() ? Status::Unavailable("rdma path to " + device_.name() + " closed") : why_;
}

void RdmaPath::postLocked(Outcome& out) {
  const VerbsApi& v = device_.verbs();
  constexpr size_t kMaxChain = 64;
  ibv_send_wr wrs[kMaxChain];
  ibv_sge sges[kMaxChain];
  while (!backlog_.empty() && state_.load(std::memory_order_relaxed) == State::kReady) {
    // Canceled or out-of-time work is dropped unposted.
    if (Status admit = admitSlice(*backlog_.front().slice); !admit.ok()) {
      load_.fetch_sub(backlog_.front().slice->length, std::memory_order_relaxed);
      out.failed.emplace_back(backlog_.front().slice, std::move(admit));
      backlog_.pop_front();
      continue;
    }
    // The QP with the most send-queue room, round-robin among equals.
    Qp* q = nullptr;
    size_t room = 0;
    for (size_t k = 0; k < qps_.size(); ++k) {
      Qp& c = qps_[(next_qp_ + k) % qps_.size()];
      size_t r = options_.max_wr - std::min<size_t>(options_.max_wr, c.ledger.size());
      if (r > room) {
        room = r;
        q = &c;
      }
    }
    if (!q) return;  // every queue full: completions will post the rest
    next_qp_ = (static_cast<size_t>(q - qps_.data()) + 1) % qps_.size();
    int n = static_cast<int>(std::min({backlog_.size(), room, size_t{options_.post_batch}, kMaxChain}));
    for (int i = 1; i < n; ++i)  // the chain ends before work that may not start (dropped next round)
      if (!admitSlice(*backlog_[static_cast<size_t>(i)].slice).ok()) {
        n = i;
        break;
      }
    while (n > 0 && !device_.reserveCqe(n)) n /= 2;
    if (n == 0) return;  // the CQ is full of others' work: retried on the next completion
    for (int i = 0; i < n; ++i) {
      const RdmaWork& w = backlog_[static_cast<size_t>(i)];
      Slice* s = w.slice;
      sges[i] = {reinterpret_cast<uintptr_t>(s->local), s->length, w.lkey};
      ibv_send_wr& wr = wrs[i];
      wr = {};
      wr.wr_id = q->next_seq;
      wr.next = i + 1 < n ? &wrs[i + 1] : nullptr;
      wr.sg_list = &sges[i];
      wr.num_sge = 1;
      wr.opcode = s->op == Request::WRITE ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
      wr.wr.rdma.remote_addr = s->remote;
      wr.wr.rdma.rkey = w.rkey;
      if (++q->unsignaled >= options_.signal_every || i + 1 == n) {
        wr.send_flags = IBV_SEND_SIGNALED;
        q->unsignaled = 0;
        signaled_.fetch_add(1, std::memory_order_relaxed);
      }
      q->ledger.push_back({q->next_seq++, s});
    }
    ibv_send_wr* bad = nullptr;
    int rc = v.post_send(q->qp, wrs, &bad);
    int posted = n;
    if (rc != 0) {
      posted = bad ? static_cast<int>(bad - wrs) : 0;
      for (int i = posted; i < n; ++i) {  // never reached the queue: still ours, still in the backlog
        q->ledger.pop_back();
        --q->next_seq;
      }
      device_.releaseCqe(n - posted);
    }
    for (int i = 0; i < posted; ++i) backlog_.pop_front();
    posted_.fetch_add(static_cast<uint64_t>(posted), std::memory_order_relaxed);
    if (rc != 0) {
      failLocked(Status::Unavailable(device_.name() + ": post_send: " + std::strerror(rc)), out);
      return;
    }
  }
}

Slice* RdmaPath::popLocked(Qp& q) {
  Slice* s = q.ledger.front().slice;
  q.ledger.pop_front();
  load_.fetch_sub(s->length, std::memory_order_relaxed);
  return s;
}

void RdmaPath::retireLocked(Qp& q, uint64_t seq, bool inclusive, bool success, Outcome& out) {
  int retired = 0;
  while (!q.ledger.empty() && (q.ledger.front().seq < seq || (inclusive && q.ledger.front().seq == seq))) {
    (success ? out.ok : out.back).push_back(popLocked(q));
    ++retired;
  }
  if (retired) device_.releaseCqe(retired);
}

void RdmaPath::onCompletions(const ibv_wc* wc, int count) {
  Outcome out;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < count; ++i) {
      Qp* q = findLocked(wc[i].qp_num);
      if (!q) continue;
      if (wc[i].status == IBV_WC_SUCCESS) {
        retireLocked(*q, wc[i].wr_id, true, true, out);
        continue;
      }
      if (q->errored) {  // flushed after the first error
        retireLocked(*q, wc[i].wr_id, true, false, out);
        continue;
      }
      // The first error of this QP: what came before it completed (in order).
      q->errored = true;
      retireLocked(*q, wc[i].wr_id, false, true, out);
      Status st = completionStatus(device_.verbs(), wc[i],
                                   "rdma " + device_.name() + " qp " + std::to_string(wc[i].qp_num));
      if (!q->ledger.empty() && q->ledger.front().seq == wc[i].wr_id) {
        Slice* s = popLocked(*q);
        device_.releaseCqe(1);
        if (isRefusal(st) && wc[i].status != IBV_WC_WR_FLUSH_ERR) {
          out.failed.emplace_back(s, st);
          out.refused = true;
        } else
          out.back.push_back(s);
      }
      failLocked(st, out);
    }
    if (state_.load(std::memory_order_relaxed) == State::kReady)
      postLocked(out);
    else
      maybeCloseLocked(false, out);
    captureLocked(out);
  }
  finish(out);
}

int64_t RdmaPath::idleSinceNs() {
  std::lock_guard lock(mu_);
  if (state_.load(std::memory_order_relaxed) != State::kReady || !backlog_.empty()) return -1;
  for (const Qp& q : qps_)
    if (!q.ledger.empty()) return -1;
  return last_used_ns_;
}

void RdmaPath::sweep(int64_t now_ns) {
  Outcome out;
  {
    std::lock_guard lock(mu_);
    const State st = state_.load(std::memory_order_relaxed);
    if (st == State::kReady) {
      // Queued work that can no longer start in time is dropped unsent.
      for (auto it = backlog_.begin(); it != backlog_.end();) {
        Slice* s = it->slice;
        Status admit = s->deadline_ns && s->deadline_ns < now_ns
                           ? Status::Timeout("rdma: the slice could not start before its deadline")
                           : admitSlice(*s);
        if (!admit.ok()) {
          load_.fetch_sub(s->length, std::memory_order_relaxed);
          out.failed.emplace_back(s, std::move(admit));
          it = backlog_.erase(it);
        } else {
          ++it;
        }
      }
      // Work waiting for CQ room held by other paths of the NIC gets no completion of its
      // own to wake it: try again now.
      if (!backlog_.empty()) postLocked(out);
      bool overdue = false;
      for (const Qp& q : qps_)
        for (const Posted& p : q.ledger)
          overdue |= p.slice->deadline_ns && p.slice->deadline_ns < now_ns;
      if (overdue)
        failLocked(Status::Timeout("rdma " + device_.name() + ": a slice got no completion before its deadline"), out);
    } else if (st == State::kFailed && now_ns - failed_at_ns_ > options_.drain_ns) {
      FERRY_LOG(WARN) << "rdma " << device_.name() << ": queue pairs did not drain within "
                      << options_.drain_ns / 1000000 << " ms of failing; closing them";
      maybeCloseLocked(true, out);
    }
    captureLocked(out);
  }
  finish(out);
}

void RdmaPath::fail(const Status& why) {
  Outcome out;
  {
    std::lock_guard lock(mu_);
    failLocked(why, out);
    captureLocked(out);
  }
  finish(out);
}

void RdmaPath::failLocked(const Status& why, Outcome& out) {
  if (state_.load(std::memory_order_relaxed) != State::kReady) return;
  state_.store(State::kFailed, std::memory_order_release);
  why_ = why;
  failed_at_ns_ = nowNs();
  for (Qp& q : qps_) device_.errorQp(q.qp);
  for (const RdmaWork& w : backlog_) {
    load_.fetch_sub(w.slice->length, std::memory_order_relaxed);
    out.back.push_back(w.slice);
  }
  backlog_.clear();
  out.newly_failed = true;
  maybeCloseLocked(false, out);
}

void RdmaPath::maybeCloseLocked(bool force, Outcome& out) {
  if (state_.load(std::memory_order_relaxed) != State::kFailed) return;
  for (Qp& q : qps_) {
    if (!force && !q.ledger.empty()) return;
  }
  for (Qp& q : qps_) {
    if (!q.ledger.empty()) retireLocked(q, UINT64_MAX, true, false, out);
    if (q.qp) out.destroy.push_back(std::exchange(q.qp, nullptr));
  }
  state_.store(State::kClosed, std::memory_order_release);
}

void RdmaPath::finish(Outcome& out) {
  for (ibv_qp* qp : out.destroy) device_.destroyQp(qp);
  // The listener hears of a refusal before the refused slice completes: its caller may submit
  // again at once, and that submit must already know to check the peer's registry version.
  std::shared_ptr<PathListener> listener;
  if (out.newly_failed || out.refused || !out.back.empty()) listener = listener_.lock();
  if (out.refused && listener) listener->targetRefused(*this);
  if (out.newly_failed && listener) listener->pathFailed(*this, out.why);
  for (Slice* s : out.ok) completeSlice(s, Status::OK());
  for (auto& [s, st] : out.failed) completeSlice(s, st);
  if (out.back.empty()) return;
  if (listener) {
    listener->reroute(*this, std::move(out.back), out.why);
  } else {
    for (Slice* s : out.back) completeSlice(s, Status::Canceled("rdma: the peer endpoint is closed"));
  }
}

}  // namespace ferry::rdma
