// GPU memory in the engine core, over the fake CUDA driver (tests/common/fake_cuda.h) and,
// for the unavailable paths, over what this machine really has: where registration finds the
// device, how a caller's location is checked, cuda:N allocation, copies in and out of device
// memory, and the rule that no transport is handed memory it cannot touch (the fake's device
// memory faults on any host access, so a transport that touched it would crash the test).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "fake_cuda.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "test_util.h"

namespace ferry {
namespace {

std::shared_ptr<Config> gpuConfig(const std::string& provider = "fake") {
  auto c = std::make_shared<Config>();
  c->set("rpc/bind_address", "127.0.0.1");
  c->set("cuda/provider", provider);
  return c;
}

Status registerAt(TransferEngine& e, void* addr, size_t len, const char* location) {
  MemoryOptions o;
  o.location = location;
  return e.registerLocalMemory(addr, len, o);
}

std::string locationOf(TransferEngine& e, const void* base) {
  for (const auto& b : test::localDescriptor(e).buffers)
    if (b.base == reinterpret_cast<uint64_t>(base)) return b.location;
  return "(not registered)";
}

bool gpuMachine() {
  std::error_code ec;
  return std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec) != std::filesystem::directory_iterator();
}

class GpuMemory : public ::testing::Test {
 protected:
  void SetUp() override { test::installFakeCuda(2); }
};

TEST_F(GpuMemory, WithoutCudaHostMemoryIsUnchangedAndCudaIsRefusedWithTheReason) {
  if (gpuMachine()) GTEST_SKIP() << "this machine has an NVIDIA GPU: the unavailable path is not reachable";
  TransferEngine e(gpuConfig("system"));
  ASSERT_TRUE(e.available()) << e.initStatus().ToString();
  std::vector<uint8_t> host(1 << 20);
  ASSERT_TRUE(e.registerLocalMemory(host.data(), host.size()).ok());
  EXPECT_EQ(locationOf(e, host.data()), "cpu:0");
  void* p = nullptr;
  Status st = e.allocateLocalMemory(&p, 1 << 20, "cuda:0");
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_NE(st.message().find("no NVIDIA GPU"), std::string::npos) << st.message();
  std::vector<uint8_t> other(4096);
  st = registerAt(e, other.data(), other.size(), "cuda:0");
  EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
  EXPECT_EQ(ext::cudaStatus(e).code(), Status::Code::kNotSupported);

  // Disabled by config: never probed, and says so.
  auto off = gpuConfig();
  off->set("cuda/enable", "false");
  TransferEngine d(off);
  ASSERT_TRUE(d.available());
  st = d.allocateLocalMemory(&p, 4096, "cuda:0");
  EXPECT_NE(st.message().find("cuda/enable=false"), std::string::npos) << st.ToString();
  // Required: no start without a GPU, saying why; with one (the fake), a normal start.
  auto required = gpuConfig("system");
  required->set("cuda/enable", "true");
  TransferEngine r(required);
  EXPECT_EQ(r.initStatus().code(), Status::Code::kNotSupported) << r.initStatus().ToString();
  EXPECT_NE(r.initStatus().message().find("no NVIDIA GPU"), std::string::npos) << r.initStatus().ToString();
  auto fake_required = gpuConfig();
  fake_required->set("cuda/enable", "true");
  TransferEngine fr(fake_required);
  EXPECT_TRUE(fr.available()) << fr.initStatus().ToString();
  auto bad = gpuConfig();
  bad->set("cuda/enable", "maybe");
  TransferEngine b(bad);
  EXPECT_EQ(b.initStatus().code(), Status::Code::kInvalidArgument);
}

TEST_F(GpuMemory, RegistrationFindsTheDeviceAndChecksTheCallersWord) {
  TransferEngine e(gpuConfig());
  ASSERT_TRUE(e.available()) << e.initStatus().ToString();
  ASSERT_TRUE(ext::cudaStatus(e).ok()) << ext::cudaStatus(e).ToString();
  const int allocations_before = test::fakeCudaStats().live_allocations;

  void* d1 = nullptr;
  ASSERT_TRUE(e.allocateLocalMemory(&d1, 4 << 20, "cuda:1").ok());
  EXPECT_EQ(locationOf(e, d1), "cuda:1");
  EXPECT_EQ(test::fakeCudaStats().live_allocations, allocations_before + 1);

  // Memory a framework allocated: found wherever in the allocation it starts.
  const uint64_t dev = test::fakeCudaAlloc(0, 1 << 20);
  ASSERT_NE(dev, 0u);
  auto* inside = reinterpret_cast<void*>(dev + 4096);
  ASSERT_TRUE(e.registerLocalMemory(inside, 64 << 10).ok());
  EXPECT_EQ(locationOf(e, inside), "cuda:0");
  ASSERT_TRUE(e.unregisterLocalMemory(inside).ok());
  Status st = e.registerLocalMemory(reinterpret_cast<void*>(dev + (1 << 20) - 4096), 8192);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("runs past the end"), std::string::npos) << st.message();
  // The caller's location is checked, never trusted: a GPU pointer said to be host memory
  // would be memcpy'd by the first host transport.
  st = registerAt(e, reinterpret_cast<void*>(dev), 4096, "cpu:0");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  st = registerAt(e, reinterpret_cast<void*>(dev), 4096, "cuda:1");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  ASSERT_TRUE(registerAt(e, reinterpret_cast<void*>(dev), 4096, "cuda").ok());
  EXPECT_EQ(locationOf(e, reinterpret_cast<void*>(dev)), "cuda:0");
  std::vector<uint8_t> host(4096);
  st = registerAt(e, host.data(), host.size(), "cuda:0");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("not CUDA device memory"), std::string::npos) << st.message();

  void* p = nullptr;
  st = e.allocateLocalMemory(&p, 4096, "cuda:7");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("no CUDA device 7"), std::string::npos) << st.message();
  EXPECT_EQ(e.allocateLocalMemory(&p, 4096, "cuda").code(), Status::Code::kInvalidArgument);

  ASSERT_TRUE(e.unregisterLocalMemory(reinterpret_cast<void*>(dev)).ok());
  test::fakeCudaFree(dev);
  ASSERT_TRUE(e.freeLocalMemory(d1).ok());
  EXPECT_EQ(test::fakeCudaStats().live_allocations, allocations_before);
}

