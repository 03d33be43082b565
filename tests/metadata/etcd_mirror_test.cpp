// The etcd mirror: lookups answered from a watched local copy of a prefix, following puts and
// deletes, reading etcd on a miss, resynchronizing after etcd restarts; and the watch-stream
// parser against what a bad or odd stream sends.
#include "metadata/etcd_mirror.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/base64.h"
#include "metadata/etcd_store.h"
#include "metadata_service.h"

namespace ferry::mirror_tests {

using namespace ferry::test;

// Polls `cond` for up to 10 s.
template <typename F>
bool eventually(F cond) {
  for (int i = 0; i < 1000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class EtcdMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd.start().ok());
    writer = etcd.client();
    reader = etcd.client();
    ASSERT_TRUE(writer && reader);
  }
  EtcdStore& mirrored() { return dynamic_cast<EtcdStore&>(*reader); }
  std::string lookup(const std::string& key) {
    std::string v;
    Status st = reader->lookup(key, v);
    return st.ok() ? v : "<" + st.ToString() + ">";
  }
  MetadataService etcd{"etcd"};
  std::unique_ptr<MetadataStore> writer, reader;
  const std::string a = "ferry/c/segments/a", b = "ferry/c/segments/b";
};

TEST_F(EtcdMirrorTest, LookupsFollowPutsAndDeletesFromTheMirror) {
  ASSERT_TRUE(writer->put(a, "one").ok());
  EXPECT_EQ(lookup(a), "one");  // read from etcd; starts the mirror of ferry/c/segments/
  ASSERT_TRUE(eventually([&] { return mirrored().mirrorCurrent(); }));
  const uint64_t hits = mirrored().mirrorHits();
  EXPECT_EQ(lookup(a), "one");
  EXPECT_EQ(mirrored().mirrorHits(), hits + 1);
  ASSERT_TRUE(writer->put(a, "two").ok());
  EXPECT_TRUE(eventually([&] { return lookup(a) == "two"; }));
  ASSERT_TRUE(writer->put(b, "new").ok());
  EXPECT_EQ(lookup(b), "new");  // the mirror or etcd: never NotFound
  ASSERT_TRUE(writer->remove(a).ok());
  EXPECT_TRUE(eventually([&] { return lookup(a).find("NotFound") != std::string::npos; })) << lookup(a);
  // Keys outside the mirrored prefix are read from etcd.
  ASSERT_TRUE(writer->put("ferry/other/x", "elsewhere").ok());
  EXPECT_EQ(lookup("ferry/other/x"), "elsewhere");
}

TEST_F(EtcdMirrorTest, AnEtcdRestartIsFollowedByAFreshCopy) {
  ASSERT_TRUE(writer->put(a, "before").ok());
  EXPECT_EQ(lookup(a), "before");
  ASSERT_TRUE(eventually([&] { return mirrored().mirrorCurrent(); }));
  const uint16_t port = etcd.port();
  etcd.stop();  // its data goes with it
  EXPECT_TRUE(eventually([&] { return !mirrored().mirrorCurrent(); }));
  EXPECT_NE(lookup(a), "before");  // not a stale answer while etcd is away
  ASSERT_TRUE(etcd.start(port).ok());
  ASSERT_TRUE(writer->put(a, "after").ok());
  EXPECT_TRUE(eventually([&] { return mirrored().mirrorCurrent() && lookup(a) == "after"; })) << lookup(a);
}

// The stream parser alone.
TEST(EtcdMirrorStream, LinesAreAppliedAndOddOnesForceAResync) {
  std::unordered_map<std::string, std::string> entries;
  bool created = false;
  auto apply = [&](const std::string& line) { return applyWatchLine(line, "p/", entries, created); };
  auto event = [](const char* type, const std::string& key, const std::string& value) {
    std::string e = std::string("{\"kv\":{\"key\":\"") + base64Encode(key) + "\",\"value\":\"" + base64Encode(value) + "\"}";
    if (*type) e = std::string("{\"type\":\"") + type + "\"," + e.substr(1);
    return e + "}";
  };
  EXPECT_TRUE(apply(R"({"result":{"header":{"revision":"5"},"created":true}})"));
  EXPECT_TRUE(created);
  EXPECT_TRUE(apply("{\"result\":{\"events\":[" + event("", "p/x", "1") + "," + event("", "q/y", "2") + "]}}"));
  EXPECT_EQ(entries.count("p/x") ? entries["p/x"] : "<none>", "1");
  EXPECT_EQ(entries.count("q/y"), 0u) << "outside the prefix";
  EXPECT_TRUE(apply("{\"result\":{\"events\":[" + event("DELETE", "p/x", "") + "]}}"));
  EXPECT_EQ(entries.count("p/x"), 0u);
  for (const char* bad : {"not json", "[]", R"({"result":1})", R"({"result":{"events":{}}})",
                          R"({"result":{"events":[{"kv":{"key":"%%%"}}]}})", R"({"result":{"canceled":true}})"})
    EXPECT_FALSE(apply(bad)) << bad;
}

}  // namespace ferry::mirror_tests
