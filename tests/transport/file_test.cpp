// File segments: the file I/O backends (io_uring, pread/pwrite) and their O_DIRECT handling,
// the probe and its fallback when io_uring is blocked, local files opened as segments, files
// an engine exposes to peers (over the file transport and over TCP), permissions, bounds,
// policies and failover.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "../integration/peer_process.h"
#include "common/file_io.h"
#include "test_util.h"

namespace ferry::test {

#define ASSERT_OK(expr)                           \
  do {                                            \
    Status st_ = (expr);                          \
    ASSERT_TRUE(st_.ok()) << #expr << ": " << st_.ToString(); \
  } while (0)

namespace {

std::string fileHash(const std::string& path, uint64_t offset, uint64_t len) {
  std::vector<uint8_t> buf(len);
  int fd = ::open(path.c_str(), O_RDONLY);
  ssize_t n = fd >= 0 ? ::pread(fd, buf.data(), len, static_cast<off_t>(offset)) : -1;
  if (fd >= 0) ::close(fd);
  return n == static_cast<ssize_t>(len) ? hashHex(buf.data(), len) : "short read";
}

void makeFile(const std::string& path, uint64_t size, uint64_t seed) {
  std::vector<uint8_t> data(size);
  fillPattern(data.data(), size, seed);
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), size), static_cast<ssize_t>(size));
  ::close(fd);
}

// Page-aligned memory for O_DIRECT.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : size(n) {
    EXPECT_EQ(posix_memalign(reinterpret_cast<void**>(&p), 4096, n), 0);
  }
  ~AlignedBuffer() { std::free(p); }
  uint8_t* p = nullptr;
  size_t size;
};

// Makes io_uring_setup fail with ENOSYS in this process (as seccomp profiles of container
// runtimes do), so the probe has to fall back.
bool blockIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

bool ioUringWorksHere(std::string* why = nullptr) {
  fileio::Backend b;
  Status st = fileio::chooseBackend("io_uring", b);
  if (why) *why = st.ToString();
  return st.ok();
}

std::shared_ptr<Config> fileConfig(const std::string& backend) {
  auto c = loopbackConfig();
  c->set("transports/file/backend", backend);
  return c;
}

}  // namespace

// ---------------- the backends ----------------

class FileIoBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "io_uring" && !ioUringWorksHere(&why_not))
      GTEST_SKIP() << "io_uring is not available on this machine: " << why_not;
    ASSERT_TRUE(fileio::chooseBackend(GetParam(), backend).ok());
    ASSERT_TRUE(fileio::FileIo::create(backend, 8, 4096, io).ok());
    path = dir.file("data");
    makeFile(path, 8 << 20, 1);
    ASSERT_TRUE(fileio::File::open(path, false, 0, true, file).ok());
  }
  fileio::IoOp op(bool write, uint8_t* buf, uint64_t offset, uint64_t len) {
    fileio::IoOp o;
    o.file = file.get();
    o.write = write;
    o.buf = buf;
    o.offset = offset;
    o.length = len;
    return o;
  }
  std::string why_not;
  TempDir dir;
  std::string path;
  fileio::Backend backend{};
  std::unique_ptr<fileio::FileIo> io;
  std::shared_ptr<fileio::File> file;
};
INSTANTIATE_TEST_SUITE_P(Backends, FileIoBackend, ::testing::Values("io_uring", "pread"),
                         [](const auto& info) { return info.param; });