TEST_F(GpuMemory, ProbingHostMemoryMakesNoContextCurrent) {
  // Mooncake has shipped this several times: probing a host pointer created a context on
  // GPU 0 (hundreds of MiB per process).
  TransferEngine e(gpuConfig());
  ASSERT_TRUE(e.available());
  std::vector<std::vector<uint8_t>> bufs(8, std::vector<uint8_t>(8192));
  const uint64_t pushes = test::fakeCudaStats().context_pushes;
  for (auto& b : bufs) ASSERT_TRUE(e.registerLocalMemory(b.data(), b.size()).ok());
  for (auto& b : bufs) EXPECT_EQ(locationOf(e, b.data()), "cpu:0");
  // Host-only transfers (to ourselves over tcp, the path with GPU staging) do not either.
  SegmentID self = 0;
  ASSERT_TRUE(e.openSegment(self, e.getSegmentName()).ok());
  ASSERT_TRUE(test::runBatch(e, {{Request::WRITE, bufs[0].data(), self, reinterpret_cast<uint64_t>(bufs[1].data()), 8192, "tcp"}}).ok());
  EXPECT_EQ(test::fakeCudaStats().context_pushes, pushes);
  EXPECT_EQ(test::fakeCudaStats().live_pinned_bytes, 0u);
}

TEST_F(GpuMemory, BytesGoInAndOutOfDeviceMemoryThroughTheDriver) {
  TransferEngine e(gpuConfig());
  ASSERT_TRUE(e.available());
  void* d = nullptr;
  ASSERT_TRUE(e.allocateLocalMemory(&d, 1 << 20, "cuda:0").ok());
  std::vector<uint8_t> in(300000), out(300000), seen(300000);
  test::fillPattern(in.data(), in.size(), 5);
  ASSERT_TRUE(ext::copyLocal(e, static_cast<uint8_t*>(d) + 100, in.data(), in.size()).ok());
  test::fakeCudaRead(reinterpret_cast<uint64_t>(d) + 100, seen.data(), seen.size());
  EXPECT_EQ(seen, in);
  ASSERT_TRUE(ext::copyLocal(e, out.data(), static_cast<uint8_t*>(d) + 100, out.size()).ok());
  EXPECT_EQ(out, in);
  EXPECT_FALSE(ext::copyLocal(e, static_cast<uint8_t*>(d) + (1 << 20) - 10, in.data(), 100).ok())
      << "past the end of the allocation";
  ASSERT_TRUE(e.freeLocalMemory(d).ok());
}

TEST_F(GpuMemory, OwnSegmentCopiesGoThroughTheDriver) {
  TransferEngine e(gpuConfig());
  ASSERT_TRUE(e.available());
  void* gpu = nullptr;
  ASSERT_TRUE(e.allocateLocalMemory(&gpu, 4 << 20, "cuda:1").ok());
  std::vector<uint8_t> host(4 << 20), back(4 << 20), seen(3 << 20);
  ASSERT_TRUE(e.registerLocalMemory(host.data(), host.size()).ok());
  ASSERT_TRUE(e.registerLocalMemory(back.data(), back.size()).ok());
  SegmentID self = 0;
  ASSERT_TRUE(e.openSegment(self, e.getSegmentName()).ok());
  test::fillPattern(host.data(), 3 << 20, 11);
  const auto g = reinterpret_cast<uint64_t>(gpu);
  // host -> GPU (write), GPU -> GPU (a read into another part), GPU -> host (read).
  ASSERT_TRUE(test::runBatch(e, {{Request::WRITE, host.data(), self, g, 3 << 20}}).ok());
  test::fakeCudaRead(g, seen.data(), seen.size());
  EXPECT_EQ(std::memcmp(seen.data(), host.data(), seen.size()), 0);
  ASSERT_TRUE(test::runBatch(e, {{Request::WRITE, static_cast<uint8_t*>(gpu), self, g + (3 << 20), 1 << 20}}).ok());
  ASSERT_TRUE(test::runBatch(e, {{Request::READ, back.data(), self, g + (3 << 20), 1 << 20}}).ok());
  EXPECT_EQ(std::memcmp(back.data(), host.data(), 1 << 20), 0);
  ASSERT_TRUE(e.freeLocalMemory(gpu).ok());
}

