// Stream-ordered transfers (ext::submitOnStream, Python's *_on_cuda) over the fake CUDA
// driver, whose streams run their work in order on threads: the transfer must see what the
// stream did before it, and what the stream does after it must see the transfer, while the
// call itself returns at once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "common/cuda_driver.h"
#include "fake_cuda.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "test_util.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;

std::shared_ptr<Config> streamConfig() {
  auto c = test::loopbackConfig(5000);
  c->set("cuda/provider", "fake");
  c->set("cuda/stream_error", "release");
  return c;
}

// The application's side: its own stream on device 0, driven through the driver table.
class AppStream {
 public:
  AppStream() {
    cuda::loadDriver("fake", api_).IgnoreError();
    api_->primary_ctx_retain(0, &ctx_);
    api_->ctx_push(ctx_);
    api_->stream_create(&stream_);
    api_->event_create(&done_);
    api_->ctx_pop();
  }
  ~AppStream() {
    gate_ = UINT32_MAX;  // never leave the stream waiting
    run([&] { api_->event_destroy(done_), api_->stream_destroy(stream_); });
  }
  template <typename F>
  void run(F f) {
    api_->ctx_push(ctx_);
    f();
    api_->ctx_pop();
  }
  // Holds everything queued after this until open().
  void close() {
    run([&] { api_->stream_wait_value32(stream_, reinterpret_cast<uint64_t>(&gate_), ++gate_target_); });
  }
  void open() { __atomic_store_n(&gate_, gate_target_, __ATOMIC_RELEASE); }
  void copy(void* dst, const void* src, size_t n) {
    run([&] { api_->copy_async(reinterpret_cast<uint64_t>(dst), reinterpret_cast<uint64_t>(src), n, stream_); });
  }
  void finish() {
    run([&] { api_->event_record(done_, stream_); });
    api_->event_synchronize(done_);
  }
  cuda::Stream stream() const { return stream_; }

 private:
  std::shared_ptr<const cuda::DriverApi> api_;
  cuda::Context ctx_ = nullptr;
  cuda::Stream stream_ = nullptr;
  cuda::Event done_ = nullptr;
  volatile uint32_t gate_ = 0;
  uint32_t gate_target_ = 0;
};

class StreamOrdered : public ::testing::Test {
 protected:
  static constexpr size_t kLen = 256 << 10;
  void SetUp() override {
    test::installFakeCuda(2);
    a = std::make_unique<TransferEngine>(streamConfig());
    b = std::make_unique<TransferEngine>(streamConfig());
    ASSERT_TRUE(a->available() && b->available());
    ASSERT_TRUE(a->allocateLocalMemory(&src, kLen, "cuda:0").ok());
    ASSERT_TRUE(b->allocateLocalMemory(&dst, kLen, "cuda:1").ok());
    ASSERT_TRUE(a->openSegment(seg, b->getSegmentName()).ok());
    app = std::make_unique<AppStream>();
  }
  void TearDown() override {
    app.reset();
    a.reset();
    b.reset();
  }
  std::vector<uint8_t> pattern(uint64_t seed) {
    std::vector<uint8_t> p(kLen);
    test::fillPattern(p.data(), kLen, seed);
    return p;
  }
  std::unique_ptr<TransferEngine> a, b;
  std::unique_ptr<AppStream> app;
  void *src = nullptr, *dst = nullptr;
  SegmentID seg = 0;
};

