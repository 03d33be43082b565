// Starts ferry-test-peer as a separate process and reads its buffers from its first line.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace ferry::test {

struct PeerProcess {
  ChildProcess proc;
  std::string segment, exported;
  uint16_t port = 0;
  uint64_t rw = 0, rw_len = 0, ro = 0, local = 0;

  /// port 0: any free port.
  ::testing::AssertionResult start(uint16_t want_port = 0, size_t buffer_size = 64 << 20) {
    if (!proc.start({binPath("ferry-test-peer"), "--port=" + std::to_string(want_port),
                     "--buffer_size=" + std::to_string(buffer_size)}))
      return ::testing::AssertionFailure() << "cannot start ferry-test-peer";
    std::string line = proc.readLine();
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("segment"))
      return ::testing::AssertionFailure() << "peer said: '" << line << "'";
    segment = j["segment"];
    exported = j["export"];
    port = j["port"];
    rw = j["rw"];
    rw_len = j["rw_len"];
    ro = j["ro"];
    local = j["local"];
    return ::testing::AssertionSuccess();
  }

  nlohmann::json command(const std::string& cmd) {
    proc.writeLine(cmd);
    auto j = nlohmann::json::parse(proc.readLine(), nullptr, false);
    return j;
  }
};

}  // namespace ferry::test