TEST_P(FileIoBackend, AlignedOpsGoDirectAndUnalignedOnesThroughThePageCache) {
  if (file->directFd() < 0) GTEST_SKIP() << "the filesystem under " << dir.path() << " refuses O_DIRECT";
  EXPECT_EQ(io->backend(), backend);
  AlignedBuffer mem(1 << 20);
  fillPattern(mem.p, mem.size, 42);
  auto w = op(true, mem.p, 4096, 1 << 20);  // all three aligned
  io->run(&w, 1);
  ASSERT_TRUE(w.result.ok()) << w.result.ToString();
  EXPECT_EQ(io->counters().direct_ops, 1u);
  EXPECT_EQ(fileHash(path, 4096, 1 << 20), hashHex(mem.p, 1 << 20));

  // Unaligned memory, offset or length: buffered, and coherent with the direct write.
  std::vector<uint8_t> back(100000);
  auto r = op(false, back.data() + 1, 4096 + 5, 99999 - 5);
  io->run(&r, 1);
  ASSERT_TRUE(r.result.ok()) << r.result.ToString();
  EXPECT_EQ(io->counters().buffered_ops, 1u);
  EXPECT_EQ(std::memcmp(back.data() + 1, mem.p + 5, 99999 - 5), 0);

  // A buffered write then a direct read of the same range sees the new bytes.
  std::vector<uint8_t> patch(4096 * 2 + 3);
  fillPattern(patch.data(), patch.size(), 43);
  auto pw = op(true, patch.data(), 8192, patch.size());
  io->run(&pw, 1);
  ASSERT_TRUE(pw.result.ok());
  auto dr = op(false, mem.p, 8192, 8192);
  io->run(&dr, 1);
  ASSERT_TRUE(dr.result.ok());
  EXPECT_EQ(io->counters().direct_ops, 2u);
  EXPECT_EQ(std::memcmp(mem.p, patch.data(), 8192), 0);
}

TEST_P(FileIoBackend, ManyOpsBeyondTheQueueDepthAllComplete) {
  constexpr size_t kOps = 64, kLen = 65536 + 17;  // queue depth is 8
  std::vector<uint8_t> src(kOps * kLen), dst(kOps * kLen);
  fillPattern(src.data(), src.size(), 5);
  std::vector<fileio::IoOp> ops;
  for (size_t i = 0; i < kOps; ++i) ops.push_back(op(true, src.data() + i * kLen, i * kLen + 3, kLen));
  io->run(ops.data(), ops.size());
  for (auto& o : ops) ASSERT_TRUE(o.result.ok()) << o.result.ToString();
  ops.clear();
  for (size_t i = 0; i < kOps; ++i) ops.push_back(op(false, dst.data() + i * kLen, i * kLen + 3, kLen));
  io->run(ops.data(), ops.size());
  for (auto& o : ops) ASSERT_TRUE(o.result.ok()) << o.result.ToString();
  EXPECT_EQ(src, dst);
}

TEST_P(FileIoBackend, ReadingPastTheEndAndWritingReadOnlyFail) {
  std::vector<uint8_t> buf(100);
  auto r = op(false, buf.data(), (8 << 20) - 10, 100);
  io->run(&r, 1);
  EXPECT_EQ(r.result.code(), Status::Code::kOutOfRange) << r.result.ToString();
  std::shared_ptr<fileio::File> ro;
  ASSERT_TRUE(fileio::File::open(path, true, 0, true, ro).ok());
  fileio::IoOp w = op(true, buf.data(), 0, 100);
  w.file = ro.get();
  io->run(&w, 1);
  EXPECT_EQ(w.result.code(), Status::Code::kPermissionDenied) << w.result.ToString();
}

TEST(FileIo, BackendChoice) {
  fileio::Backend b;
  ASSERT_TRUE(fileio::chooseBackend("pread", b).ok());
  EXPECT_EQ(b, fileio::Backend::kPosix);
  EXPECT_TRUE(fileio::chooseBackend("aio", b).IsInvalidArgument());
  ASSERT_TRUE(fileio::chooseBackend("auto", b).ok());
  EXPECT_EQ(b == fileio::Backend::kIoUring, ioUringWorksHere());
  std::shared_ptr<fileio::File> f;
  EXPECT_TRUE(fileio::File::open("/nonexistent/x", false, 0, true, f).IsNotFound());
  EXPECT_TRUE(fileio::File::open("/tmp", true, 0, true, f).IsInvalidArgument());
}

