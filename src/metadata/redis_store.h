// MetadataStore over Redis (hiredis): SET with a TTL that the engine keeps refreshing, so a
// crashed engine's entries expire. redis://[user:pass@]host:port[/db]; metadata/redis/*
// (MC_REDIS_USERNAME, MC_REDIS_PASSWORD, MC_REDIS_DB_INDEX) fill in what the URI leaves out.
// A hiredis context serves one command at a time: each command takes an idle one (or
// connects) and gives it back, so no lock is held across a round trip.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "metadata/metadata_store.h"

struct redisContext;

namespace ferry {

class RedisStore : public MetadataStore {
 public:
  struct Credentials {
    std::string user, password;  // used when the URI has none
    int64_t db = 0;              // used when the URI names none
  };
  static Status create(const std::string& uri, const Credentials& fallback, int timeout_ms, int ttl_s,
                       std::unique_ptr<MetadataStore>& out);
  ~RedisStore() override;
  Status get(const std::string& key, std::string& value) override;
  Status put(const std::string& key, const std::string& value) override;
  Status remove(const std::string& key) override;
  std::string describe() const override { return "redis://" + host_ + ":" + std::to_string(port_); }
  Status keepAlive() override;
  int keepAliveIntervalMs() const override { return ttl_s_ * 1000 / 3; }

 private:
  Status connect(redisContext*& out);
  // Runs one command (argv form: binary-safe); reconnects once if the connection broke.
  Status command(const std::vector<std::string>& argv, std::string* str, long long* integer, bool* nil);
  redisContext* takeIdle();
  void putIdle(redisContext* c);

  std::string host_, user_, password_;
  uint16_t port_ = 6379;
  int db_ = 0;
  int timeout_ms_ = 3000;
  int ttl_s_ = 10;
  std::mutex mu_;  // a leaf: guards idle_ and owned_, never held across a command
  std::vector<redisContext*> idle_;
  std::set<std::string> owned_;  // keys we published, refreshed by keepAlive
};

}  // namespace ferry
