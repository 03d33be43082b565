// Where Ferry's log lines go: stderr by default, or a sink the host program installs (its
// own logger, Python's `logging`). The level comes from FERRY_LOG_LEVEL, else the engine
// config's `log_level`, else info; setLogLevel changes it for the whole process.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

/// One log line, valid only during the sink call.
struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  std::string_view file;     // the source file's base name
  int line = 0;
  int64_t unix_time_us = 0;  // when it was logged
  std::string_view message;  // without the "[ferry I time pid file:line] " prefix
};

/// Receives every line at or above the level. Called on whatever thread logs, possibly
/// while engine locks are held: it must return quickly and must not call into Ferry.
using LogSink = std::function<void(const LogRecord&)>;

/// Sends every line to `sink` from now on instead of stderr; an empty sink restores stderr.
/// The previous sink may still be running on another thread when this returns.
void setLogSink(LogSink sink);
/// The level below which lines are dropped, process-wide (kOff: none written).
void setLogLevel(LogLevel level);
LogLevel logLevel();

}  // namespace ferry
#pragma GCC visibility pop
