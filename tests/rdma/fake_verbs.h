// An in-process emulation of the verbs the rdma transport calls (transport/rdma/verbs_api.h),
// registered as provider "emulated" for as long as a FakeFabric lives. It behaves as RC
// hardware does where the transport's logic depends on it:
//  - NICs with a port state, GID table (link-local, RoCEv1, RoCEv2 IPv4-mapped), active MTU,
//    NUMA node; contexts, PDs, MRs (lkey/rkey, bounds, access flags), CQs with a capacity,
//    completion channels (a readable descriptor), RC QPs;
//  - the QP state machine RESET -> INIT -> RTR -> RTS (-> ERR), each transition checking the
//    attributes it needs; RTR refuses a path MTU above the port's;
//  - posted work requests run in order per QP on a worker thread: RDMA WRITE/READ with the
//    local key checked against the QP's PD and the remote key against the target QP's PD,
//    range and access; a completion for signaled requests and for every error; the first
//    error moves the QP to ERR and every later request completes as flushed;
//  - the send queue holds a request until a completion covers it (posting past max_send_wr
//    fails with ENOMEM, as a full SQ does); a CQ past its capacity records an overflow.
// Faults: a NIC's link down (requests through it fail with "retry exceeded", the port's async
// events report it), the Nth call of
// a control verb fails, completions delayed, mismatched path MTUs refused by the responder.
// Counters: live objects of every kind (leak checks), bytes and requests per NIC.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/rdma/verbs_api.h"

namespace ferry::rdma::fake {

struct NicSpec {
  std::string name;
  ibv_mtu active_mtu = IBV_MTU_4096;
  int numa = 0;
  bool infiniband = false;  // else RoCE
  uint8_t ipv4_last = 1;    // the RoCEv2 GID is ::ffff:10.0.<n>.<ipv4_last>
};

struct LiveObjects {
  int contexts = 0, pds = 0, mrs = 0, channels = 0, cqs = 0, qps = 0;
  int total() const { return contexts + pds + mrs + channels + cqs + qps; }
};

class FakeFabric {
 public:
  FakeFabric();   // registers provider "emulated"; one fabric per process at a time
  ~FakeFabric();  // unregisters it

  void addNic(const NicSpec& spec);
  /// Requests through `nic` (either end) fail with IBV_WC_RETRY_EXC_ERR while it is down; its
  /// port reports DOWN, and every context open on it gets IBV_EVENT_PORT_ERR (and
  /// IBV_EVENT_PORT_ACTIVE when it comes back).
  void setLinkDown(const std::string& nic, bool down);
  /// The `nth` call from now of control verb `verb` ("create_qp", "modify_qp", "reg_mr", ...;
  /// "*" any) fails; 0 clears.
  void failCall(const std::string& verb, int nth);
  /// Every work request waits this long before it runs.
  void setCompletionDelay(std::chrono::microseconds delay);

  LiveObjects live() const;
  /// Payload bytes moved by requests posted on `nic`.
  uint64_t bytesVia(const std::string& nic) const;
  uint64_t postedRequests() const;
  uint64_t signaledRequests() const;
  /// Calls that were refused for exceeding a capacity (SQ depth, CQ size): must stay 0.
  uint64_t capacityViolations() const;
  /// Queue pairs alive on `nic` now (all contexts).
  int qpsOn(const std::string& nic) const;
  /// Queue pairs created so far (reconnects show here).
  uint64_t createdQps() const;
  /// Control verbs called so far (fail-the-Nth-call sweeps use it).
  uint64_t controlCalls() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::rdma::fake
