#include "ferry/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace ferry {

TEST(Config, HasDefaults) {
  Config c;
  EXPECT_EQ(c.get("metadata/type", ""), "p2p");
  EXPECT_EQ(c.get<int64_t>("transfer_timeout_ms", 0), 30000);
  EXPECT_EQ(c.get<int64_t>("transports/tcp/slice_size", 0), 1 << 20);
  EXPECT_FALSE(c.get<bool>("polling", true));
  EXPECT_EQ(c.get<int>("no/such/key", 42), 42);
}

TEST(Config, SetAndGetNested) {
  Config c;
  c.set<int64_t>("rpc/port", 1234);
  c.set("a/b/c", "x");
  c.set<bool>("flag", true);
  EXPECT_EQ(c.get<int>("rpc/port", 0), 1234);
  EXPECT_EQ(c.get("a/b/c", ""), "x");
  EXPECT_TRUE(c.get<bool>("flag", false));
  EXPECT_TRUE(c.has("a/b"));
  // Wrong type falls back to the default instead of throwing.
  EXPECT_EQ(c.get<int>("a/b/c", 7), 7);
}

TEST(Config, LoadsInlineJsonAndFile) {
  Config c;
  ASSERT_TRUE(c.load(R"({"rpc": {"port": 999}, "extra": 1})").ok());
  EXPECT_EQ(c.get<int>("rpc/port", 0), 999);
  EXPECT_EQ(c.get("rpc/bind_address", ""), "0.0.0.0");  // merged, not replaced
  std::string path = ::testing::TempDir() + "/ferry_conf.json";
  std::ofstream(path) << R"({"transfer_timeout_ms": 1500})";
  ASSERT_TRUE(c.load(path).ok());
  EXPECT_EQ(c.get<int>("transfer_timeout_ms", 0), 1500);
}

TEST(Config, RejectsBadInput) {
  Config c;
  EXPECT_EQ(c.load("/nonexistent/ferry.json").code(), Status::Code::kNotFound);
  EXPECT_TRUE(c.load("{not json").IsInvalidArgument());
  EXPECT_TRUE(c.load("[1,2]").IsInvalidArgument());
}

TEST(Config, ReadsEnvironment) {
  ::setenv("FERRY_CONF", R"({"rpc": {"port": 4242}})", 1);
  ::setenv("MC_TRANSFER_TIMEOUT", "2.5", 1);
  ::setenv("MC_TCP_BIND_ADDRESS", "127.0.0.1", 1);
  Config c;
  Status st = c.loadFromEnv();
  ::unsetenv("FERRY_CONF");
  ::unsetenv("MC_TCP_BIND_ADDRESS");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.get<int>("rpc/port", 0), 4242);
  EXPECT_EQ(c.get<int>("transfer_timeout_ms", 0), 2500);
  EXPECT_EQ(c.get("rpc/bind_address", ""), "127.0.0.1");
  ::setenv("MC_TE_METRIC", "yes", 1);
  ::setenv("MC_TE_METRIC_INTERVAL_SECONDS", "2", 1);
  ::setenv("MC_FORCE_TCP", "1", 1);
  ::setenv("MC_RDMA_BIND_ADDRESS", "10.0.0.1", 1);
  Config m;
  st = m.loadFromEnv();
  for (const char* v : {"MC_TE_METRIC", "MC_TE_METRIC_INTERVAL_SECONDS", "MC_FORCE_TCP", "MC_RDMA_BIND_ADDRESS"})
    ::unsetenv(v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(m.get<bool>("metrics/enable", false));
  EXPECT_EQ(m.get<int>("metrics/interval_s", 0), 2);
  EXPECT_FALSE(m.get<bool>("transports/local/enable", true));
  EXPECT_EQ(m.get("rdma/bind_address", ""), "10.0.0.1");
  ::setenv("MC_TE_METRIC_INTERVAL_SECONDS", "0", 1);
  EXPECT_TRUE(Config().loadFromEnv().IsInvalidArgument());
  ::unsetenv("MC_TE_METRIC_INTERVAL_SECONDS");
  ::setenv("MC_TRANSFER_TIMEOUT", "soon", 1);
  EXPECT_TRUE(Config().loadFromEnv().IsInvalidArgument());
  ::unsetenv("MC_TRANSFER_TIMEOUT");
}

}  // namespace ferry