// The probe at start: with io_uring_setup blocked, "auto" runs on pread/pwrite, "io_uring"
// refuses clearly, and an engine's file segment still works. In a child: seccomp is for life.
TEST(FileIo, FallsBackToPreadWhenIoUringIsBlocked) {
  TempDir dir;
  std::string path = dir.file("blocked");
  makeFile(path, 1 << 20, 9);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!blockIoUringSetup()) _exit(10);
    fileio::Backend b;
    if (!fileio::chooseBackend("auto", b).ok() || b != fileio::Backend::kPosix) _exit(11);
    if (!fileio::chooseBackend("io_uring", b).IsNotSupported()) _exit(12);
    TransferEngine e(fileConfig("io_uring"));
    if (e.available()) _exit(13);  // asked for io_uring by name: refuse to start
    TransferEngine engine(fileConfig("auto"));
    if (!engine.available()) _exit(14);
    std::vector<uint8_t> mem(1 << 20);
    if (!engine.registerLocalMemory(mem.data(), mem.size()).ok()) _exit(15);
    SegmentID seg;
    if (!engine.openSegment(seg, "file://" + path).ok()) _exit(16);
    if (!runBatch(engine, {Request{Request::READ, mem.data(), seg, 0, mem.size()}}).ok()) _exit(17);
    _exit(hashHex(mem.data(), mem.size()) == fileHash(path, 0, 1 << 20) ? 0 : 18);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child step " << WEXITSTATUS(status) << " failed";
}

// ---------------- file segments through the engine ----------------

class FileSegments : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "io_uring" && !ioUringWorksHere(&why_not))
      GTEST_SKIP() << "io_uring is not available on this machine: " << why_not;
    a = std::make_unique<TransferEngine>(fileConfig(GetParam()));
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    mem.resize(40 << 20);
    ASSERT_TRUE(a->registerLocalMemory(mem.data(), mem.size()).ok());
    path = dir.file("segment");
  }
  // Writes then reads 1 B .. 16 MiB at unaligned and aligned offsets of file segment `seg`
  // (at least 17 MiB long), checking the file's bytes and ours. `hint` pins a transport.
  void roundTrips(SegmentID seg, const std::string& file_path, const char* hint = nullptr) {
    const size_t sizes[] = {1, 7, 4095, 4096, 65536 + 3, (1 << 20), (1 << 20) + 13, 16 << 20};
    uint8_t* out = mem.data() + 4096;                  // page-aligned source
    uint8_t* back = mem.data() + (20 << 20) + 4096;    // page-aligned destination
    for (size_t n : sizes) {
      for (uint64_t target : {uint64_t{4096}, uint64_t{5}}) {
        fillPattern(out, n, n + target);
        Request w{Request::WRITE, out, seg, target, n, hint};
        ASSERT_TRUE(runBatch(*a, {w}).ok()) << n << "@" << target;
        EXPECT_EQ(fileHash(file_path, target, n), hashHex(out, n)) << n << "@" << target;
        std::memset(back, 0, n);
        Request r{Request::READ, back, seg, target, n, hint};
        ASSERT_TRUE(runBatch(*a, {r}).ok()) << n << "@" << target;
        ASSERT_EQ(std::memcmp(back, out, n), 0) << n << "@" << target;
      }
    }
  }
  std::string why_not;
  TempDir dir;
  std::string path;
  std::vector<uint8_t> mem;
  std::unique_ptr<TransferEngine> a;
};
INSTANTIATE_TEST_SUITE_P(Backends, FileSegments, ::testing::Values("io_uring", "pread"),
                         [](const auto& info) { return info.param; });

