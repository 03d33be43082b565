// ferry-metadata: the HTTP metadata server (Mooncake's HTTP metadata protocol).
//   ferry-metadata --host=127.0.0.1 --port=8080 [--data_file=/var/lib/ferry/meta.json]
//                  [--auth_token_file=/etc/ferry/token]   (or FERRY_AUTH_TOKEN)
// GET/PUT/DELETE /metadata?key=K, GET /health. Stops on SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "common/auth.h"
#include "flags.h"
#include "metadata/metadata_server.h"

namespace {
std::atomic<bool> g_stop{false};
void onSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  ferry::tools::Flags f;
  f.define("host", "127.0.0.1", "address to listen on (0.0.0.0: all interfaces)");
  f.define("port", "8080", "port to listen on (0: any free port, printed)");
  f.define("data_file", "", "persist the store to this file (survives restarts)");
  f.define("max_key_bytes", "4096", "longest key accepted");
  f.define("max_value_bytes", "16M", "largest value accepted");
  f.define("max_keys", "100000", "most keys held");
  f.define("max_total_bytes", "1G", "most bytes held (keys and values)");
  f.define("max_connections", "256", "connections served at once");
  f.define("max_connections_per_address", "32", "connections from one source address");
  f.define("request_timeout_ms", "10000", "a request must arrive whole within this");
  f.define("auth_token", "", "cluster token: /metadata requests must be signed with it (FERRY_AUTH_TOKEN too)");
  f.define("auth_token_file", "", "file holding the cluster token (mode 0600)");
  std::string err;
  if (!f.parse(argc, argv, err)) {
    std::cerr << "ferry-metadata: " << err << "\n" << f.usage("ferry-metadata");
    return 2;
  }
  ferry::MetadataServer::Options o;
  o.bind_address = f.str("host");
  int64_t port = f.i64("port");
  if (port < 0 || port > 65535) {
    std::cerr << "ferry-metadata: --port must be 0..65535\n";
    return 2;
  }
  o.port = static_cast<uint16_t>(port);
  o.data_file = f.str("data_file");
  o.max_key_bytes = static_cast<size_t>(f.i64("max_key_bytes"));
  o.max_value_bytes = static_cast<size_t>(f.i64("max_value_bytes"));
  o.max_keys = static_cast<size_t>(f.i64("max_keys"));
  o.max_total_bytes = static_cast<size_t>(f.i64("max_total_bytes"));
  o.max_connections = static_cast<size_t>(f.i64("max_connections"));
  o.max_connections_per_address = static_cast<size_t>(f.i64("max_connections_per_address"));
  o.request_timeout_ms = static_cast<int>(f.i64("request_timeout_ms"));
  if (o.max_connections == 0 || o.request_timeout_ms <= 0) {
    std::cerr << "ferry-metadata: --max_connections and --request_timeout_ms must be positive\n";
    return 2;
  }
  ferry::Status token = ferry::auth::resolveToken(f.str("auth_token"), f.str("auth_token_file"), o.token);
  if (!token.ok()) {
    std::cerr << "ferry-metadata: " << token.ToString() << "\n";
    return 2;
  }
  ::signal(SIGINT, onSignal);
  ::signal(SIGTERM, onSignal);
  ::signal(SIGPIPE, SIG_IGN);
  ferry::MetadataServer server;
  ferry::Status st = server.start(o);
  if (!st.ok()) {
    std::cerr << "ferry-metadata: " << st.ToString() << "\n";
    return 1;
  }
  std::cout << "LISTENING " << o.bind_address << ":" << server.port() << std::endl;
  if (o.token.empty() && o.bind_address.rfind("127.", 0) != 0 && o.bind_address != "::1")
    std::cerr << "ferry-metadata: listening on " << o.bind_address << " without a cluster token: anyone who can "
              << "reach it may read and rewrite descriptors (set --auth_token_file or FERRY_AUTH_TOKEN)" << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.stop();
  return 0;
}
