#include <functional>

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
    {"tcp", [] { return std::make_unique<TcpTransport>(); }},
};
}  // namespace

std::vector<std::unique_ptr<Transport>> createTransports(const Config& config) {
  std::vector<std::unique_ptr<Transport>> out;
  for (const auto& e : kTransports)
    if (config.get<bool>(std::string("transports/") + e.name + "/enable", true))
      out.push_back(e.make());
  return out;
}

}  // namespace ferry
