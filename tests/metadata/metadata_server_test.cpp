// The ferry-metadata binary, really started, spoken to over HTTP.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include "common/http.h"
#include "common/net.h"
#include "test_util.h"

namespace ferry::test {

class MetadataServerBinary : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {binPath("ferry-metadata"), "--host=127.0.0.1", "--port=0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<ChildProcess>();
    ASSERT_TRUE(proc->start(argv));
    std::string line = proc->readLine();
    ASSERT_EQ(line.rfind("LISTENING ", 0), 0u) << line;
    std::string host;
    ASSERT_TRUE(net::parseHostPort(line.substr(10), host, port).ok());
  }
  http::Response call(const std::string& method, const std::string& target, const std::string& body = "") {
    http::Response r;
    Status st = http::call("127.0.0.1", port, method, target, body, 3000, r);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return r;
  }
  std::unique_ptr<ChildProcess> proc;
  uint16_t port = 0;
};

TEST_F(MetadataServerBinary, PutGetDeleteAndHealth) {
  start();
  EXPECT_EQ(call("GET", "/health").status, 200);
  std::string value("bin\0ary", 7);
  EXPECT_EQ(call("PUT", "/metadata?key=a%2Fb", value).status, 200);
  auto r = call("GET", "/metadata?key=a/b");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, value);
  EXPECT_EQ(call("DELETE", "/metadata?key=a/b").status, 200);
  EXPECT_EQ(call("GET", "/metadata?key=a/b").status, 404);
  EXPECT_EQ(call("DELETE", "/metadata?key=a/b").status, 404);
}

TEST_F(MetadataServerBinary, BadRequestsGetClear4xx) {
  start({"--max_key_bytes=16", "--max_value_bytes=1K"});
  EXPECT_EQ(call("GET", "/metadata").status, 400);                     // no key
  EXPECT_EQ(call("GET", "/metadata?key=").status, 400);                // empty key
  EXPECT_EQ(call("GET", "/metadata?key=%zz").status, 400);             // bad encoding
  EXPECT_EQ(call("GET", "/metadata?key=" + std::string(17, 'k')).status, 414);
  EXPECT_EQ(call("PUT", "/metadata?key=k", std::string(2000, 'v')).status, 413);
  EXPECT_EQ(call("PATCH", "/metadata?key=k").status, 405);
  EXPECT_EQ(call("GET", "/elsewhere").status, 404);
  EXPECT_EQ(call("POST", "/health").status, 405);
}

TEST_F(MetadataServerBinary, SurvivesGarbage) {
  start();
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    int fd;
    ASSERT_TRUE(net::connectTcp("127.0.0.1", port, 1000, fd).ok());
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string junk(rng() % 600, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 5 == 0) junk = "GET /metadata?key=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (i % 7 == 0) junk = std::string(20000, 'A');  // a head that never ends
    net::writeAll(fd, junk.data(), junk.size()).IgnoreError();
    ::shutdown(fd, SHUT_WR);
    char b[256];
    while (::recv(fd, b, sizeof b, 0) > 0) {
    }
    ::close(fd);
  }
  EXPECT_EQ(call("GET", "/health").status, 200);
}

TEST_F(MetadataServerBinary, PersistsAcrossRestart) {
  std::string file = ::testing::TempDir() + "/ferry_meta_" + std::to_string(::getpid()) + ".json";
  ::unlink(file.c_str());
  start({"--data_file=" + file});
  std::string value("\x01\x02\0\xff", 4);
  ASSERT_EQ(call("PUT", "/metadata?key=seg", value).status, 200);
  ASSERT_EQ(call("PUT", "/metadata?key=gone", "x").status, 200);
  ASSERT_EQ(call("DELETE", "/metadata?key=gone").status, 200);
  proc->signal(SIGTERM);
  ASSERT_EQ(proc->wait(), 0);
  start({"--data_file=" + file});
  auto r = call("GET", "/metadata?key=seg");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, value);
  EXPECT_EQ(call("GET", "/metadata?key=gone").status, 404);
  ::unlink(file.c_str());
}

}  // namespace ferry::test