TEST_F(GpuMemory, TwoEnginesOfOneProcessCopyGpuMemoryWithoutIpc) {
  // The driver refuses to open a handle in the process that exported it: nvlink uses the
  // addresses as they are, after checking them with the driver.
  TransferEngine a(gpuConfig()), b(gpuConfig());
  ASSERT_TRUE(a.available() && b.available());
  void *a_gpu = nullptr, *b_gpu = nullptr;
  ASSERT_TRUE(a.allocateLocalMemory(&a_gpu, 1 << 20, "cuda:0").ok());
  ASSERT_TRUE(b.allocateLocalMemory(&b_gpu, 1 << 20, "cuda:1").ok());
  std::vector<uint8_t> pattern(1 << 20), seen(1 << 20);
  test::fillPattern(pattern.data(), pattern.size(), 9);
  test::fakeCudaWrite(reinterpret_cast<uint64_t>(a_gpu), pattern.data(), pattern.size());
  SegmentID peer = 0;
  ASSERT_TRUE(a.openSegment(peer, b.getSegmentName()).ok());
  Status st = test::runBatch(a, {{Request::WRITE, a_gpu, peer, reinterpret_cast<uint64_t>(b_gpu), 1 << 20, "nvlink"}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  test::fakeCudaRead(reinterpret_cast<uint64_t>(b_gpu), seen.data(), seen.size());
  EXPECT_EQ(seen, pattern);
  EXPECT_EQ(test::fakeCudaStats().live_ipc_mappings, 0);
}

TEST_F(GpuMemory, NoTransportIsHandedDeviceMemoryItCannotTouch) {
  // Two engines in this process: shm (and file) cannot touch GPU memory, so a transfer with
  // a GPU end pinned to shm is refused with the reason, and nothing faults (the fake's device
  // memory is inaccessible to the host); the same transfers unpinned find one that can.
  TransferEngine a(gpuConfig()), b(gpuConfig());
  ASSERT_TRUE(a.available() && b.available());
  void *a_gpu = nullptr, *b_gpu = nullptr;
  ASSERT_TRUE(a.allocateLocalMemory(&a_gpu, 1 << 20, "cuda:0").ok());
  ASSERT_TRUE(b.allocateLocalMemory(&b_gpu, 1 << 20, "cuda:0").ok());
  std::vector<uint8_t> a_host(1 << 20), b_host(1 << 20);
  ASSERT_TRUE(a.registerLocalMemory(a_host.data(), a_host.size()).ok());
  ASSERT_TRUE(b.registerLocalMemory(b_host.data(), b_host.size()).ok());
  SegmentID peer = 0, self = 0;
  ASSERT_TRUE(a.openSegment(peer, b.getSegmentName()).ok());
  ASSERT_TRUE(a.openSegment(self, a.getSegmentName()).ok());
  struct Case {
    void* local;
    SegmentID seg;
    void* remote;
    std::vector<const char*> hints;
  } cases[] = {{a_gpu, peer, b_host.data(), {"shm", "local", "file"}},
               {a_host.data(), peer, b_gpu, {"shm", "local", "file"}},
               {a_gpu, self, a_host.data(), {"shm"}},
               {a_host.data(), self, a_gpu, {"shm"}}};
  for (const Case& c : cases) {
    for (const char* hint : c.hints) {
      for (auto op : {Request::WRITE, Request::READ}) {
        Request r{op, c.local, c.seg, reinterpret_cast<uint64_t>(c.remote), 64 << 10};
        if (*hint) r.transport_hint = hint;
        TransferStatus ts;
        Status st = test::runBatch(a, {r}, std::chrono::seconds(10), &ts);
        EXPECT_FALSE(st.ok()) << "hint '" << hint << "'";
        EXPECT_EQ(st.code(), Status::Code::kNotSupported) << st.ToString();
        EXPECT_NE(ts.s, COMPLETED);
      }
    }
  }
  for (const Case& c : cases) {
    Request r{Request::WRITE, c.local, c.seg, reinterpret_cast<uint64_t>(c.remote), 64 << 10};
    Status st = test::runBatch(a, {r});
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  // Host to host still moves.
  test::fillPattern(a_host.data(), 4096, 3);
  ASSERT_TRUE(test::runBatch(a, {{Request::WRITE, a_host.data(), peer, reinterpret_cast<uint64_t>(b_host.data()), 4096}}).ok());
  EXPECT_EQ(std::memcmp(a_host.data(), b_host.data(), 4096), 0);
}

}  // namespace
}  // namespace ferry
