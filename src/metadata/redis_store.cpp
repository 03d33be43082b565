#include "metadata/redis_store.h"

#include <hiredis/hiredis.h>

#include <cstdlib>

#include "common/net.h"

namespace ferry {

Status RedisStore::create(const std::string& uri, int timeout_ms, int ttl_s,
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
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      if (db.find_first_not_of("0123456789") != std::string::npos)
        return Status::InvalidArgument("redis database index must be a number: '" + db + "'");
      s->db_ = std::stoi(db);
    }
  }
  if (rest.find(':') == std::string::npos) rest += ":6379";
  FERRY_RETURN_IF_ERROR(net::parseHostPort(rest, s->host_, s->port_));
  if (const char* v = std::getenv("MC_REDIS_USERNAME"); v && *v && s->user_.empty()) s->user_ = v;
  if (const char* v = std::getenv("MC_REDIS_PASSWORD"); v && *v && s->password_.empty()) s->password_ = v;
  if (const char* v = std::getenv("MC_REDIS_DB_INDEX"); v && *v && uri.find('/', 8) == std::string::npos)
    s->db_ = std::atoi(v);
  s->timeout_ms_ = timeout_ms;
  s->ttl_s_ = std::max(ttl_s, 2);
  out = std::move(s);
  return Status::OK();
}

RedisStore::~RedisStore() {
  if (ctx_) redisFree(ctx_);
}

Status RedisStore::connectLocked() {
  if (ctx_) return Status::OK();
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Status::Unavailable(describe() + ": " + why);
  }
  redisSetTimeout(c, tv);
  ctx_ = c;
  auto fail = [&](const std::string& what) {
    redisFree(ctx_);
    ctx_ = nullptr;
    return Status::Unavailable(describe() + ": " + what);
  };
  if (!password_.empty()) {
    auto* r = static_cast<redisReply*>(
        user_.empty() ? redisCommand(ctx_, "AUTH %b", password_.data(), password_.size())
                      : redisCommand(ctx_, "AUTH %b %b", user_.data(), user_.size(), password_.data(),
                                     password_.size()));
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    std::string err = r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply";
    if (r) freeReplyObject(r);
    if (!ok) return fail("AUTH failed: " + err);
  }
  if (db_ != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", db_));
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) return fail("SELECT " + std::to_string(db_) + " failed");
  }
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
    FERRY_RETURN_IF_ERROR(connectLocked());
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
    if (!r) {  // connection broken (server restarted?): reconnect once
      std::string why = ctx_->errstr;
      redisFree(ctx_);
      ctx_ = nullptr;
      if (attempt == 1) return Status::Unavailable(describe() + ": " + why);
      continue;
    }
    Status st;
    if (r->type == REDIS_REPLY_ERROR) st = Status::Unavailable(describe() + ": " + std::string(r->str, r->len));
    if (nil) *nil = r->type == REDIS_REPLY_NIL;
    if (str && r->type == REDIS_REPLY_STRING) str->assign(r->str, r->len);
    if (integer && r->type == REDIS_REPLY_INTEGER) *integer = r->integer;
    freeReplyObject(r);
    return st;
  }
  return Status::Unavailable(describe());
}

Status RedisStore::get(const std::string& key, std::string& value) {
  std::lock_guard lock(mu_);
  bool nil = false;
  FERRY_RETURN_IF_ERROR(command({"GET", key}, &value, nullptr, &nil));
  if (nil) return Status::NotFound("key '" + key + "' not in " + describe());
  return Status::OK();
}

Status RedisStore::put(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  FERRY_RETURN_IF_ERROR(command({"SET", key, value, "EX", std::to_string(ttl_s_)}, nullptr, nullptr, nullptr));
  owned_.insert(key);
  return Status::OK();
}

Status RedisStore::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  owned_.erase(key);
  return command({"DEL", key}, nullptr, nullptr, nullptr);
}

Status RedisStore::keepAlive() {
  std::lock_guard lock(mu_);
  for (const auto& key : owned_) {
    long long refreshed = 0;
    FERRY_RETURN_IF_ERROR(command({"EXPIRE", key, std::to_string(ttl_s_)}, nullptr, &refreshed, nullptr));
    if (refreshed == 0) return Status::NotFound("redis key '" + key + "' expired");
  }
  return Status::OK();
}

}  // namespace ferry
