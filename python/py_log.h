// Ferry's log lines into Python's `logging`: a sink that queues lines (bounded) and one
// thread that hands them to a logger with the GIL held. Lines are never passed to Python on
// the thread that logged: that thread may hold engine locks a Python thread is waiting for
// while it holds the GIL, and taking the GIL there could deadlock.
#pragma once

#include <pybind11/pybind11.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "ferry/log.h"

namespace ferry_py {

class PythonLogForwarder {
 public:
  static PythonLogForwarder& instance() {
    static auto* forwarder = new PythonLogForwarder;  // never destroyed: threads may log at exit
    return *forwarder;
  }

  /// Lines go to logging.getLogger(name) from now on. Called with the GIL held.
  void start(const std::string& name) {
    stop();
    pybind11::module_ logging = pybind11::module_::import("logging");
    logger_ = logging.attr("getLogger")(name);
    {
      std::lock_guard lock(mu_);
      stopping_ = false;
      dropped_ = 0;
    }
    thread_ = std::thread([this] { run(); });
    ferry::setLogSink([this](const ferry::LogRecord& r) { push(r); });
  }

  /// Back to stderr; lines already queued are delivered first. Called with the GIL held.
  void stop() {
    ferry::setLogSink(nullptr);
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) {
      pybind11::gil_scoped_release release;  // the thread needs the GIL to drain
      thread_.join();
    }
    logger_ = pybind11::object();
  }

 private:
  struct Line {
    ferry::LogLevel level;
    std::string file;
    int line;
    std::string message;
  };
  static constexpr size_t kMaxQueued = 10000;  // beyond: dropped, and the next line says how many

  void push(const ferry::LogRecord& r) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back({r.level, std::string(r.file), r.line, std::string(r.message)});
    cv_.notify_one();
  }

  static int pythonLevel(ferry::LogLevel l) {
    switch (l) {
      case ferry::LogLevel::kDebug: return 10;
      case ferry::LogLevel::kInfo: return 20;
      case ferry::LogLevel::kWarn: return 30;
      default: return 40;
    }
  }

  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and drained
      std::deque<Line> batch;
      batch.swap(queue_);
      const uint64_t dropped = dropped_;
      dropped_ = 0;
      lock.unlock();
      {
        pybind11::gil_scoped_acquire gil;
        try {
          if (dropped)
            logger_.attr("warning")("%d Ferry log lines dropped: the Python logger did not keep up",
                                    dropped);
          for (const Line& l : batch)
            logger_.attr("log")(pythonLevel(l.level), "%s (%s:%d)", l.message, l.file, l.line);
        } catch (pybind11::error_already_set& e) {
          e.discard_as_unraisable("ferry log forwarding");
        }
      }
      lock.lock();
    }
  }

  std::mutex mu_;  // a leaf: guards queue_, dropped_, stopping_
  std::condition_variable cv_;
  std::deque<Line> queue_;
  uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread thread_;
  pybind11::object logger_;  // touched with the GIL held only
};

}  // namespace ferry_py
