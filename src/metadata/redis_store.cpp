#include "metadata/redis_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <climits>

#include "common/net.h"

namespace ferry {

Status RedisStore::create(const std::string& uri, const Credentials& fallback, int timeout_ms, int ttl_s,
                          std::unique_ptr<MetadataStore>& out) {
  auto s = std::make_unique<RedisStore>();
  std::string rest = uri.rfind("redis://", 0) == 0 ? uri.substr(8) : uri;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    s->user_ = colon == std::string::npos ? "" : cred.substr(0, colon);
    s->password_ = colon == std::string::npos ? cred : cred.substr(colon + 1);
  }
  bool db_named = false;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), s->db_);
      if (ec != std::errc() || end != db.data() + db.size() || s->db_ < 0)
        return Status::InvalidArgument("redis database index must be a number >= 0: '" + db + "'");
      db_named = true;
    }
  }
  if (rest.find(':') == std::string::npos) rest += ":6379";
  FERRY_RETURN_IF_ERROR(net::parseHostPort(rest, s->host_, s->port_));
  if (s->user_.empty()) s->user_ = fallback.user;
  if (s->password_.empty()) s->password_ = fallback.password;
  if (!db_named) {
    if (fallback.db < 0 || fallback.db > INT32_MAX)
      return Status::InvalidArgument("redis database index out of range: " + std::to_string(fallback.db));
    s->db_ = static_cast<int>(fallback.db);
  }
  s->timeout_ms_ = timeout_ms;
  s->ttl_s_ = std::max(ttl_s, 2);
  out = std::move(s);
  return Status::OK();
}

RedisStore::~RedisStore() {
  for (redisContext* c : idle_) redisFree(c);
}

redisContext* RedisStore::takeIdle() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return nullptr;
  redisContext* c = idle_.back();
  idle_.pop_back();
  return c;
}

void RedisStore::putIdle(redisContext* c) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < 4) {
      idle_.push_back(c);
      return;
    }
  }
  redisFree(c);
}

Status RedisStore::connect(redisContext*& out) {
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Status::Unavailable(describe() + ": " + why);
  }
  redisSetTimeout(c, tv);
  auto fail = [&](const std::string& what) {
    redisFree(c);
    return Status::Unavailable(describe() + ": " + what);
  };
  if (!password_.empty()) {
    auto* r = static_cast<redisReply*>(
        user_.empty() ? redisCommand(c, "AUTH %b", password_.data(), password_.size())
                      : redisCommand(c, "AUTH %b %b", user_.data(), user_.size(), password_.data(),
                                     password_.size()));
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    std::string err = r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "no reply";
    if (r) freeReplyObject(r);
    if (!ok) return fail("AUTH failed: " + err);
  }
  if (db_ != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SELECT %d", db_));
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) return fail("SELECT " + std::to_string(db_) + " failed");
  }
  out = c;
  return Status::OK();
}

Status RedisStore::command(const std::vector<std::string>& argv, std::string* str, long long* integer,
                           bool* nil) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    redisContext* c = takeIdle();
    if (!c) FERRY_RETURN_IF_ERROR(connect(c));
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
    if (!r) {  // connection broken (server restarted?): a fresh one, once
      std::string why = c->errstr;
      redisFree(c);
      if (attempt == 1) return Status::Unavailable(describe() + ": " + why);
      continue;
    }
    Status st;
    if (r->type == REDIS_REPLY_ERROR) st = Status::Unavailable(describe() + ": " + std::string(r->str, r->len));
    if (nil) *nil = r->type == REDIS_REPLY_NIL;
    if (str && r->type == REDIS_REPLY_STRING) str->assign(r->str, r->len);
    if (integer && r->type == REDIS_REPLY_INTEGER) *integer = r->integer;
    freeReplyObject(r);
    putIdle(c);
    return st;
  }
  return Status::Unavailable(describe());
}

Status RedisStore::get(const std::string& key, std::string& value) {
  bool nil = false;
  FERRY_RETURN_IF_ERROR(command({"GET", key}, &value, nullptr, &nil));
  if (nil) return Status::NotFound("key '" + key + "' not in " + describe());
  return Status::OK();
}

Status RedisStore::put(const std::string& key, const std::string& value) {
  FERRY_RETURN_IF_ERROR(command({"SET", key, value, "EX", std::to_string(ttl_s_)}, nullptr, nullptr, nullptr));
  std::lock_guard lock(mu_);
  owned_.insert(key);
  return Status::OK();
}

Status RedisStore::remove(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    owned_.erase(key);
  }
  return command({"DEL", key}, nullptr, nullptr, nullptr);
}

Status RedisStore::keepAlive() {
  std::set<std::string> keys;
  {
    std::lock_guard lock(mu_);
    keys = owned_;
  }
  for (const auto& key : keys) {
    long long refreshed = 0;
    FERRY_RETURN_IF_ERROR(command({"EXPIRE", key, std::to_string(ttl_s_)}, nullptr, &refreshed, nullptr));
    if (refreshed == 0) return Status::NotFound("redis key '" + key + "' expired");
  }
  return Status::OK();
}

}  // namespace ferry
