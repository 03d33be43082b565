// The CUDA driver seam (common/cuda_driver.h) on a machine without a GPU: the real loader
// against what is installed (no driver: a clear refusal; the toolkit's stub library: loads,
// and cuInit says it is the stub), and the provider registry with a fake driver.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "common/cuda_driver.h"

namespace ferry {
namespace {

constexpr const char* kStub = "/usr/local/cuda/lib64/stubs/libcuda.so";

TEST(CudaDriver, SystemDriverLoadsOnlyWhereThereIsOne) {
  void* real = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (!real) real = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  std::shared_ptr<const cuda::DriverApi> api;
  Status st = cuda::loadDriver("system", api);
  if (!real) {
    EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
    EXPECT_NE(st.message().find("libcuda.so.1"), std::string::npos) << st.message();
    EXPECT_FALSE(api);
  } else {
    ASSERT_TRUE(st.ok()) << st.ToString();  // a machine with the NVIDIA driver
    cuda::Availability a = cuda::probe(*api);
    EXPECT_TRUE(a.status.ok() || !a.status.message().empty());
  }
}

TEST(CudaDriver, TheToolkitStubLoadsAndSaysItIsTheStub) {
  if (::access(kStub, R_OK) != 0) GTEST_SKIP() << "no CUDA toolkit stub at " << kStub;
  void* real = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (real) GTEST_SKIP() << "a real driver is installed: one driver per process";
  std::shared_ptr<const cuda::DriverApi> api;
  Status st = cuda::loadDriver("system", api, kStub);
  ASSERT_TRUE(st.ok()) << st.ToString();
  cuda::Availability a = cuda::probe(*api);
  EXPECT_FALSE(a.status.ok());
  EXPECT_NE(a.status.message().find("cuInit"), std::string::npos) << a.status.ToString();
  EXPECT_NE(a.status.message().find("STUB"), std::string::npos) << a.status.ToString();
  // Asking for another library once one is loaded is refused, not silently ignored.
  std::shared_ptr<const cuda::DriverApi> other;
  EXPECT_EQ(cuda::loadDriver("system", other, "/nonexistent/libcuda.so.1").code(), Status::Code::kNotSupported);
}

// A fake driver: two devices; addresses in [0x1000, 0x3000) are device 1's allocation.
cuda::DriverApi fakeApi(int init_result) {
  static int init_rc;
  init_rc = init_result;
  cuda::DriverApi a;
  a.provider = "fake";
  a.init = [] { return init_rc; };
  a.driver_version = [](int* v) { *v = 13000; return 0; };
  a.device_count = [](int* n) { *n = 2; return 0; };
  a.device_name = [](int i, char* out, int len) {
    std::snprintf(out, static_cast<size_t>(len), "Fake GPU %d", i);
    return 0;
  };
  a.device_uuid = [](int i, uint8_t out[16]) {
    std::memset(out, i + 1, 16);
    return 0;
  };
  a.pointer_info = [](uint64_t p, cuda::PointerInfo* out) {
    *out = {};
    if (p >= 0x1000 && p < 0x3000) *out = {true, 1, 0x1000, 0x2000, 42, true};
    return 0;
  };
  a.error_name = [](int r) { return r == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN"; };
  return a;
}

TEST(CudaDriver, ProvidersByNameAndWhatAProbeReports) {
  cuda::registerDriverProvider("fake", [](std::shared_ptr<const cuda::DriverApi>& out) {
    out = std::make_shared<cuda::DriverApi>(fakeApi(0));
    return Status::OK();
  });
  std::shared_ptr<const cuda::DriverApi> api;
  ASSERT_TRUE(cuda::loadDriver("fake", api).ok());
  cuda::Availability a = cuda::probe(*api);
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_EQ(a.driver_version, 13000);
  EXPECT_EQ(a.devices, (std::vector<std::string>{"Fake GPU 0", "Fake GPU 1"}));
  cuda::PointerInfo info;
  ASSERT_EQ(api->pointer_info(0x1800, &info), 0);
  EXPECT_TRUE(info.device);
  EXPECT_EQ(info.ordinal, 1);
  EXPECT_EQ(info.range_start, 0x1000u);
  ASSERT_EQ(api->pointer_info(0x9000, &info), 0);
  EXPECT_FALSE(info.device) << "an address CUDA does not know is host memory";

  // A driver with no device: the probe says which call failed and how.
  auto none = fakeApi(100);
  a = cuda::probe(none);
  EXPECT_EQ(a.status.code(), Status::Code::kUnavailable);
  EXPECT_NE(a.status.message().find("cuInit: CUDA_ERROR_NO_DEVICE (100)"), std::string::npos) << a.status.message();

  cuda::registerDriverProvider("fake", nullptr);
  EXPECT_EQ(cuda::loadDriver("fake", api).code(), Status::Code::kNotFound);
  cuda::registerDriverProvider("system", [](std::shared_ptr<const cuda::DriverApi>&) { return Status::OK(); });
  EXPECT_EQ(cuda::loadDriver("system", api, "/nonexistent/libcuda.so.1").code(), Status::Code::kNotSupported)
      << "the built-in provider cannot be replaced";
}

}  // namespace
}  // namespace ferry
