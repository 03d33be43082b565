// The log sink: lines reach the host's sink with level, place and message; the level drops
// what is below it; an empty sink restores stderr; swapping sinks while threads log is safe.
#include "common/log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::log_tests {

struct Captured {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;
  std::string file;
  int line = 0;
};

class LogSinkTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = logLevel(); }
  void TearDown() override {
    setLogSink(nullptr);
    setLogLevel(saved_);
  }
  void capture(Captured& c) {
    setLogSink([&c](const LogRecord& r) {
      std::lock_guard lock(c.mu);
      c.lines.emplace_back(r.level, std::string(r.message));
      c.file = std::string(r.file);
      c.line = r.line;
    });
  }
  LogLevel saved_ = LogLevel::kInfo;
};

TEST_F(LogSinkTest, LinesReachTheSinkWithLevelPlaceAndMessage) {
  Captured c;
  capture(c);
  setLogLevel(LogLevel::kInfo);
  const int here = __LINE__ + 1;
  FERRY_LOG(WARN) << "disk " << 3 << " is slow";
  FERRY_LOG(DEBUG) << "dropped: below the level";
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0].first, LogLevel::kWarn);
  EXPECT_EQ(c.lines[0].second, "disk 3 is slow");
  EXPECT_EQ(c.file, "log_test.cpp");
  EXPECT_EQ(c.line, here);
  setLogLevel(LogLevel::kError);
  FERRY_LOG(WARN) << "dropped too";
  FERRY_LOG(ERROR) << "kept";
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[1].first, LogLevel::kError);
  EXPECT_EQ(logLevel(), LogLevel::kError);
}

TEST_F(LogSinkTest, AnEmptySinkRestoresStderr) {
  Captured c;
  capture(c);
  setLogSink(nullptr);
  testing::internal::CaptureStderr();
  FERRY_LOG(ERROR) << "to stderr";
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(c.lines.empty());
  EXPECT_NE(err.find("] to stderr\n"), std::string::npos) << err;
  EXPECT_EQ(err.rfind("[ferry E ", 0), 0u) << err;
}

TEST_F(LogSinkTest, ASinkThatThrowsDoesNotTakeTheThreadDown) {
  setLogSink([](const LogRecord&) { throw std::runtime_error("host bug"); });
  FERRY_LOG(ERROR) << "still fine";
  SUCCEED();
}

TEST_F(LogSinkTest, SinksSwapWhileThreadsLog) {
  Captured a, b;
  capture(a);
  std::vector<std::thread> loggers;
  for (int t = 0; t < 3; ++t)
    loggers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) FERRY_LOG(ERROR) << "line " << i;
    });
  for (int i = 0; i < 200; ++i) (i % 2 ? capture(a) : capture(b));
  for (auto& th : loggers) th.join();
  setLogSink(nullptr);
  std::lock_guard la(a.mu), lb(b.mu);
  EXPECT_GT(a.lines.size() + b.lines.size(), 0u);
  for (const auto& l : a.lines) EXPECT_EQ(l.second.rfind("line ", 0), 0u);
}

}  // namespace ferry::log_tests