TEST_P(FileSegments, LocalFileOpenedAsASegmentRoundTrips) {
  makeFile(path, 17 << 20, 3);
  SegmentID seg;
  ASSERT_OK(a->openSegment(seg, "file://" + path));
  SegmentInfo info;
  ASSERT_TRUE(a->getSegmentInfo(seg, info).ok());
  EXPECT_EQ(info.type, SegmentInfo::File);
  ASSERT_EQ(info.buffers.size(), 1u);
  EXPECT_EQ(info.buffers[0].base, 0u);
  EXPECT_EQ(info.buffers[0].length, 17u << 20);
  EXPECT_EQ(ext::transportName(*a, seg), "file");
  roundTrips(seg, path);
  // Several requests in one batch, in flight together.
  std::vector<Request> reqs;
  for (int i = 0; i < 16; ++i)
    reqs.push_back({Request::WRITE, mem.data() + i * 70001, seg, uint64_t(i) * 70001 + 11, 70001});
  fillPattern(mem.data(), 16 * 70001, 77);
  ASSERT_TRUE(runBatch(*a, reqs).ok());
  EXPECT_EQ(fileHash(path, 11, 16 * 70001), hashHex(mem.data(), 16 * 70001));
  EXPECT_TRUE(a->closeSegment(seg).ok());
}

// A cancel stops file I/O at slice boundaries (each I/O thread has up to queue_depth slices
// issued at once): once it returns, the file no longer changes, and the range of each task
// that never started still holds the old bytes.
TEST_P(FileSegments, CancelStopsAtSliceBoundaries) {
  constexpr size_t kBlock = 256 << 10, kTasks = 512;  // 16 times the queue depth: work left to cancel
  makeFile(path, kTasks * kBlock, 8);
  std::vector<uint8_t> original(kTasks * kBlock);
  fillPattern(original.data(), original.size(), 8);  // what makeFile wrote
  SegmentID seg;
  ASSERT_OK(a->openSegment(seg, "file://" + path));
  fillPattern(mem.data(), 32 << 20, 9);
  std::vector<Request> reqs;
  for (size_t i = 0; i < kTasks; ++i)
    reqs.push_back({Request::WRITE, mem.data() + (i * kBlock) % (32 << 20), seg, i * kBlock, kBlock});
  BatchID batch = a->allocateBatch(kTasks);
  ASSERT_OK(a->submitTransfer(batch, reqs));
  ASSERT_OK(a->cancelTransfer(batch));
  std::vector<TransferStatus> tasks;
  ASSERT_OK(a->getTransferStatus(batch, tasks));
  const std::string after_cancel = fileHash(path, 0, kTasks * kBlock);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(fileHash(path, 0, kTasks * kBlock), after_cancel) << "the file changed after cancelTransfer returned";
  size_t untouched = 0;
  for (size_t i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(tasks[i].s == COMPLETED || tasks[i].s == CANCELED) << ToString(tasks[i].s);
    if (tasks[i].s != CANCELED || tasks[i].transferred_bytes != 0) continue;
    ++untouched;
    EXPECT_EQ(fileHash(path, i * kBlock, kBlock), hashHex(original.data() + i * kBlock, kBlock)) << "task " << i;
  }
  EXPECT_GT(untouched, 0u) << "128 MiB of file writes finished before a cancel issued right after the submit";
  ASSERT_OK(a->freeBatch(batch));
}

TEST_P(FileSegments, BadFileSegmentsAndRangesAreRefused) {
  makeFile(path, 1 << 20, 4);
  SegmentID seg;
  EXPECT_TRUE(a->openSegment(seg, "file://" + dir.file("missing")).IsNotFound());
  EXPECT_TRUE(a->openSegment(seg, "file://relative/path").IsInvalidArgument());
  EXPECT_TRUE(a->openSegment(seg, "file://" + dir.path()).IsInvalidArgument());  // a directory
  EXPECT_TRUE(a->openSegment(seg, "#nofile").IsInvalidArgument());
  EXPECT_TRUE(a->openSegment(seg, a->getSegmentName() + "#unknown").IsNotFound());
  ASSERT_OK(a->openSegment(seg, "file://" + path));
  BatchID bid = a->allocateBatch(1);
  Status st = a->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, (1 << 20) - 10, 11}});
  EXPECT_EQ(st.code(), Status::Code::kOutOfRange) << st.ToString();
  st = a->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, UINT64_MAX - 5, 11}});
  EXPECT_EQ(st.code(), Status::Code::kOutOfRange) << st.ToString();
  st = a->submitTransfer(bid, {Request{Request::READ, mem.data() + mem.size() - 4, seg, 0, 11}});
  EXPECT_FALSE(st.ok());  // the local side is checked as for memory
  // Memory transports do not serve file segments.
  st = a->submitTransfer(bid, {Request{Request::READ, mem.data(), seg, 0, 11, "local"}});
  EXPECT_TRUE(st.IsNotSupported()) << st.ToString();
  EXPECT_TRUE(a->freeBatch(bid).ok());
  // A file that grew is seen: a private file's bounds are its live size.
  ASSERT_EQ(::truncate(path.c_str(), 2 << 20), 0);
  EXPECT_TRUE(runBatch(*a, {Request{Request::READ, mem.data(), seg, (2 << 20) - 10, 10}}).ok());
}

