// The metadata stores parse what servers send without throwing: a reply of the wrong shape
// is an error Status (Corrupted/NotFound), never an exception that ends the process.
#include <gtest/gtest.h>

#include <mutex>
#include <string>

#include "common/http.h"
#include "metadata/metadata_store.h"

namespace ferry {

namespace {
// Impersonates etcd's JSON gateway with canned replies per path.
class FakeEtcd {
 public:
  FakeEtcd() {
    http::Server::Options o;
    EXPECT_TRUE(server_.start(o, [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      http::Response resp;
      auto it = replies_.find(r.path);
      resp.body = it == replies_.end() ? "{}" : it->second;
      return resp;
    }).ok());
  }
  ~FakeEtcd() { server_.stop(); }
  void reply(const std::string& path, const std::string& body) {
    std::lock_guard lock(mu_);
    replies_["/v3/" + path] = body;
  }
  std::unique_ptr<MetadataStore> store() {
    Config c;
    c.set("metadata/type", "etcd");
    c.set("metadata/servers", "127.0.0.1:" + std::to_string(server_.port()));
    std::unique_ptr<MetadataStore> s;
    EXPECT_TRUE(createMetadataStore(c, s).ok());
    return s;
  }

 private:
  http::Server server_;
  std::mutex mu_;
  std::map<std::string, std::string> replies_;
};
}  // namespace

TEST(StoreReplies, EtcdOddShapesAreErrorsNotExceptions) {
  FakeEtcd etcd;
  auto s = etcd.store();
  ASSERT_TRUE(s);
  std::string v;
  for (const char* bad : {"not json", "[]", R"({"kvs": "x"})", R"({"kvs": [{"value": 12}]})",
                          R"({"kvs": [{"value": "%%%"}]})", R"({"kvs": [7]})"}) {
    etcd.reply("kv/range", bad);
    Status st = s->get("k", v);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.code(), Status::Code::kCorrupted) << bad << ": " << st.ToString();
  }
  etcd.reply("kv/range", R"({"kvs": []})");
  EXPECT_TRUE(s->get("k", v).IsNotFound());
  etcd.reply("kv/range", R"({"header": {}})");  // etcd leaves empty lists out
  EXPECT_TRUE(s->get("k", v).IsNotFound());
  etcd.reply("kv/range", R"({"kvs": [{"key": "aw=="}]})");  // an empty value is left out too
  EXPECT_TRUE(s->get("k", v).ok());
  EXPECT_EQ(v, "");
  etcd.reply("kv/range", R"({"kvs": [{"value": "aGk="}]})");
  ASSERT_TRUE(s->get("k", v).ok());
  EXPECT_EQ(v, "hi");

  for (const char* bad : {R"({"ID": "abc"})", R"({"ID": true})", R"({})", R"({"ID": "99999999999999999999999"})"}) {
    etcd.reply("lease/grant", bad);
    EXPECT_EQ(s->put("k", "v").code(), Status::Code::kCorrupted) << bad;
  }
  etcd.reply("lease/grant", R"({"ID": 7587})");  // a number where etcd writes a string
  etcd.reply("kv/put", R"({"header": {}})");
  EXPECT_TRUE(s->put("k", "v").ok());
  for (const char* gone : {R"({"result": {}})", R"({"result": {"TTL": "x"}})", R"({"result": 5})", "nope"}) {
    etcd.reply("lease/keepalive", gone);
    EXPECT_TRUE(s->keepAlive().IsNotFound()) << gone;
    etcd.reply("lease/grant", R"({"ID": "42"})");
    EXPECT_TRUE(s->put("k", "v").ok());  // a lost lease is granted again
  }
  etcd.reply("lease/keepalive", R"({"result": {"TTL": 9}})");
  EXPECT_TRUE(s->keepAlive().ok());
}

TEST(StoreReplies, RedisDatabaseIndexIsCheckedNotThrown) {
  for (const char* uri : {"redis://127.0.0.1:1/99999999999999999999", "redis://127.0.0.1:1/-1",
                          "redis://127.0.0.1:1/x"}) {
    Config c;
    c.set("metadata/type", "redis");
    c.set("metadata/servers", uri);
    std::unique_ptr<MetadataStore> s;
    EXPECT_TRUE(createMetadataStore(c, s).IsInvalidArgument()) << uri;
  }
}

}  // namespace ferry
