// ferry-pingpong: the reference round trip for latency figures. Two processes, one TCP
// connection on 127.0.0.1, blocking sockets, TCP_NODELAY, N-byte messages echoed back.
// Prints p50/p99 round-trip microseconds (and one JSON line with --json).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/net.h"
#include "flags.h"

int main(int argc, char** argv) {
  ferry::tools::Flags f;
  f.define("size", "64", "message bytes");
  f.define("iterations", "20000", "round trips");
  f.define("json", "false", "print one JSON line", true);
  std::string err;
  if (!f.parse(argc, argv, err)) {
    std::fprintf(stderr, "ferry-pingpong: %s\n%s", err.c_str(), f.usage("ferry-pingpong").c_str());
    return 2;
  }
  size_t size = static_cast<size_t>(f.i64("size"));
  int64_t iters = f.i64("iterations");
  int lfd;
  uint16_t port;
  if (!ferry::net::listenTcp("127.0.0.1", 0, lfd, port).ok()) return 1;
  pid_t pid = ::fork();
  if (pid == 0) {  // echo server
    int c = ::accept(lfd, nullptr, nullptr);
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<char> buf(size);
    while (ferry::net::readAll(c, buf.data(), size).ok() &&
           ferry::net::writeAll(c, buf.data(), size).ok()) {
    }
    _exit(0);
  }
  ::close(lfd);
  int fd;
  if (!ferry::net::connectTcp("127.0.0.1", port, 2000, fd).ok()) return 1;
  std::vector<char> buf(size, 'p');
  std::vector<double> rtt;
  rtt.reserve(static_cast<size_t>(iters));
  for (int64_t i = 0; i < iters + 1000; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!ferry::net::writeAll(fd, buf.data(), size).ok() || !ferry::net::readAll(fd, buf.data(), size).ok())
      return 1;
    if (i >= 1000)  // warm-up excluded
      rtt.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  ::close(fd);
  ::waitpid(pid, nullptr, 0);
  std::sort(rtt.begin(), rtt.end());
  double p50 = rtt[rtt.size() / 2], p99 = rtt[rtt.size() * 99 / 100];
  std::printf("tcp ping-pong %zu B: rtt p50 %.1f us, p99 %.1f us\n", size, p50, p99);
  if (f.boolean("json"))
    std::printf("{\"size\":%zu,\"rtt_us_p50\":%.3f,\"rtt_us_p99\":%.3f}\n", size, p50, p99);
  return 0;
}
