// GPU bytes to and from a byte stream in pieces (cuda::Gpu::copyOutPieces / copyInPieces,
// what tcp stages GPU memory with), over the fake driver whose streams run their copies on
// threads of their own, late when asked: pieces arrive whole and in order, a slot is never
// refilled while its copy is running, the stream stays framed after a failed copy, and no
// copy is left running into the staging memory when the call returns.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/cuda_driver.h"
#include "fake_cuda.h"
#include "test_util.h"

namespace ferry {
namespace {

class StagedPieces : public ::testing::Test {
 protected:
  void SetUp() override {
    test::installFakeCuda(1);
    ASSERT_TRUE(gpu.available().ok());
    ASSERT_TRUE(gpu.allocate(0, kDeviceBytes, device).ok());
  }
  void TearDown() override {
    test::setFakeCudaCopyDelay(0);
    EXPECT_TRUE(gpu.free(0, device).ok());
  }
  static constexpr size_t kDeviceBytes = 8 << 20;
  cuda::Gpu gpu{cuda::Gpu::Options{true, "fake", ""}};
  uint64_t device = 0;
  void* at(size_t offset) const { return reinterpret_cast<void*>(device + offset); }
};

TEST_F(StagedPieces, RoundTripsWholeAndInOrderWhileCopiesLag) {
  test::setFakeCudaCopyDelay(300);
  for (size_t staging_len : {cuda::kPieceStagingBytes, size_t{100} << 10}) {
    const size_t n = (3 << 20) + 123;
    std::vector<uint8_t> pattern(n), out, staging(staging_len);
    test::fillPattern(pattern.data(), n, static_cast<int>(staging_len));
    test::fakeCudaWrite(device + 7, pattern.data(), n);
    bool emitted = false;
    size_t pieces = 0;
    ASSERT_TRUE(gpu.copyOutPieces(at(7), n, staging.data(), staging_len,
                                  [&](const uint8_t* piece, size_t len) {
                                    ++pieces;
                                    out.insert(out.end(), piece, piece + len);
                                    return Status::OK();
                                  },
                                  &emitted)
                    .ok());
    EXPECT_TRUE(emitted);
    EXPECT_EQ(out, pattern);
    const size_t piece = std::min(cuda::kPieceBytes, staging_len);
    EXPECT_EQ(pieces, (n + piece - 1) / piece);

    // Back in from a "stream" of other bytes, into another place.
    std::vector<uint8_t> second(n), seen(n);
    test::fillPattern(second.data(), n, 99);
    size_t read = 0;
    ASSERT_TRUE(gpu.copyInPieces(at(4 << 20), n, staging.data(), staging_len,
                                 [&](uint8_t* slot, size_t len) {
                                   std::memcpy(slot, second.data() + read, len);
                                   read += len;
                                   return Status::OK();
                                 })
                    .ok());
    EXPECT_EQ(read, n);
    test::fakeCudaRead(device + (4 << 20), seen.data(), n);
    EXPECT_EQ(seen, second) << "a slot was refilled while its copy was still running";
  }
}

TEST_F(StagedPieces, AStreamFailureStopsAtOnceAndLeavesNoCopyRunning) {
  test::setFakeCudaCopyDelay(2000);
  std::vector<uint8_t> staging(cuda::kPieceStagingBytes);
  bool emitted = false;
  int calls = 0;
  Status st = gpu.copyOutPieces(at(0), 4 << 20, staging.data(), staging.size(),
                                [&](const uint8_t*, size_t) {
                                  return ++calls == 2 ? Status::Unavailable("peer gone") : Status::OK();
                                },
                                &emitted);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_TRUE(emitted);
  EXPECT_EQ(calls, 2);
  // Nothing may still be copying into the staging memory the caller is about to reuse.
  std::memset(staging.data(), 0xab, staging.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(std::count(staging.begin(), staging.end(), 0xab), static_cast<long>(staging.size()));

  calls = 0;
  st = gpu.copyInPieces(at(0), 4 << 20, staging.data(), staging.size(), [&](uint8_t*, size_t) {
    return ++calls == 3 ? Status::Unavailable("connection reset") : Status::OK();
  });
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_EQ(calls, 3);
}

TEST_F(StagedPieces, AFailedCopyStillReadsTheWholeStreamAndSaysSo) {
  // The range runs 300 KiB past the end of the allocation: a later piece's copy fails.
  const size_t n = 1 << 20;
  std::vector<uint8_t> staging(cuda::kPieceStagingBytes);
  size_t read = 0;
  Status st = gpu.copyInPieces(at(kDeviceBytes - n + (300 << 10)), n, staging.data(), staging.size(),
                               [&](uint8_t*, size_t len) {
                                 read += len;
                                 return Status::OK();
                               });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(read, n) << "the stream must be consumed to the end of the payload";

  // Out of the GPU: a first piece that cannot be copied is refused before anything is emitted.
  bool emitted = true;
  st = gpu.copyOutPieces(at(kDeviceBytes - 100), 4096, staging.data(), staging.size(),
                         [&](const uint8_t*, size_t) { return Status::OK(); }, &emitted);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(emitted);
}

}  // namespace
}  // namespace ferry
