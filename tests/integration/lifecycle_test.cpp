// Peers that come and go: what this process holds for a peer (mappings of its shared
// memory, open descriptors, transport endpoints) is released when the peer restarts, so
// a long-running engine that sees peers restart does not grow.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <string>

#include "peer_process.h"

namespace ferry::test {

namespace {
// Mappings of other engines' shared-memory files (ours are named after our instance).
size_t peerShmMappings(TransferEngine& engine) {
  std::ifstream maps("/proc/self/maps");
  const std::string own = "/dev/shm/ferry." + localDescriptor(engine).instance_id + ".";
  size_t n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find("/dev/shm/ferry.") != std::string::npos && line.find(own) == std::string::npos) ++n;
  return n;
}

size_t openDescriptors() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}
}  // namespace

// The same peer name (p2p, same port) restarted 50 times, half of them killed without a
// goodbye: every round moves data over shared memory into the new instance (checked by the
// peer's own hash), and the state held here stays what one peer needs.
TEST(Lifecycle, RestartedPeerStateDoesNotGrow) {
  TransferEngine engine(loopbackConfig(5000));
  ASSERT_TRUE(engine.available()) << engine.initStatus().ToString();
  std::vector<uint8_t> src(1 << 20);
  ASSERT_TRUE(engine.registerLocalMemory(src.data(), src.size()).ok());
  uint16_t port = 0;
  SegmentID seg = 0;
  size_t maps_base = 0, fds_base = 0, states_base = 0;
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    PeerProcess peer;
    ASSERT_TRUE(peer.start(port, 4 << 20, "", "", /*alloc=*/true)) << "round " << round;
    port = peer.port;
    if (round == 0) {
      ASSERT_TRUE(engine.openSegment(seg, peer.segment).ok());
    }
    fillPattern(src.data(), src.size(), round);
    Status st = runBatch(engine, {Request{Request::WRITE, src.data(), seg, peer.rw + 4096, src.size()}});
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.ToString();
    ASSERT_EQ(peer.hash(peer.rw + 4096, src.size()), hashHex(src.data(), src.size())) << "round " << round;
    if (round == 0) {
      EXPECT_EQ(ext::transportName(engine, seg), "shm");
    }
    if (round == 2) {  // steady state: one peer's worth
      maps_base = peerShmMappings(engine);
      fds_base = openDescriptors();
      states_base = ext::peerStateCount(engine);
      EXPECT_GT(maps_base, 0u);  // the data really went through mappings
    }
    if (round % 2) {
      peer.proc.signal(SIGKILL);
      peer.proc.wait();
    } else {
      peer.proc.writeLine("quit");
      EXPECT_EQ(peer.proc.wait(), 0) << "round " << round;
    }
  }
  // The last instance is gone too; at most its state may still be held.
  EXPECT_LE(peerShmMappings(engine), maps_base);
  EXPECT_LE(openDescriptors(), fds_base + 2);  // slack: an RPC connection in the pool
  EXPECT_LE(ext::peerStateCount(engine), states_base);
  ASSERT_TRUE(engine.closeSegment(seg).ok());
  EXPECT_EQ(ext::peerStateCount(engine), 0u);  // closing the segment releases the rest
  EXPECT_EQ(peerShmMappings(engine), 0u);
}

}  // namespace ferry::test