// A local file this process may not write opens read-only: writes are refused at submit.
// As root (CI) every file is writable, so the check runs in a child that drops to nobody.
TEST_P(FileSegments, ReadOnlyLocalFileRefusesWrites) {
  makeFile(path, 1 << 20, 5);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto body = [&]() -> int {
    TransferEngine e(fileConfig(GetParam()));
    std::vector<uint8_t> buf(4096);
    if (!e.available() || !e.registerLocalMemory(buf.data(), buf.size()).ok()) return 2;
    SegmentID seg;
    if (!e.openSegment(seg, "file://" + path).ok()) return 3;
    BatchID bid = e.allocateBatch(1);
    if (!e.submitTransfer(bid, {Request{Request::WRITE, buf.data(), seg, 0, 10}}).IsPermissionDenied()) return 4;
    if (!e.freeBatch(bid).ok()) return 5;
    if (!runBatch(e, {Request{Request::READ, buf.data(), seg, 0, 10}}).ok()) return 6;
    return 0;
  };
  if (::geteuid() != 0) {
    EXPECT_EQ(body(), 0);
    return;
  }
  a.reset();  // no engine threads across fork
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(::setgid(65534) == 0 && ::setuid(65534) == 0 ? body() : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child step " << WEXITSTATUS(status) << " failed";
}

// Another engine exposes files; `a` opens "<b>#<name>".
class ExposedFiles : public FileSegments {
 protected:
  void SetUp() override {
    FileSegments::SetUp();
    if (IsSkipped()) return;
    b = std::make_unique<TransferEngine>(fileConfig(GetParam()));
    ASSERT_TRUE(b->available());
    ASSERT_TRUE(b->exposeFile("kv", path, kGlobalReadWrite, 17 << 20).ok());  // created here
    makeFile(dir.file("weights"), 1 << 20, 6);
    ASSERT_TRUE(b->exposeFile("weights", dir.file("weights"), kGlobalReadOnly).ok());
  }
  std::unique_ptr<TransferEngine> b;
};
INSTANTIATE_TEST_SUITE_P(Backends, ExposedFiles, ::testing::Values("io_uring", "pread"),
                         [](const auto& info) { return info.param; });

TEST_P(ExposedFiles, SameMachinePeerFileGoesOverTheFileTransport) {
  SegmentID seg;
  ASSERT_OK(a->openSegment(seg, b->getSegmentName() + "#kv"));
  EXPECT_EQ(ext::transportName(*a, seg), "file");
  SegmentInfo info;
  ASSERT_TRUE(a->getSegmentInfo(seg, info).ok());
  EXPECT_EQ(info.type, SegmentInfo::File);
  EXPECT_EQ(info.buffers.at(0).length, 17u << 20);
  roundTrips(seg, path, "file");  // pinned: an attach that failed would otherwise fall back to tcp
}

TEST_P(ExposedFiles, PeerFileOverTcpIsServedByItsOwner) {
  SegmentID seg;
  ASSERT_OK(a->openSegment(seg, b->getSegmentName() + "#kv"));
  roundTrips(seg, path, "tcp");
}

TEST_P(ExposedFiles, PermissionsBoundsAndUnexposing) {
  SegmentID kv, weights;
  ASSERT_OK(a->openSegment(kv, b->getSegmentName() + "#kv"));
  ASSERT_OK(a->openSegment(weights, b->getSegmentName() + "#weights"));
  EXPECT_TRUE(a->openSegment(kv, b->getSegmentName() + "#nope").IsNotFound());
  SegmentID whole;  // b's memory segment lists what it exposes
  ASSERT_OK(a->openSegment(whole, b->getSegmentName()));
  std::vector<ext::ExposedFile> listed;
  ASSERT_OK(ext::exposedFiles(*a, whole, listed));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "kv");
  EXPECT_FALSE(listed[0].read_only);
  EXPECT_EQ(listed[1].name, "weights");
  EXPECT_TRUE(listed[1].read_only);
  EXPECT_EQ(listed[1].length, 1u << 20);
  ASSERT_OK(ext::exposedFiles(*a, kv, listed));
  EXPECT_TRUE(listed.empty());
  BatchID bid = a->allocateBatch(1);
  for (const char* hint : {"file", "tcp"}) {
    EXPECT_TRUE(a->submitTransfer(bid, {Request{Request::WRITE, mem.data(), weights, 0, 8, hint}})
                    .IsPermissionDenied()) << hint;
    EXPECT_EQ(a->submitTransfer(bid, {Request{Request::WRITE, mem.data(), kv, (17 << 20) - 4, 8, hint}}).code(),
              Status::Code::kOutOfRange) << hint;
  }
  EXPECT_TRUE(a->freeBatch(bid).ok());
  ASSERT_TRUE(runBatch(*a, {Request{Request::READ, mem.data(), weights, 100, 5000}}).ok());
  EXPECT_EQ(hashHex(mem.data(), 5000), fileHash(dir.file("weights"), 100, 5000));
  // Unexposed: the next request learns it (b's registry version moved) and fails clearly.
  ASSERT_TRUE(b->unexposeFile("kv").ok());
  EXPECT_TRUE(b->unexposeFile("kv").IsNotFound());
  Status st = runBatch(*a, {Request{Request::READ, mem.data(), kv, 0, 8}});
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_TRUE(b->exposeFile("bad", "relative", kGlobalReadWrite).IsInvalidArgument());
  EXPECT_TRUE(b->exposeFile("weights", path, kGlobalReadWrite).IsAlreadyExists());
  EXPECT_TRUE(b->exposeFile("lo", path, kLocalReadWrite).IsInvalidArgument());
}

