#include "transport/rdma/verbs_api.h"

#include "common/named_providers.h"

#include <dlfcn.h>

#include <cstring>
#include <mutex>

namespace ferry::rdma {

namespace {

// Symbols of libibverbs.so.1 the wrappers below call (resolved once).
struct SystemSymbols {
  int (*query_port)(ibv_context*, uint8_t, _compat_ibv_port_attr*) = nullptr;
  int (*query_gid_ex)(ibv_context*, uint32_t, uint32_t, ibv_gid_entry*, uint32_t, size_t) = nullptr;
  ibv_mr* (*reg_mr_iova2)(ibv_pd*, void*, size_t, uint64_t, unsigned int) = nullptr;
};
SystemSymbols sys;

// The header's ibv_query_port without its fallback symbol reference: extended contexts
// answer with the full attribute struct, old ones through the compat entry point.
int systemQueryPort(ibv_context* c, uint8_t port, ibv_port_attr* attr) {
  verbs_context* v = verbs_get_ctx_op(c, query_port);
  if (v) return v->query_port(c, port, attr, sizeof *attr);
  std::memset(attr, 0, sizeof *attr);
  return sys.query_port(c, port, reinterpret_cast<_compat_ibv_port_attr*>(attr));
}
int systemQueryGid(ibv_context* c, uint32_t port, uint32_t index, ibv_gid_entry* e) {
  return sys.query_gid_ex(c, port, index, e, 0, sizeof *e);
}
ibv_mr* systemRegMr(ibv_pd* pd, void* addr, size_t length, int access) {
  return sys.reg_mr_iova2(pd, addr, length, reinterpret_cast<uintptr_t>(addr), static_cast<unsigned>(access));
}
int systemPostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) { return ibv_post_send(qp, wr, bad); }
int systemPollCq(ibv_cq* cq, int n, ibv_wc* wc) { return ibv_poll_cq(cq, n, wc); }
int systemReqNotify(ibv_cq* cq, int solicited_only) { return ibv_req_notify_cq(cq, solicited_only); }

Status loadSystem(std::shared_ptr<const VerbsApi>& out) {
  static std::once_flag once;
  static std::shared_ptr<const VerbsApi> table;
  static Status why;
  std::call_once(once, [] {
    void* lib = ::dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = ::dlerror();
      why = Status::NotSupported(std::string("libibverbs.so.1 not loadable (install rdma-core / ibverbs-providers): ") +
                                 (e ? e : "?"));
      return;
    }
    auto api = std::make_shared<VerbsApi>();
    api->provider = "libibverbs.so.1";
    std::string missing;
    auto bind = [&](auto& fn, const char* symbol) {
      void* p = ::dlsym(lib, symbol);
      if (!p) missing += std::string(missing.empty() ? "" : ", ") + symbol;
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    bind(api->get_device_list, "ibv_get_device_list");
    bind(api->free_device_list, "ibv_free_device_list");
    bind(api->get_device_name, "ibv_get_device_name");
    bind(api->open_device, "ibv_open_device");
    bind(api->close_device, "ibv_close_device");
    bind(api->query_device, "ibv_query_device");
    bind(sys.query_port, "ibv_query_port");
    bind(sys.query_gid_ex, "_ibv_query_gid_ex");  // rdma-core >= 32
    bind(api->alloc_pd, "ibv_alloc_pd");
    bind(api->dealloc_pd, "ibv_dealloc_pd");
    bind(sys.reg_mr_iova2, "ibv_reg_mr_iova2");
    bind(api->dereg_mr, "ibv_dereg_mr");
    bind(api->create_comp_channel, "ibv_create_comp_channel");
    bind(api->destroy_comp_channel, "ibv_destroy_comp_channel");
    bind(api->create_cq, "ibv_create_cq");
    bind(api->destroy_cq, "ibv_destroy_cq");
    bind(api->get_cq_event, "ibv_get_cq_event");
    bind(api->ack_cq_events, "ibv_ack_cq_events");
    bind(api->create_qp, "ibv_create_qp");
    bind(api->modify_qp, "ibv_modify_qp");
    bind(api->destroy_qp, "ibv_destroy_qp");
    bind(api->get_async_event, "ibv_get_async_event");
    bind(api->ack_async_event, "ibv_ack_async_event");
    bind(api->wc_status_str, "ibv_wc_status_str");
    if (!missing.empty()) {
      // Keep the library loaded: unloading a provider library is not safe once opened.
      why = Status::NotSupported("libibverbs.so.1 lacks " + missing + " (rdma-core too old?)");
      return;
    }
    api->query_port = &systemQueryPort;
    api->query_gid_ex = &systemQueryGid;
    api->reg_mr = &systemRegMr;
    api->post_send = &systemPostSend;
    api->poll_cq = &systemPollCq;
    api->req_notify_cq = &systemReqNotify;
    table = std::move(api);
  });
  out = table;
  return table ? Status::OK() : why;
}

NamedProviders<VerbsApi>& providers() {
  static NamedProviders<VerbsApi> p;
  return p;
}

}  // namespace

void registerVerbsProvider(const std::string& name, VerbsFactory factory) {
  if (name != "system") providers().set(name, std::move(factory));
}

Status loadVerbs(const std::string& name, std::shared_ptr<const VerbsApi>& out) {
  out.reset();
  if (name == "system") return loadSystem(out);
  return providers().make(name, "verbs", out);
}

}  // namespace ferry::rdma
