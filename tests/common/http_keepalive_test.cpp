// HTTP connections kept alive: our server answers several requests on one connection
// (pipelined too) and closes idle, HTTP/1.0, "Connection: close" and bad ones; the client
// (libcurl) reuses a connection across calls, survives a server that closed it meanwhile,
// decodes chunked replies and caps bodies.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "common/http.h"
#include "common/net.h"
#include "test_util.h"

namespace ferry::http_tests {

using http::call;
using http::Request;
using http::Response;
using http::Server;

// Reads what the server sends until `responses` complete responses (Content-Length bodies)
// arrived, or EOF; `closed` tells whether EOF came.
std::string readResponses(int fd, int responses, bool& closed) {
  std::string got;
  closed = false;
  auto complete = [&] {
    size_t at = 0;
    for (int i = 0; i < responses; ++i) {
      size_t end = got.find("\r\n\r\n", at);
      if (end == std::string::npos) return false;
      size_t cl = got.find("Content-Length: ", at);
      size_t len = cl < end ? std::stoul(got.substr(cl + 16)) : 0;
      if (got.size() < end + 4 + len) return false;
      at = end + 4 + len;
    }
    return true;
  };
  char buf[4096];
  while (!complete()) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class HttpServerKeepAlive : public ::testing::Test {
 protected:
  void SetUp() override {
    Server::Options o;
    o.idle_timeout_ms = 300;
    ASSERT_TRUE(server.start(o, [](const Request& r) { return Response{200, r.path.substr(1)}; }).ok());
  }
  int connect() {
    const int fd = test::connectLoopback(server.port());
    EXPECT_GE(fd, 0);
    return fd;
  }
  void send(int fd, const std::string& s) { ASSERT_TRUE(net::writeAll(fd, s.data(), s.size()).ok()); }
  Server server;
};

TEST_F(HttpServerKeepAlive, SeveralRequestsOnOneConnectionPipelinedToo) {
  int fd = connect();
  send(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /bb HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  std::string got = readResponses(fd, 2, closed);
  EXPECT_FALSE(closed);
  EXPECT_NE(got.find("Connection: keep-alive\r\n\r\na"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n\r\nbb"), std::string::npos) << got;
  send(fd, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  got = readResponses(fd, 1, closed);
  EXPECT_NE(got.find("Connection: close\r\n\r\nc"), std::string::npos) << got;
  EXPECT_TRUE(test::closedByPeer(fd));
  ::close(fd);
}

TEST_F(HttpServerKeepAlive, IdleHttp10AndBadRequestsAreClosed) {
  int idle = connect();
  send(idle, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  readResponses(idle, 1, closed);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(test::closedByPeer(idle));  // after the 300 ms idle timeout
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ::close(idle);
  int old = connect();
  send(old, "GET /a HTTP/1.0\r\n\r\n");
  std::string got = readResponses(old, 1, closed);
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_TRUE(test::closedByPeer(old));
  ::close(old);
  int bad = connect();
  send(bad, "NONSENSE\r\n\r\nGET /a HTTP/1.1\r\n\r\n");
  got = readResponses(bad, 1, closed);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_TRUE(test::closedByPeer(bad));  // what followed the bad request is not served
  ::close(bad);
}

// A bare server on a socket of the test: counts connections and answers each request with
// `reply`; with close_after_one, closes every connection after its first answer (as a
// server whose idle timeout passed does).
class RawServer {
 public:
  RawServer(std::string reply, bool close_after_one) : reply_(std::move(reply)), close_after_one_(close_after_one) {
    EXPECT_TRUE(net::listenTcp("127.0.0.1", 0, fd_, port_).ok());
    thread_ = std::thread([this] { run(); });
  }
  ~RawServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (int c = conn_.load(); c >= 0) ::shutdown(c, SHUT_RDWR);  // a client's kept-alive connection
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void run() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      conn_ = c;
      if (stop_) ::shutdown(c, SHUT_RDWR);
      std::string buf;
      char tmp[4096];
      while (true) {
        ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
        size_t end;
        bool done = false;
        while ((end = buf.find("\r\n\r\n")) != std::string::npos) {
          buf.erase(0, end + 4);
          net::writeAll(c, reply_.data(), reply_.size()).IgnoreError();
          if (close_after_one_) {
            done = true;
            break;
          }
        }
        if (done) break;
      }
      conn_ = -1;
      ::close(c);
    }
  }
  std::string reply_;
  bool close_after_one_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> conn_{-1};  // the connection being served
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

TEST(HttpClientKeepAlive, CallsReuseOneConnection) {
  RawServer server(kOk, false);
  for (int i = 0; i < 5; ++i) {
    Response r;
    ASSERT_TRUE(call("127.0.0.1", server.port(), "GET", "/x", "", 2000, r).ok());
    EXPECT_EQ(r.body, "ok");
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClientKeepAlive, AConnectionTheServerClosedIsReplacedNotFailed) {
  RawServer server(kOk, true);
  for (int i = 0; i < 3; ++i) {
    Response r;
    Status st = call("127.0.0.1", server.port(), "PUT", "/x", "body", 2000, r);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(server.accepted(), 3);
}

TEST(HttpClientKeepAlive, ChunkedRepliesAreJoinedAndBodiesCapped) {
  RawServer chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false);
  Response r;
  ASSERT_TRUE(call("127.0.0.1", chunked.port(), "GET", "/x", "", 2000, r).ok());
  EXPECT_EQ(r.body, "abcde");
  RawServer big("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), false);
  Status st = call("127.0.0.1", big.port(), "GET", "/x", "", 2000, r, 50);
  EXPECT_EQ(st.code(), Status::Code::kCorrupted) << st.ToString();
  EXPECT_NE(st.message().find("too large"), std::string::npos) << st.ToString();
}

TEST(HttpClientKeepAlive, NothingListeningIsUnavailable) {
  int fd;
  uint16_t port;
  ASSERT_TRUE(net::listenTcp("127.0.0.1", 0, fd, port).ok());
  ::close(fd);  // the port is free now
  Response r;
  Status st = call("127.0.0.1", port, "GET", "/x", "", 1000, r);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("GET http://127.0.0.1:"), std::string::npos) << st.ToString();
}

}  // namespace ferry::http_tests
