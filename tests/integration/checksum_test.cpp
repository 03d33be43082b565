// End-to-end checksums (issue 16): per request or by config, over every transport that can
// check them (tcp, shm, local), in one process and against a ferry-test-peer process. The
// fault transport flips one byte of every third slice in flight: without checksums the
// corruption lands unnoticed (which proves the flip is real), with them exactly the flipped
// slices' tasks fail and are counted.
#include <gtest/gtest.h>

#include <cstring>

#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"
#include "model/slice.h"
#include "peer_process.h"
#include "test_util.h"

namespace ferry::test {
namespace checksum_tests {  // named: unity builds join this file with others

constexpr size_t kMiB = 1 << 20;
constexpr size_t kPiece = 64 << 10;  // one slice on every transport
constexpr size_t kPieces = 32;
constexpr int kFlipEvery = 3;        // slices 3, 6, ... of a run: tasks 2, 5, ... of kPieces
constexpr size_t kFlipped = kPieces / kFlipEvery;

bool flipped(size_t task) { return (task + 1) % kFlipEvery == 0; }

struct ChecksumCase {
  const char* hint;
  Request::OpCode op;
};

std::string caseName(const ::testing::TestParamInfo<ChecksumCase>& info) {
  return std::string(info.param.hint) + (info.param.op == Request::WRITE ? "_write" : "_read");
}

// Runs `reqs` in one batch and returns each task's state.
std::vector<TransferStatusEnum> runTasks(TransferEngine& e, const std::vector<Request>& reqs) {
  BatchID batch = e.allocateBatch(reqs.size());
  Status st = e.submitTransfer(batch, reqs);
  EXPECT_TRUE(st.ok()) << st.ToString();
  TransferStatus overall;
  st = e.waitTransfer(batch, overall, std::chrono::seconds(30));
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<TransferStatus> tasks;
  EXPECT_TRUE(e.getTransferStatus(batch, tasks).ok());
  EXPECT_TRUE(e.freeBatch(batch).ok());
  std::vector<TransferStatusEnum> out;
  for (const auto& t : tasks) out.push_back(t.s);
  return out;
}

// Two engines in this process (local: one engine and its own segment).
class ChecksumTest : public ::testing::TestWithParam<ChecksumCase> {
 protected:
  // flip_every: the initiator's transport flips a byte of every Nth slice; checksum_all:
  // config `checksum` on (every request checked without asking).
  void start(int flip_every, bool checksum_all) {
    auto config = [&] {
      auto c = loopbackConfig();
      if (flip_every) c->set(std::string("transports/") + hint() + "/fault/flip_byte_every", flip_every);
      if (checksum_all) c->set("checksum", true);
      return c;
    };
    a = std::make_unique<TransferEngine>(config());
    ASSERT_TRUE(a->available()) << a->initStatus().ToString();
    local.assign(16 * kMiB, 0);
    remote.assign(16 * kMiB, 0);
    fillPattern(source().data(), source().size(), 7);
    ASSERT_TRUE(a->registerLocalMemory(local.data(), local.size()).ok());
    TransferEngine* owner = a.get();
    if (std::string(hint()) != "local") {
      b = std::make_unique<TransferEngine>(config());
      ASSERT_TRUE(b->available()) << b->initStatus().ToString();
      owner = b.get();
    }
    ASSERT_TRUE(owner->registerLocalMemory(remote.data(), remote.size()).ok());
    Status st = a->openSegment(seg, owner->getSegmentName());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  const char* hint() const { return GetParam().hint; }
  Request::OpCode op() const { return GetParam().op; }
  std::vector<uint8_t>& landing() { return op() == Request::WRITE ? remote : local; }
  std::vector<uint8_t>& source() { return op() == Request::WRITE ? local : remote; }

  Request request(size_t off, size_t len, bool checksum) {
    Request r{op(), local.data() + off, seg, reinterpret_cast<uint64_t>(remote.data()) + off, len, hint()};
    r.checksum = checksum;
    return r;
  }
  std::vector<Request> pieces(bool checksum) {
    std::vector<Request> out;
    for (size_t i = 0; i < kPieces; ++i) out.push_back(request(i * kPiece, kPiece, checksum));
    return out;
  }
  bool pieceIntact(size_t i) {
    return std::memcmp(landing().data() + i * kPiece, source().data() + i * kPiece, kPiece) == 0;
  }

  // With flips on: exactly the flipped pieces fail, each counted once, the rest land intact.
  void expectFlipsCaught(bool ask) {
    const uint64_t before = ext::checksumMismatches(*a);
    auto states = runTasks(*a, pieces(ask));
    ASSERT_EQ(states.size(), kPieces);
    for (size_t i = 0; i < kPieces; ++i) {
      EXPECT_EQ(states[i], flipped(i) ? FAILED : COMPLETED) << "task " << i;
      if (!flipped(i)) {
        EXPECT_TRUE(pieceIntact(i)) << "task " << i;
      }
    }
    EXPECT_EQ(ext::checksumMismatches(*a) - before, kFlipped);
  }

  // Buffers before engines: the engines stop before the memory goes.
  std::vector<uint8_t> local, remote;
  std::unique_ptr<TransferEngine> a, b;
  SegmentID seg = 0;
};

TEST_P(ChecksumTest, CleanTransfersPassTheCheck) {
  start(0, false);
  // Multi-slice requests, one-slice ones (never vectored on tcp), odd sizes and offsets.
  std::vector<Request> reqs = {request(0, 4 * kMiB, true), request(4 * kMiB + 3, 3 * kMiB + 5, true),
                               request(8 * kMiB, 1, true)};
  for (size_t i = 0; i < 16; ++i) reqs.push_back(request(9 * kMiB + i * 4096, 4096, true));
  for (auto s : runTasks(*a, reqs)) EXPECT_EQ(s, COMPLETED);
  for (const Request& r : reqs) {
    const size_t off = static_cast<uint8_t*>(r.source) - local.data();
    EXPECT_EQ(std::memcmp(landing().data() + off, source().data() + off, r.length), 0) << "offset " << off;
  }
  EXPECT_EQ(ext::checksumMismatches(*a), 0u);
}

TEST_P(ChecksumTest, FlippedBytesLandUnnoticedWithoutChecksums) {
  start(kFlipEvery, false);
  auto states = runTasks(*a, pieces(false));
  ASSERT_EQ(states.size(), kPieces);
  for (size_t i = 0; i < kPieces; ++i) {
    EXPECT_EQ(states[i], COMPLETED) << "task " << i;
    // The flipped pieces differ in exactly the flipped byte; the others not at all.
    const size_t at = i * kPiece + flipOffset(kPiece);
    if (flipped(i)) {
      EXPECT_EQ(landing()[at], source()[at] ^ kFlipMask) << "task " << i;
      landing()[at] = source()[at];
    }
    EXPECT_TRUE(pieceIntact(i)) << "task " << i;
  }
  EXPECT_EQ(ext::checksumMismatches(*a), 0u);
}

TEST_P(ChecksumTest, FlippedBytesFailTheirTasksWhenAsked) {
  start(kFlipEvery, false);
  expectFlipsCaught(true);
}

TEST_P(ChecksumTest, ConfigChecksEveryRequest) {
  start(kFlipEvery, true);
  expectFlipsCaught(false);
}

INSTANTIATE_TEST_SUITE_P(Transports, ChecksumTest,
                         ::testing::Values(ChecksumCase{"tcp", Request::WRITE}, ChecksumCase{"tcp", Request::READ},
                                           ChecksumCase{"shm", Request::WRITE}, ChecksumCase{"shm", Request::READ},
                                           ChecksumCase{"local", Request::WRITE},
                                           ChecksumCase{"local", Request::READ}),
                         caseName);

// Against a ferry-test-peer process: what lands there is checked by the peer's own hash.
// `alloc`: the peer's buffers are shared-memory files (shm maps them) or its heap (shm
// reaches it with cross-memory attach).
struct PeerCase {
  const char* hint;
  bool alloc;
};

class PeerChecksum : public ::testing::TestWithParam<PeerCase> {
 protected:
  void start(int flip_every) {
    ASSERT_TRUE(peer.start(0, 16 * kMiB, "", "", GetParam().alloc));
    auto config = loopbackConfig();
    if (flip_every) config->set(std::string("transports/") + GetParam().hint + "/fault/flip_byte_every", flip_every);
    engine = std::make_unique<TransferEngine>(config);
    ASSERT_TRUE(engine->available()) << engine->initStatus().ToString();
    mem.assign(16 * kMiB, 0);
    ASSERT_TRUE(engine->registerLocalMemory(mem.data(), mem.size()).ok());
    Status st = engine->openSegment(seg, peer.segment);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::vector<Request> pieces(Request::OpCode op) {
    std::vector<Request> out;
    for (size_t i = 0; i < kPieces; ++i) {
      Request r{op, mem.data() + i * kPiece, seg, peer.rw + i * kPiece, kPiece, GetParam().hint};
      r.checksum = true;
      out.push_back(r);
    }
    return out;
  }

  PeerProcess peer;
  std::vector<uint8_t> mem;  // before the engine: it stops before its memory goes
  std::unique_ptr<TransferEngine> engine;
  SegmentID seg = 0;
};

TEST_P(PeerChecksum, CheckedWritesAndReadsMoveExactBytes) {
  start(0);
  fillPattern(mem.data(), 8 * kMiB, 11);
  std::vector<Request> reqs = pieces(Request::WRITE);
  Request big{Request::WRITE, mem.data() + 2 * kMiB, seg, peer.rw + 2 * kMiB, 6 * kMiB + 7, GetParam().hint};
  big.checksum = true;
  reqs.push_back(big);
  for (auto s : runTasks(*engine, reqs)) EXPECT_EQ(s, COMPLETED);
  EXPECT_EQ(peer.hash(peer.rw, 8 * kMiB + 7), hashHex(mem.data(), 8 * kMiB + 7));
  // Read it all back into the other half, checked.
  Request back{Request::READ, mem.data() + 8 * kMiB, seg, peer.rw, 8 * kMiB, GetParam().hint};
  back.checksum = true;
  for (auto s : runTasks(*engine, {back})) EXPECT_EQ(s, COMPLETED);
  EXPECT_EQ(std::memcmp(mem.data(), mem.data() + 8 * kMiB, 8 * kMiB), 0);
  EXPECT_EQ(ext::checksumMismatches(*engine), 0u);
}

TEST_P(PeerChecksum, FlippedBytesAreCaughtBothWays) {
  start(kFlipEvery);
  fillPattern(mem.data(), kPieces * kPiece, 12);
  auto states = runTasks(*engine, pieces(Request::WRITE));
  ASSERT_EQ(states.size(), kPieces);
  for (size_t i = 0; i < kPieces; ++i) {
    EXPECT_EQ(states[i], flipped(i) ? FAILED : COMPLETED) << "write " << i;
    // What the peer holds: intact where the task completed, the flipped byte where it failed.
    const std::string want = hashHex(mem.data() + i * kPiece, kPiece);
    EXPECT_EQ(peer.hash(peer.rw + i * kPiece, kPiece) == want, !flipped(i)) << "write " << i;
  }
  EXPECT_EQ(ext::checksumMismatches(*engine), kFlipped);
  states = runTasks(*engine, pieces(Request::READ));
  ASSERT_EQ(states.size(), kPieces);
  // The fault transport counts on: its next flips are at slices kPieces + 3, + 6, ...
  size_t read_flips = 0;
  for (size_t i = 0; i < kPieces; ++i) {
    EXPECT_EQ(states[i], flipped(kPieces + i) ? FAILED : COMPLETED) << "read " << i;
    read_flips += flipped(kPieces + i);
  }
  EXPECT_EQ(ext::checksumMismatches(*engine), kFlipped + read_flips);
}

INSTANTIATE_TEST_SUITE_P(Transports, PeerChecksum,
                         ::testing::Values(PeerCase{"tcp", false}, PeerCase{"shm", true}, PeerCase{"shm", false}),
                         [](const ::testing::TestParamInfo<PeerCase>& info) {
                           return std::string(info.param.hint) + (info.param.alloc ? "_mapped" : "_heap");
                         });

}  // namespace checksum_tests
}  // namespace ferry::test
