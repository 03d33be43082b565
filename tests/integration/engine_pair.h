// Two engines in one process talking over TCP on 127.0.0.1: `a` initiates, `b` is the
// target with a read-write, a read-only and a local-only buffer.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "ferry/transfer_engine.h"
#include "test_util.h"

namespace ferry::test {

class EnginePair : public ::testing::Test {
 protected:
  static constexpr size_t kSize = 8 << 20;

  void SetUp() override {
    a = std::make_unique<TransferEngine>(loopbackConfig(timeout_ms()));
    b = std::make_unique<TransferEngine>(loopbackConfig(timeout_ms()));
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    ASSERT_TRUE(b->available()) << b->initStatus().ToString();
    local.resize(kSize);
    rw.resize(kSize);
    ro.resize(1 << 16);
    lo.resize(1 << 16);
    fillPattern(local.data(), local.size(), 1);
    fillPattern(rw.data(), rw.size(), 2);
    fillPattern(ro.data(), ro.size(), 3);
    ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
    ASSERT_TRUE(b->registerLocalMemory(rw.data(), rw.size(), kGlobalReadWrite).ok());
    ASSERT_TRUE(b->registerLocalMemory(ro.data(), ro.size(), kGlobalReadOnly).ok());
    ASSERT_TRUE(b->registerLocalMemory(lo.data(), lo.size(), kLocalReadWrite).ok());
    Status st = a->openSegment(seg, b->getSegmentName());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  virtual int64_t timeout_ms() const { return 10000; }

  uint64_t addr(std::vector<uint8_t>& v, size_t off = 0) {
    return reinterpret_cast<uint64_t>(v.data() + off);
  }
  Request write(size_t local_off, uint64_t target, size_t len) {
    return Request{Request::WRITE, local.data() + local_off, seg, target, len};
  }
  Request read(size_t local_off, uint64_t target, size_t len) {
    return Request{Request::READ, local.data() + local_off, seg, target, len};
  }

  // Buffers before engines: members die in reverse order, so the engines (and their server
  // threads, which may still be sending from these buffers) stop before the memory goes.
  std::vector<uint8_t> local, rw, ro, lo;
  std::unique_ptr<TransferEngine> a, b;
  SegmentID seg = 0;
};

}  // namespace ferry::test