namespace {
// Descriptors of this process open on `path`.
int openDescriptorsOn(const std::string& path) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code lec;
    if (std::filesystem::read_symlink(e.path(), lec) == path) ++n;
  }
  return n;
}
}  // namespace

// A file the peer stops exposing is closed here too (at the next access to that peer), and
// by the peer itself: no descriptors leak.
TEST_P(ExposedFiles, UnexposedFilesAreClosedOnBothSides) {
  SegmentID kv, weights;
  ASSERT_OK(a->openSegment(kv, b->getSegmentName() + "#kv"));
  ASSERT_OK(a->openSegment(weights, b->getSegmentName() + "#weights"));
  ASSERT_OK(runBatch(*a, {Request{Request::READ, mem.data(), kv, 0, 4096}}));
  ASSERT_OK(runBatch(*a, {Request{Request::READ, mem.data(), weights, 0, 4096}}));
  EXPECT_GE(openDescriptorsOn(path), 2);  // b's and a's
  ASSERT_OK(b->unexposeFile("kv"));
  EXPECT_TRUE(runBatch(*a, {Request{Request::READ, mem.data(), kv, 0, 8}}).IsNotFound());
  ASSERT_OK(runBatch(*a, {Request{Request::READ, mem.data(), weights, 0, 4096}}));
  EXPECT_EQ(openDescriptorsOn(path), 0);
}

