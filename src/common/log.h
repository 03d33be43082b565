// Minimal leveled logger: FERRY_LOG(WARN) << "x=" << x; one line per statement, written
// with a single write(2) so lines from several threads do not interleave, or handed to the
// host's sink (ferry/log.h). Level from FERRY_LOG_LEVEL (debug|info|warn|error|off),
// default info.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "ferry/log.h"

namespace ferry::log {

enum Level { DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3, OFF = 4 };

Level currentLevel();
void setLevel(Level level);
/// "debug", "info", "warn"/"warning", "error", "off"/"none" (any case); `def` otherwise.
Level parseLevel(const char* name, Level def);
/// The same, without a default: nothing for a name that is none of those.
std::optional<Level> levelNamed(const char* name);

class Line {
 public:
  Line(Level level, const char* file, int line);
  ~Line();
  Line& self() { return *this; }
  template <typename T>
  Line& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
  Level level_;
  const char* file_;  // base name
  int line_;
  int64_t unix_time_us_;
  size_t prefix_ = 0;  // bytes of os_ before the message
};

/// Keeps what misbehaving peers can make us log bounded: a burst of `burst` lines, then one
/// per `interval`. A line that passes says how many were dropped before it. Thread-safe; one
/// per log site (a function-local static) or per owner.
class RateLimit {
 public:
  explicit RateLimit(int burst = 5, std::chrono::milliseconds interval = std::chrono::seconds(1))
      : burst_(burst), interval_(interval), tokens_(burst) {}
  /// Whether a line may be written now.
  bool allow();
  /// " (N similar lines suppressed)" for the line allow() just let through, or "".
  std::string suppressedNote();

 private:
  std::mutex mu_;  // a leaf
  const int burst_;
  const std::chrono::milliseconds interval_;
  int tokens_;
  std::chrono::steady_clock::time_point refilled_{};
  uint64_t suppressed_ = 0, report_ = 0;
};

// Lets FERRY_LOG be one expression (safe in an unbraced if/else): '&' binds looser than '<<'.
struct Voidify {
  void operator&(Line&) {}
};

}  // namespace ferry::log

#define FERRY_LOG(level)                                                     \
  (::ferry::log::level < ::ferry::log::currentLevel())                       \
      ? (void)0                                                              \
      : ::ferry::log::Voidify() & ::ferry::log::Line(::ferry::log::level, __FILE__, __LINE__)

/// FERRY_LOG through a RateLimit: FERRY_LOG_LIMITED(WARN, limiter) << "bad frame from " << peer;
/// for lines a remote peer can trigger at will.
#define FERRY_LOG_LIMITED(level, limiter)                                                  \
  (::ferry::log::level < ::ferry::log::currentLevel() || !(limiter).allow())               \
      ? (void)0                                                                            \
      : ::ferry::log::Voidify() & ::ferry::log::Line(::ferry::log::level, __FILE__, __LINE__) \
                                      << (limiter).suppressedNote()
