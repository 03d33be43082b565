#include <functional>

#include "transport/fault/fault_transport.h"
#include "transport/file/file_transport.h"
#include "transport/local/local_transport.h"
#include "transport/shm/shm_transport.h"
#include "transport/tcp/tcp_transport.h"
#include "transport/transport.h"

namespace ferry {

namespace {
struct Entry {
  const char* name;
  std::function<std::unique_ptr<Transport>()> make;
};
// Preference order: the first that can reach a peer serves it.
const Entry kTransports[] = {
    {"local", [] { return std::make_unique<LocalTransport>(); }},
    {"shm", [] { return std::make_unique<ShmTransport>(); }},
    {"file", [] { return std::make_unique<FileTransport>(); }},  // file segments only
    {"tcp", [] { return std::make_unique<TcpTransport>(); }},
};
}  // namespace

std::vector<std::unique_ptr<Transport>> createTransports(const Config& config) {
  std::vector<std::unique_ptr<Transport>> out;
  for (const auto& e : kTransports) {
    std::string key = std::string("transports/") + e.name;
    if (!config.get<bool>(key + "/enable", true)) continue;
    auto t = e.make();
    uint64_t submit_every = config.get<uint64_t>(key + "/fault/fail_submit_every", 0);
    uint64_t slice_every = config.get<uint64_t>(key + "/fault/fail_slice_every", 0);
    if (submit_every || slice_every)
      t = std::make_unique<FaultTransport>(std::move(t), submit_every, slice_every);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace ferry
