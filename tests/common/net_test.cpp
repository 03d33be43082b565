#include "common/net.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace ferry::net {

TEST(ParseHostPort, AcceptsHostAndV6) {
  std::string h;
  uint16_t p;
  ASSERT_TRUE(parseHostPort("127.0.0.1:8080", h, p).ok());
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 8080);
  ASSERT_TRUE(parseHostPort("[::1]:17", h, p).ok());
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 17);
  EXPECT_EQ(joinHostPort("::1", 17), "[::1]:17");
}

TEST(ParseHostPort, RejectsMalformed) {
  std::string h;
  uint16_t p;
  for (const char* bad : {"", "host", ":80", "host:", "host:99999", "host:12a", "::1:80", "[::1]80"})
    EXPECT_TRUE(parseHostPort(bad, h, p).IsInvalidArgument()) << bad;
}

TEST(Connect, RefusedPortIsUnavailable) {
  int lfd;
  uint16_t port;
  ASSERT_TRUE(listenTcp("127.0.0.1", 0, lfd, port).ok());
  ::close(lfd);  // now nothing listens there
  int fd;
  Status st = connectTcp("127.0.0.1", port, 1000, fd);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
}

TEST(SocketReader, SmallAndLargeReads) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  std::thread writer([&] {
    uint8_t small[3] = {1, 2, 3};
    ASSERT_TRUE(writeAll(sv[0], small, 3).ok());
    ASSERT_TRUE(writeAll(sv[0], big.data(), big.size()).ok());
    ::shutdown(sv[0], SHUT_WR);
  });
  SocketReader r(sv[1], 0, 4096);
  uint8_t s[3];
  ASSERT_TRUE(r.readExact(s, 3).ok());
  EXPECT_EQ(s[2], 3);
  std::vector<uint8_t> got(big.size());
  ASSERT_TRUE(r.readExact(got.data(), got.size()).ok());
  EXPECT_EQ(got, big);
  uint8_t extra;
  EXPECT_TRUE(r.readExact(&extra, 1).IsUnavailable());
  writer.join();
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace ferry::net
