#include "transport/registry.h"

#include "transport/fault/fault_transport.h"
#include "transport/file/file_transport.h"
#include "transport/local/local_transport.h"
#include "transport/nvlink/nvlink_transport.h"
#include "transport/rdma/rdma_transport.h"
#include "transport/shm/shm_transport.h"
#include "transport/tcp/tcp_transport.h"

namespace ferry {

namespace {
template <typename T>
std::unique_ptr<Transport> make() {
  return std::make_unique<T>();
}
}  // namespace

const std::vector<TransportInfo>& transportRegistry() {
  // Preference order: the first that can reach a peer serves it (see TransportInfo::group).
  static const std::vector<TransportInfo> registry = {
      {"local", 0, &LocalTransport::declareOptions, &make<LocalTransport>},
      {"nvlink", 1, &NvlinkTransport::declareOptions, &make<NvlinkTransport>},  // GPU memory of same-machine peers
      {"shm", 1, &ShmTransport::declareOptions, &make<ShmTransport>},
      {"file", 1, &FileTransport::declareOptions, &make<FileTransport>},  // file segments only
      {"rdma", 2, &RdmaTransport::declareOptions, &make<RdmaTransport>},  // inert without NICs
      {"tcp", 2, &TcpTransport::declareOptions, &make<TcpTransport>},
  };
  return registry;
}

const TransportInfo* findTransport(std::string_view name) {
  for (const auto& t : transportRegistry())
    if (name == t.name) return &t;
  return nullptr;
}

void declareTransportOptions(OptionTable& table) {
  for (const auto& t : transportRegistry()) {
    OptionTable own("transports/" + std::string(t.name));
    own.flag("enable", true, "use this transport");
    t.declare_options(own);
    FaultTransport::declareOptions(own);
    table.append(own);
  }
}

std::vector<std::unique_ptr<Transport>> createTransports(const Config& config) {
  std::vector<std::unique_ptr<Transport>> out;
  for (const auto& e : transportRegistry()) {
    std::string key = std::string("transports/") + e.name;
    if (!config.get<bool>(key + "/enable")) continue;
    auto t = e.make();
    FaultTransport::Rates faults{config.get<uint64_t>(key + "/fault/fail_submit_every"),
                                 config.get<uint64_t>(key + "/fault/fail_slice_every"),
                                 config.get<uint64_t>(key + "/fault/flip_byte_every")};
    if (faults.fail_submit_every || faults.fail_slice_every || faults.flip_byte_every)
      t = std::make_unique<FaultTransport>(std::move(t), faults);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace ferry
