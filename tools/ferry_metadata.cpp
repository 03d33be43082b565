// ferry-metadata: the HTTP metadata server (Mooncake's HTTP metadata protocol).
//   ferry-metadata --host=127.0.0.1 --port=8080 [--data_file=/var/lib/ferry/meta.json]
// GET/PUT/DELETE /metadata?key=K, GET /health. Stops on SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

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
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.stop();
  return 0;
}
