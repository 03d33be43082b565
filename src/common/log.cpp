#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

#include "common/environment.h"

namespace ferry::log {
namespace {

Level levelFromEnv() {
  const char* v = env::value("FERRY_LOG_LEVEL");
  return v ? parseLevel(v, INFO) : INFO;
}

std::atomic<int>& levelRef() {
  static std::atomic<int> level{levelFromEnv()};
  return level;
}

const char* kNames[] = {"D", "I", "W", "E", "?"};

}  // namespace

std::optional<Level> levelNamed(const char* v) {
  if (!strcasecmp(v, "debug")) return DEBUG;
  if (!strcasecmp(v, "info")) return INFO;
  if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning")) return WARN;
  if (!strcasecmp(v, "error")) return ERROR;
  if (!strcasecmp(v, "off") || !strcasecmp(v, "none")) return OFF;
  return std::nullopt;
}

Level parseLevel(const char* v, Level def) { return levelNamed(v).value_or(def); }

Level currentLevel() { return static_cast<Level>(levelRef().load(std::memory_order_relaxed)); }
void setLevel(Level level) { levelRef().store(level); }

namespace {

// The installed sink, swapped whole: a line being written keeps the one it took.
std::mutex sink_mu;  // a leaf
std::shared_ptr<const LogSink>& sinkRef() {
  static std::shared_ptr<const LogSink> sink;
  return sink;
}

std::shared_ptr<const LogSink> currentSink() {
  std::lock_guard lock(sink_mu);
  return sinkRef();
}

}  // namespace

Line::Line(Level level, const char* file, int line) : level_(level), line_(line) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  unix_time_us_ = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::tm tm{};
  localtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%H:%M:%S", &tm);
  const char* base = std::strrchr(file, '/');
  file_ = base ? base + 1 : file;
  char us_buf[8];
  std::snprintf(us_buf, sizeof us_buf, "%06lld", static_cast<long long>(unix_time_us_ % 1000000));
  os_ << "[ferry " << kNames[level] << " " << ts << "." << us_buf << " " << ::getpid() << " " << file_ << ":"
      << line << "] ";
  prefix_ = static_cast<size_t>(os_.tellp());
}

Line::~Line() {
  if (auto sink = currentSink()) {
    const std::string s = os_.str();
    LogRecord r;
    r.level = static_cast<LogLevel>(level_);
    r.file = file_;
    r.line = line_;
    r.unix_time_us = unix_time_us_;
    r.message = std::string_view(s).substr(prefix_);
    try {
      (*sink)(r);
    } catch (...) {  // a host's sink must not take down the thread that logged
    }
    return;
  }
  os_ << '\n';
  std::string s = os_.str();
  ssize_t r = ::write(STDERR_FILENO, s.data(), s.size());
  (void)r;
}

bool RateLimit::allow() {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (refilled_ == std::chrono::steady_clock::time_point{}) refilled_ = now;
  if (interval_.count() > 0) {
    auto earned = (now - refilled_) / interval_;
    if (earned > 0) {
      tokens_ = static_cast<int>(std::min<int64_t>(burst_, tokens_ + earned));
      refilled_ += earned * interval_;
    }
  }
  if (tokens_ <= 0) {
    ++suppressed_;
    return false;
  }
  --tokens_;
  report_ = suppressed_;
  suppressed_ = 0;
  return true;
}

std::string RateLimit::suppressedNote() {
  std::lock_guard lock(mu_);
  if (report_ == 0) return "";
  std::string out = "(" + std::to_string(report_) + " similar lines suppressed) ";
  report_ = 0;
  return out;
}

}  // namespace ferry::log

namespace ferry {

void setLogSink(LogSink sink) {
  auto next = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  std::lock_guard lock(log::sink_mu);
  log::sinkRef().swap(next);  // the old one is released here, or by a line still using it
}

void setLogLevel(LogLevel level) { log::setLevel(static_cast<log::Level>(level)); }
LogLevel logLevel() { return static_cast<LogLevel>(log::currentLevel()); }

}  // namespace ferry
