#include "bench_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "bench_common.h"
#include "common/net.h"
#include "ferry/engine_ext.h"
#include "flags.h"
#include "metadata/metadata_store.h"
#include "tcp_reference.h"

namespace ferry::tools {

using Clock = std::chrono::steady_clock;

std::shared_ptr<Config> makeConfig(const Flags& f, const std::string& server_name) {
  auto c = std::make_shared<Config>();
  Status st = c->loadFromEnv();
  if (!st.ok()) std::cerr << "warning: " << st.ToString() << "\n";
  std::string type, servers;
  parseMetadataUri(f.str("metadata_server"), type, servers);
  c->set("metadata/type", type);
  if (type != "p2p") c->set("metadata/servers", servers);
  if (!f.str("segment_name").empty()) c->set("local_segment_name", f.str("segment_name"));
  if (!server_name.empty()) {
    auto colon = server_name.rfind(':');
    if (colon != std::string::npos) {
      c->set("rpc/bind_address", server_name.substr(0, colon));
      c->set<int64_t>("rpc/port", std::stoll(server_name.substr(colon + 1)));
    } else {
      c->set("rpc/bind_address", server_name);
    }
  }
  if (f.boolean("polling")) c->set<bool>("polling", true);
  if (f.isSet("connections")) c->set<int64_t>("transports/tcp/connections_per_peer", f.i64("connections"));
  if (f.isSet("slice_size")) c->set<int64_t>("transports/tcp/slice_size", f.i64("slice_size"));
  if (f.isSet("copy_threads")) c->set<int64_t>("transports/shm/copy_threads", f.i64("copy_threads"));
  if (f.isSet("file_backend")) c->set("transports/file/backend", f.str("file_backend"));
  return c;
}


bool isGpu(const std::string& location) { return location.rfind("cuda", 0) == 0; }

// The benchmark pattern into `p`, at `location` of `engine` (GPU memory through the driver).
Status fillBuffer(TransferEngine& engine, uint8_t* p, size_t len, uint64_t seed, const std::string& location) {
  if (!isGpu(location)) {
    fillPattern(p, len, 0, seed);  // in place (peers read it while we are told nothing: see fillPattern)
    return Status::OK();
  }
  std::vector<uint8_t> bytes(len);
  fillPattern(bytes.data(), len, 0, seed);
  return ext::copyLocal(engine, p, bytes.data(), len);
}

// A host copy of [p, +len) (host or GPU memory of `engine`).
std::vector<uint8_t> hostCopy(TransferEngine& engine, const uint8_t* p, size_t len) {
  std::vector<uint8_t> bytes(len);
  if (!ext::copyLocal(engine, bytes.data(), p, len).ok()) bytes.clear();
  return bytes;
}

int runTarget(const Flags& f) {
  auto config = makeConfig(f, f.str("local_server_name"));
  TransferEngine engine(config);
  if (!engine.available()) {
    std::cerr << "target: " << engine.initStatus().ToString() << "\n";
    return 1;
  }
  size_t size = static_cast<size_t>(f.i64("buffer_size"));
  void* buf = nullptr;
  const std::string location = f.str("target_location");
  Status st = engine.allocateLocalMemory(&buf, size, location);
  if (st.ok()) st = fillBuffer(engine, static_cast<uint8_t*>(buf), size, kTargetSeed, location);
  if (!st.ok()) {
    std::cerr << "target: " << st.ToString() << "\n";
    return 1;
  }
  tools::TcpReferenceServer reference;
  if (f.str("reference") == "tcp" && !isGpu(location)) {
    std::string host = "127.0.0.1";
    uint16_t port_ignored = 0;
    if (!f.str("local_server_name").empty() &&
        !net::parseHostPort(f.str("local_server_name"), host, port_ignored).ok())
      host = f.str("local_server_name");  // a bare host
    st = reference.start(host, static_cast<uint8_t*>(buf), size);
    if (!st.ok()) {
      std::cerr << "target: tcp reference: " << st.ToString() << "\n";
      return 1;
    }
    std::cout << "REFERENCE " << reference.address() << std::endl;
  }
  std::cout << "SEGMENT " << engine.getSegmentName() << std::endl;
  std::cerr << "ferry-bench target: segment " << engine.getSegmentName() << ", buffer "
            << size << " bytes; stop with Ctrl-C\n";
  while (!g_stop) {
    // Exit with the parent in loopback mode: stdin closes when it goes.
    pollfd p{STDIN_FILENO, 0, 0};
    if (f.boolean("exit_on_stdin_close") && ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  engine.freeLocalMemory(buf).IgnoreError();
  return 0;
}

int runLoopback(Flags& f, const char* self, const std::function<int(Flags&)>& run_initiator) {
  int out_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    std::perror("pipe");
    return 1;
  }
  std::vector<std::string> args = {self, "--mode=target", "--local_server_name=127.0.0.1:0",
                                   "--exit_on_stdin_close"};
  for (auto& a : f.forward({"buffer_size", "protocol", "metadata_server", "target_location", "connections"})) args.push_back(a);
  if (f.str("reference") == "tcp") args.push_back("--reference=tcp");
  // Through a metadata service the target is found by name: give it a unique one
  // (with p2p its name is its address).
  std::string meta_type, meta_servers;
  parseMetadataUri(f.str("metadata_server"), meta_type, meta_servers);
  if (meta_type != "p2p") args.push_back("--segment_name=ferry-bench-target-" + std::to_string(::getpid()));
  if (f.boolean("polling")) args.push_back("--polling");
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    return 1;
  }
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(in_pipe[0], STDIN_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::perror("execv");
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(in_pipe[0]);
  // Wait (bounded) for the target to announce its segment.
  std::string line, segment, reference_server;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  char c;
  while (segment.empty() && Clock::now() < deadline) {
    pollfd p{out_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t n = ::read(out_pipe[0], &c, 1);
    if (n <= 0) break;
    if (c == '\n') {
      if (line.rfind("SEGMENT ", 0) == 0) segment = line.substr(8);
      if (line.rfind("REFERENCE ", 0) == 0) reference_server = line.substr(10);
      line.clear();
    } else {
      line += c;
    }
  }
  int rc;
  if (segment.empty()) {
    std::cerr << "loopback: the target process did not start\n";
    rc = 1;
  } else {
    std::cerr << "loopback: target pid " << pid << " serves segment " << segment << "\n";
    f.define("segment_id", segment, "");
    if (!reference_server.empty()) f.define("reference_server", reference_server, "");
    if (!f.isSet("local_server_name")) f.define("local_server_name", "127.0.0.1", "");
    rc = run_initiator(f);
  }
  ::close(in_pipe[1]);  // tells the target to exit
  ::kill(pid, SIGTERM);
  int wst = 0;
  ::waitpid(pid, &wst, 0);
  ::close(out_pipe[0]);
  return rc;
}

}  // namespace ferry::tools