// A policy on segment_type sends file segments over tcp; an injected fault on the file
// transport fails slices over to tcp.
TEST_P(ExposedFiles, PolicyAndFailover) {
  auto c = fileConfig(GetParam());
  c->set("selector/policies", R"([{"match": {"segment_type": "file"}, "transports": ["tcp"]}])");
  TransferEngine by_policy(c);
  ASSERT_TRUE(by_policy.available());
  SegmentID seg;
  ASSERT_OK(by_policy.openSegment(seg, b->getSegmentName() + "#kv"));
  std::string table;
  ASSERT_TRUE(ext::describeSelection(by_policy, seg, table).ok());
  auto j = nlohmann::json::parse(table);
  EXPECT_EQ(j["segment_type"], "file");
  EXPECT_EQ(j["default"], nlohmann::json({"file", "tcp"}));
  EXPECT_EQ(j["policies"][0]["order"], nlohmann::json({"tcp"}));

  auto f = fileConfig(GetParam());
  f->set<uint64_t>("transports/file/fault/fail_slice_every", 2);
  a = std::make_unique<TransferEngine>(f);
  ASSERT_TRUE(a->available());
  ASSERT_TRUE(a->registerLocalMemory(mem.data(), mem.size()).ok());
  ASSERT_OK(a->openSegment(seg, b->getSegmentName() + "#kv"));
  roundTrips(seg, path);  // every other slice fails over to tcp
}

// "<segment>#<file>" resolves through every metadata backend, and so does the refresh that
// tells a peer a file is gone.
class FileSegmentsOnBackends : public BackendTest {};
FERRY_INSTANTIATE_ON_ALL_BACKENDS(FileSegmentsOnBackends);

TEST_P(FileSegmentsOnBackends, PeerFileOpensByNameAndItsRemovalIsSeen) {
  TempDir dir;
  auto tc = loopbackConfig();
  if (!p2p()) service->configure(*tc, "target");
  TransferEngine target(tc);
  ASSERT_TRUE(target.available()) << target.initStatus().ToString();
  ASSERT_TRUE(target.exposeFile("kv", dir.file("kv"), kGlobalReadWrite, 1 << 20).ok());
  TransferEngine initiator(engineConfig());
  ASSERT_TRUE(initiator.available()) << initiator.initStatus().ToString();
  std::vector<uint8_t> mem(1 << 20);
  ASSERT_TRUE(initiator.registerLocalMemory(mem.data(), mem.size()).ok());
  SegmentID seg;
  std::string name = (p2p() ? target.getSegmentName() : std::string("target")) + "#kv";
  Status st = initiator.openSegment(seg, name);
  ASSERT_TRUE(st.ok()) << st.ToString();
  fillPattern(mem.data(), 70000, 12);
  for (const char* hint : {"file", "tcp"}) {
    ASSERT_TRUE(runBatch(initiator, {Request{Request::WRITE, mem.data(), seg, 333, 70000, hint}}).ok()) << hint;
    EXPECT_EQ(fileHash(dir.file("kv"), 333, 70000), hashHex(mem.data(), 70000)) << hint;
  }
  ASSERT_TRUE(target.unexposeFile("kv").ok());
  st = runBatch(initiator, {Request{Request::READ, mem.data(), seg, 0, 8}});
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
}

TEST(FileSegmentsConfig, FilesExposedByConfigAreInTheDescriptor) {
  TempDir dir;
  auto c = loopbackConfig();
  c->set("files/expose", R"([{"name": "cache", "path": ")" + dir.file("cache") + R"(", "size": 65536}])");
  TransferEngine e(c);
  ASSERT_TRUE(e.available()) << e.initStatus().ToString();
  auto files = localDescriptor(e).files;
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].name, "cache");
  EXPECT_EQ(files[0].length, 65536u);
  struct stat st;
  ASSERT_EQ(::stat(dir.file("cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 65536);

  auto bad = loopbackConfig();
  bad->set("files/expose", R"([{"name": "x"}])");
  TransferEngine e2(bad);
  EXPECT_FALSE(e2.available());
  EXPECT_NE(e2.initStatus().message().find("files/expose[0]"), std::string::npos) << e2.initStatus().ToString();
  auto bad_backend = loopbackConfig();
  bad_backend->set("transports/file/backend", "aio");
  TransferEngine e3(bad_backend);
  EXPECT_FALSE(e3.available());
}

}  // namespace ferry::test
