#include "model/segment_descriptor.h"

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
  d.buffers = {{0x3000, 0x100, "cpu:0", kGlobalReadOnly, {}},
               {0x1000, 0x1000, "cpu:0", kGlobalReadWrite, {{"shm", R"({"name":"/ferry.1.2","offset":64})"}}}};
  d.transports = {"tcp"};
  d.attrs = {{"shm", R"({"pid":1234})"}, {"opaque", "not json"}};
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
  // Transport attributes travel as the transport wrote them (JSON, kept as JSON text).
  EXPECT_EQ(e.buffers[1].attrs.at("shm"), R"({"name":"/ferry.1.2","offset":64})");
  EXPECT_TRUE(e.buffers[0].attrs.empty());
  EXPECT_EQ(e.attrs.at("shm"), R"({"pid":1234})");
  EXPECT_EQ(e.attrs.at("opaque"), R"("not json")");  // not JSON: carried as a string
  EXPECT_TRUE(e.toJson().find(R"("attrs":{"opaque":"not json","shm":{"pid":1234}})") != std::string::npos)
      << e.toJson();
}

TEST(Descriptor, RejectsMalformed) {
  SegmentDescriptor e;
  for (const char* bad : {"", "[]", "{}", R"({"name":"x"})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[{"base":1,"length":0}]})",
                          R"({"name":"x","rpc":{"host":"h","port":70000},"buffers":[]})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[{"base":1,"length":1,"perm":9}]})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[],"attrs":[1]})",
                          R"({"name":"x","rpc":{"host":"h","port":1},"buffers":[{"base":1,"length":1,"attrs":"shm"}]})"})
    EXPECT_EQ(SegmentDescriptor::fromJson(bad, e).code(), Status::Code::kCorrupted) << bad;
}

}  // namespace ferry
