// One RDMA NIC port as the rdma transport uses it: the opened context, its protection domain,
// one completion queue with its completion channel, the chosen GID and the port's MTU, and the
// thread that reaps the CQ. Queue pairs are created here and registered by number, so a
// completion finds its owner (a QpOwner: an initiator's path) through the device alone.
//
// The completion thread sleeps on the completion channel (no busy polling) and the device's
// async event descriptor, and wakes every sweep interval to let owners check deadlines and
// drains. Async events: port down fails every owner on the device and makes it unusable for
// new paths until the port is ACTIVE again; a fatal device error does so for good; a QP's
// fatal event fails that QP's owner. The CQ's room is budgeted: every
// work request posted on the device holds one CQE slot until it is retired (an error or a
// flush produces a CQE even for an unsignaled request), so the CQ can never overflow.
//
// Locks: mu_ (the QP map) is a leaf; owners are called with no device lock held.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "ferry/status.h"
#include "transport/rdma/verbs_api.h"

namespace ferry::rdma {

/// Who owns some queue pairs of a device and hears their completions.
class QpOwner {
 public:
  virtual ~QpOwner() = default;
  /// Completions of this owner's QPs, in CQ order (on the device's completion thread).
  virtual void onCompletions(const ibv_wc* wc, int count) = 0;
  /// Every sweep interval, on the completion thread: deadlines, bounded drains.
  virtual void sweep(int64_t now_ns) = 0;
  /// The port went down, the device failed, or one of the owner's QPs hit a fatal error
  /// (async events): its work cannot finish here.
  virtual void fail(const Status& why) = 0;
  /// Since when it has had nothing to do (steady ns), or -1 while busy: idle owners may be
  /// closed to make room for new queue pairs.
  virtual int64_t idleSinceNs() { return -1; }
};

struct DeviceOptions {
  uint8_t port = 1;
  int gid_index = -1;     // -1: auto (rdma_gid.h)
  int mtu_bytes = 4096;   // upper bound; the port's active MTU may be lower
  int max_cqe = 4096;
  int sweep_ms = 100;
  int spin_us = 0;  // polling mode: poll the CQ this long after the last completion before sleeping
};

/// What a peer needs to reach one of our ports (the handshake's fields).
struct PortAddress {
  uint16_t lid = 0;
  uint8_t gid[16] = {};
  uint8_t gid_index = 0;
  bool ib_link = false;
};

class RdmaDevice {
 public:
  RdmaDevice(std::shared_ptr<const VerbsApi> verbs, std::string name) : verbs_(std::move(verbs)), name_(std::move(name)) {}
  ~RdmaDevice();
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;

  /// Opens `device` (from the provider's list): ACTIVE port, GID, PD, channel, CQ. Nothing is
  /// left open on failure.
  Status open(ibv_device* device, const DeviceOptions& options);
  /// Starts the completion thread.
  void start();
  /// Stops and joins the completion thread (owners are not called after it returns).
  void stopThread();
  /// Destroys every verbs object (after stopThread and after every QP is gone).
  void close();

  const std::string& name() const { return name_; }
  const VerbsApi& verbs() const { return *verbs_; }
  ibv_pd* pd() const { return pd_; }
  const PortAddress& address() const { return address_; }
  ibv_mtu activeMtu() const { return mtu_; }
  int numaNode() const { return numa_; }
  int speedGbps() const { return speed_gbps_; }
  const std::string& gidReason() const { return gid_reason_; }
  /// Whether new paths may use it (its port is up and the device has not failed).
  bool usable() const { return usable_.load(std::memory_order_acquire); }
  /// "active", "down" or "failed" (ferry-info).
  const char* stateName() const;

  /// A new RC QP in INIT (send queue of `max_wr`), registered to `owner` when given.
  Status createQp(uint32_t max_wr, std::shared_ptr<QpOwner> owner, ibv_qp*& out);
  /// INIT -> RTR -> RTS towards the remote QP.
  struct Connect {
    uint32_t remote_qpn = 0, remote_psn = 0, local_psn = 0;
    uint16_t remote_lid = 0;
    const uint8_t* remote_gid = nullptr;
    ibv_mtu mtu = IBV_MTU_1024;
    uint8_t timeout = 14, retry_cnt = 7, rnr_retry = 7;
  };
  Status connectQp(ibv_qp* qp, const Connect& c);
  /// Moves a QP to ERR: its outstanding requests complete as flushed.
  void errorQp(ibv_qp* qp);
  /// Unregisters and destroys a QP.
  void destroyQp(ibv_qp* qp);
  size_t qpCount() const { return qp_count_.load(std::memory_order_relaxed); }
  /// Closes idle owners, longest idle first, until `count` QPs are gone or none is idle;
  /// returns how many went.
  size_t closeIdle(size_t count);

  /// CQ room for `n` more work requests (false: none taken); released when they retire.
  bool reserveCqe(int n);
  void releaseCqe(int n);

 private:
  void completionLoop();
  Status queryGid();
  // Reads and acknowledges the pending async events.
  void onAsyncEvents(log::RateLimit& lines);
  // Every registered owner (once each), for sweeps and failures.
  std::vector<std::shared_ptr<QpOwner>> ownersSnapshot();

  std::shared_ptr<const VerbsApi> verbs_;
  const std::string name_;
  DeviceOptions options_;
  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
  int wake_fd_ = -1;  // eventfd: stop
  PortAddress address_;
  ibv_mtu mtu_ = IBV_MTU_1024;
  int numa_ = -1;
  int speed_gbps_ = 0;
  std::string gid_reason_;
  std::atomic<int> cq_room_{0};
  std::atomic<size_t> qp_count_{0};

  std::mutex mu_;  // guards owners_; a leaf
  std::map<uint32_t, std::shared_ptr<QpOwner>> owners_;  // by QP number
  std::atomic<bool> stopping_{false};
  std::atomic<bool> usable_{true};
  std::atomic<bool> fatal_{false};
  std::thread thread_;
};

/// "mlx5_0" -> NUMA node from sysfs (-1 when unknown).
int deviceNumaNode(const std::string& name);
/// Bytes of an ibv_mtu.
int mtuBytes(ibv_mtu mtu);
/// The largest ibv_mtu not above `bytes` (at least 256).
ibv_mtu mtuFromBytes(int bytes);

}  // namespace ferry::rdma
