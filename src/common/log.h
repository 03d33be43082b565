// Minimal leveled logger: FERRY_LOG(WARN) << "x=" << x; one line per statement, written
// with a single write(2) so lines from several threads do not interleave.
// Level from FERRY_LOG_LEVEL (debug|info|warn|error|off), default info.
#pragma once

#include <sstream>

namespace ferry::log {

enum Level { DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3, OFF = 4 };

Level currentLevel();
void setLevel(Level level);
/// "debug", "info", "warn"/"warning", "error", "off"/"none" (any case); `def` otherwise.
Level parseLevel(const char* name, Level def);

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
