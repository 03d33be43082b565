#include "core/descriptor.h"

#include <gtest/gtest.h>

namespace ferry {

TEST(Descriptor, JsonRoundTripAndLookup) {
  SegmentDescriptor d;
  d.name = "node:1";
  d.machine_id = "m";
  d.instance_id = "i";
  d.rpc_host = "127.0.0.1";
  d.rpc_port = 4000;
  d.version = 9;
  d.buffers = {{0x3000, 0x100, "cpu:0", kGlobalReadOnly, "", 0},
               {0x1000, 0x1000, "cpu:0", kGlobalReadWrite, "/ferry.1.2", 64}};
  d.transports = {"tcp"};
  d.pid = 1234;
  d.shm_control = "/ferry.1.0";
  SegmentDescriptor e;
  ASSERT_TRUE(SegmentDescriptor::fromJson(d.toJson(), e).ok());
  EXPECT_EQ(e.name, "node:1");
  EXPECT_EQ(e.rpc_port, 4000);
  ASSERT_EQ(e.buffers.size(), 2u);
  EXPECT_EQ(e.buffers[0].base, 0x3000u);  // registration order kept
  ASSERT_NE(e.find(0x1800, 0x800), nullptr);
  EXPECT_EQ(e.find(0x1800, 0x801), nullptr);
  EXPECT_EQ(e.find(0x2000, 1), nullptr);
  ASSERT_NE(e.find(0x3000, 1), nullptr);
  EXPECT_EQ(e.find(0x3000, 1)->perm, kGlobalReadOnly);
  EXPECT_EQ(e.buffers[1].shm_name, "/ferry.1.2");  // shared-memory backing travels
  EXPECT_EQ(e.buffers[1].shm_offset, 64u);
  EXPECT_TRUE(e.buffers[0].shm_name.empty());
  EXPECT_EQ(e.pid, 1234);
  EXPECT_EQ(e.shm_control, "/ferry.1.0");
}

TEST(Descriptor, RejectsMalformed) {
  SegmentDescriptor e;
  for (const char* bad : {"", "[]", "{}", R"({"name":"x"})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[{"base":1,"length":0}]})",
                          R"({"name":"x","rpc":{"host":"h","port":70000},"buffers":[]})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[{"base":1,"length":1,"perm":9}]})"})
    EXPECT_EQ(SegmentDescriptor::fromJson(bad, e).code(), Status::Code::kCorrupted) << bad;
}

}  // namespace ferry