TEST_F(StreamOrdered, AWriteSeesEarlierStreamWorkAndLaterWorkSeesIt) {
  test::setFakeCudaCopyDelay(200);
  for (int i = 0; i < 20; ++i) {
    const auto before = pattern(2 * i), after = pattern(2 * i + 1);
    std::vector<uint8_t> seen(kLen, 0);
    const char* hint = i % 2 ? "tcp" : nullptr;  // staged through the host, or nvlink
    app->close();
    app->copy(src, before.data(), kLen);  // the "kernel" that produces the bytes
    const auto t0 = Clock::now();
    Status st = ext::submitOnStream(*a, {{Request::WRITE, src, seg, reinterpret_cast<uint64_t>(dst), kLen, hint}},
                                    app->stream());
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500)) << "the call waits for nothing";
    app->copy(src, after.data(), kLen);  // later work: may not overtake the transfer
    app->copy(seen.data(), dst, kLen);   // ... and sees its bytes in place
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::vector<uint8_t> early(kLen);
    test::fakeCudaRead(reinterpret_cast<uint64_t>(dst), early.data(), kLen);
    EXPECT_NE(early, before) << "round " << i << ": nothing runs while the stream is held";
    app->open();
    app->finish();
    EXPECT_EQ(seen, before) << "round " << i;
  }
  test::setFakeCudaCopyDelay(0);
  EXPECT_TRUE(ext::lastStreamError(*a).ok());
}

TEST_F(StreamOrdered, AReadLandsBeforeLaterStreamWorkReadsIt) {
  const auto there = pattern(77);
  test::fakeCudaWrite(reinterpret_cast<uint64_t>(dst), there.data(), kLen);
  std::vector<uint8_t> seen(kLen, 0);
  app->close();
  ASSERT_TRUE(ext::submitOnStream(*a, {{Request::READ, src, seg, reinterpret_cast<uint64_t>(dst), kLen}}, app->stream()).ok());
  app->copy(seen.data(), src, kLen);
  app->open();
  app->finish();
  EXPECT_EQ(seen, there);
}

TEST_F(StreamOrdered, BadRequestsAndCaptureAreRefusedAtTheCall) {
  Status st = ext::submitOnStream(*a, {{Request::WRITE, src, seg + 100, 0, 16}}, app->stream());
  EXPECT_FALSE(st.ok());
  st = ext::submitOnStream(*a, {{Request::WRITE, src, seg, reinterpret_cast<uint64_t>(dst) + kLen, 16}}, app->stream());
  EXPECT_FALSE(st.ok()) << "past the target buffer";
  test::setFakeCudaCapturing(true);
  st = ext::submitOnStream(*a, {{Request::WRITE, src, seg, reinterpret_cast<uint64_t>(dst), 16}}, app->stream());
  test::setFakeCudaCapturing(false);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_NE(st.message().find("CUDA graph"), std::string::npos) << st.message();
  auto off = streamConfig();
  off->set("cuda/enable", "false");
  TransferEngine none(off);
  EXPECT_EQ(ext::submitOnStream(none, {{Request::WRITE, src, seg, 0, 16}}, nullptr).code(), Status::Code::kNotSupported);
}

TEST_F(StreamOrdered, AFailureAfterTheCallReleasesTheStreamAndIsKept) {
  // The target goes away while the stream is held: the transfer fails when it runs. In
  // release mode the stream goes on and the error is kept (exit mode: the next test).
  app->close();
  ASSERT_TRUE(ext::submitOnStream(*a, {{Request::WRITE, src, seg, reinterpret_cast<uint64_t>(dst), kLen, "tcp"}},
                                  app->stream()).ok());
  b.reset();
  app->open();
  app->finish();  // returns: the stream was released
  EXPECT_FALSE(ext::lastStreamError(*a).ok());
}

TEST_F(StreamOrdered, AFailureAfterTheCallEndsTheProcessByDefault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto c = streamConfig();
        c->set("cuda/stream_error", "exit");
        TransferEngine x(c);
        void* p = nullptr;
        if (!x.allocateLocalMemory(&p, kLen, "cuda:0").ok()) std::_Exit(3);
        SegmentID s = 0;
        if (!x.openSegment(s, b->getSegmentName()).ok()) std::_Exit(4);
        AppStream stream;
        stream.close();
        if (!ext::submitOnStream(x, {{Request::WRITE, p, s, reinterpret_cast<uint64_t>(dst), kLen, "tcp"}},
                                 stream.stream()).ok())
          std::_Exit(5);
        b.reset();
        stream.open();
        stream.finish();
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(1), "failed after it was scheduled");
}

}  // namespace
}  // namespace ferry
