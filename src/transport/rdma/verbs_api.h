// The seam between the rdma transport and libibverbs: every verb the transport calls goes
// through this table of function pointers. The system provider fills it from
// `libibverbs.so.1` opened at run time (dlopen), so libferry.so has no link-time dependency
// on rdma-core and runs where it is missing; only its headers are needed to build. Tests
// register another provider under a name (an in-process emulation, tests/rdma/fake_verbs.h)
// and select it with `transports/rdma/provider`, which drives the same transport logic.
//
// rdma-core's data-path calls (ibv_post_send, ibv_poll_cq, ibv_req_notify_cq) are header
// inlines that dispatch through the context's ops; the system provider wraps them, and
// others implement them directly, so the transport never calls a verb outside this table.
#pragma once

#include <infiniband/verbs.h>

#include <functional>
#include <memory>
#include <string>

#include "ferry/status.h"

namespace ferry::rdma {

struct VerbsApi {
  std::string provider;  // where it came from, for logs ("libibverbs.so.1", "emulated")

  ibv_device** (*get_device_list)(int* num_devices) = nullptr;
  void (*free_device_list)(ibv_device** list) = nullptr;
  const char* (*get_device_name)(ibv_device* device) = nullptr;
  ibv_context* (*open_device)(ibv_device* device) = nullptr;
  int (*close_device)(ibv_context* context) = nullptr;
  int (*query_device)(ibv_context* context, ibv_device_attr* attr) = nullptr;
  int (*query_port)(ibv_context* context, uint8_t port, ibv_port_attr* attr) = nullptr;
  // One GID table entry with its type and netdev (rdma-core's _ibv_query_gid_ex).
  int (*query_gid_ex)(ibv_context* context, uint32_t port, uint32_t index, ibv_gid_entry* entry) = nullptr;

  ibv_pd* (*alloc_pd)(ibv_context* context) = nullptr;
  int (*dealloc_pd)(ibv_pd* pd) = nullptr;
  // Registers [addr, addr+length) with iova = addr (remote peers address it as we do).
  ibv_mr* (*reg_mr)(ibv_pd* pd, void* addr, size_t length, int access) = nullptr;
  int (*dereg_mr)(ibv_mr* mr) = nullptr;

  ibv_comp_channel* (*create_comp_channel)(ibv_context* context) = nullptr;
  int (*destroy_comp_channel)(ibv_comp_channel* channel) = nullptr;
  ibv_cq* (*create_cq)(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel,
                       int comp_vector) = nullptr;
  int (*destroy_cq)(ibv_cq* cq) = nullptr;
  int (*get_cq_event)(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) = nullptr;
  void (*ack_cq_events)(ibv_cq* cq, unsigned int count) = nullptr;

  ibv_qp* (*create_qp)(ibv_pd* pd, ibv_qp_init_attr* attr) = nullptr;
  int (*modify_qp)(ibv_qp* qp, ibv_qp_attr* attr, int mask) = nullptr;
  int (*destroy_qp)(ibv_qp* qp) = nullptr;

  int (*get_async_event)(ibv_context* context, ibv_async_event* event) = nullptr;
  void (*ack_async_event)(ibv_async_event* event) = nullptr;

  // The data path.
  int (*post_send)(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) = nullptr;
  int (*poll_cq)(ibv_cq* cq, int num_entries, ibv_wc* wc) = nullptr;
  int (*req_notify_cq)(ibv_cq* cq, int solicited_only) = nullptr;
  const char* (*wc_status_str)(ibv_wc_status status) = nullptr;
};

/// Makes a provider's table; NotSupported (with the reason) when it cannot.
using VerbsFactory = std::function<Status(std::shared_ptr<const VerbsApi>& out)>;

/// Makes `name` available to `loadVerbs` (tests: "emulated"). Replaces an earlier one of the
/// same name; an empty factory removes it. "system" is built in and cannot be replaced.
void registerVerbsProvider(const std::string& name, VerbsFactory factory);

/// The table of provider `name`: "system" opens libibverbs.so.1 (once per process; the
/// library stays loaded). NotSupported with the reason when the library or a symbol is
/// missing, NotFound for an unknown provider.
Status loadVerbs(const std::string& name, std::shared_ptr<const VerbsApi>& out);

}  // namespace ferry::rdma
