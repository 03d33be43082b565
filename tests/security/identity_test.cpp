// Attack cases (issue 12), part one: who a peer is. Descriptors are claims — a forged one
// must end in a failed transfer with nothing written anywhere; with a cluster token, nobody
// without it reads, writes or rewrites anything. Every case starts real processes on
// 127.0.0.1.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "../integration/peer_process.h"
#include "attack_helpers.h"
#include "common/http.h"
#include "common/net.h"
#include "common/shm_file.h"

namespace ferry::test {

namespace {
std::shared_ptr<Config> withToken(std::shared_ptr<Config> c, const std::string& token = kToken) {
  c->set("auth/token", token);
  return c;
}

// A transfer from `engine` to a segment described by `forged` must fail.
void expectForgedWriteFails(TransferEngine& engine, const SegmentDescriptor& forged, std::vector<uint8_t>& src,
                            uint64_t target, const std::string& what) {
  SegmentID seg = 0;
  Status st = engine.importRemoteSegment(seg, forgedHandle(forged));
  ASSERT_TRUE(st.ok()) << what << ": " << st.ToString();  // a claim is accepted as a claim
  st = runBatch(engine, {Request{Request::WRITE, src.data(), seg, target, src.size()}}, std::chrono::seconds(10));
  EXPECT_FALSE(st.ok()) << what << ": the forged segment was written";
  ASSERT_TRUE(engine.closeSegment(seg).ok());
}
}  // namespace

// A forged descriptor names a live process's pid, its buffer and (in one variant) even its
// instance id. Before: the victim engine process_vm_writev'd into that process. Now the pid
// is whatever holds the instance's local socket, per the kernel, and that process must say
// it is the segment claimed.
TEST(Attack, ForgedPid) {
  PeerProcess victim;  // heap buffers: only cross-memory attach could reach them
  ASSERT_TRUE(victim.start(0, 1 << 20));
  const std::string before = victim.hash(victim.rw, 1 << 20);
  TransferEngine engine(loopbackConfig(3000));
  ASSERT_TRUE(engine.available());
  std::vector<uint8_t> src(1 << 20);
  fillPattern(src.data(), src.size(), 99);
  ASSERT_TRUE(engine.registerLocalMemory(src.data(), src.size()).ok());

  const SegmentDescriptor real = decodeExported(victim.exported);
  ASSERT_FALSE(real.instance_id.empty());
  SegmentDescriptor forged;
  forged.name = "evil";
  forged.machine_id = real.machine_id;
  forged.instance_id = "0123456789abcdef";
  forged.rpc_host = "127.0.0.1";
  forged.rpc_port = freePort();  // nobody there
  forged.version = 1;
  forged.transports = {"shm", "tcp"};
  forged.attrs["shm"] = R"({"pid":)" + std::to_string(victim.proc.pid()) + "}";
  BufferDesc b;
  b.base = victim.rw;
  b.length = 1 << 20;
  b.perm = kGlobalReadWrite;
  forged.buffers = {b};
  forged.buildIndex();
  expectForgedWriteFails(engine, forged, src, victim.rw, "a made-up instance");
  forged.instance_id = real.instance_id;  // copied from a live engine: its socket answers...
  expectForgedWriteFails(engine, forged, src, victim.rw, "a copied instance");  // ...as someone else
  EXPECT_EQ(victim.hash(victim.rw, 1 << 20), before);  // nothing written anywhere

  // With a token, pointing the claim at the victim's real address does not help either:
  // the victim says (under the MAC) which segment it is.
  PeerProcess guarded;
  guarded.config = R"({"auth": {"token": ")" + kToken + R"("}})";
  ASSERT_TRUE(guarded.start(0, 1 << 20));
  const std::string guarded_before = guarded.hash(guarded.rw, 1 << 20);
  TransferEngine member(withToken(loopbackConfig(3000)));
  ASSERT_TRUE(member.available());
  ASSERT_TRUE(member.registerLocalMemory(src.data(), src.size()).ok());
  SegmentDescriptor redirect = decodeExported(guarded.exported);
  redirect.name = "evil";
  expectForgedWriteFails(member, redirect, src, guarded.rw, "a renamed descriptor of a token holder");
  EXPECT_EQ(guarded.hash(guarded.rw, 1 << 20), guarded_before);
}

// A forged descriptor on this machine exposes "its" file at a path of ours. Before: the
// engine opened the path and wrote the file. Now paths in descriptors are never opened.
TEST(Attack, ForgedFilePath) {
  MetadataService store("http");
  ASSERT_TRUE(store.start().ok());
  TempDir dir;
  const std::string secret = dir.file("secret");
  std::string original(4096, 's');
  std::ofstream(secret) << original;
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);

  SegmentDescriptor forged;
  forged.name = "evil";
  forged.machine_id = net::machineId();  // "on this machine"
  forged.instance_id = "fedcba9876543210";
  forged.rpc_host = "127.0.0.1";
  forged.rpc_port = freePort();
  forged.version = 1;
  forged.transports = {"file", "tcp"};
  forged.files = {FileDesc{1, "kv", secret, 4096, false}};
  ASSERT_TRUE(store.client()->put(segmentKey("default", "evil"), forged.toJson()).ok());

  auto c = loopbackConfig(3000);
  store.configure(*c, "victim");
  TransferEngine engine(c);
  ASSERT_TRUE(engine.available()) << engine.initStatus().ToString();
  std::vector<uint8_t> buf(4096, 'X');
  ASSERT_TRUE(engine.registerLocalMemory(buf.data(), buf.size()).ok());
  SegmentID seg = 0;
  ASSERT_TRUE(engine.openSegment(seg, "evil#kv").ok());
  EXPECT_FALSE(runBatch(engine, {Request{Request::WRITE, buf.data(), seg, 0, buf.size()}}, std::chrono::seconds(10)).ok());
  EXPECT_FALSE(runBatch(engine, {Request{Request::READ, buf.data(), seg, 0, buf.size()}}, std::chrono::seconds(10)).ok());
  EXPECT_TRUE(buf == std::vector<uint8_t>(4096, 'X')) << "the file's bytes came back";
  std::ifstream in(secret);
  std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(now == original) << "the file was written";
}

// A target with a cluster token serves nothing — no descriptor, no data, no write — to a
// client that has not proven it knows the token, on TCP and on its local socket.
TEST(Attack, NoToken) {
  PeerProcess peer;
  peer.child.env = {"FERRY_AUTH_TOKEN=" + kToken};  // the engine picks it up from the environment
  ASSERT_TRUE(peer.start(0, 1 << 20));
  const std::string before = peer.hash(peer.rw, 4096);
  const SegmentDescriptor real = decodeExported(peer.exported);

  auto refused = [&](int fd, wire::MsgType type, std::string_view body) {
    setReceiveTimeout(fd, 3000);
    EXPECT_TRUE(sendFrame(fd, type, body));
    wire::FrameHeader h;
    std::string text;
    EXPECT_TRUE(readFrame(fd, tcpMessages(), h, text));
    EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kPermissionDenied)) << text;
    EXPECT_NE(text.find("cluster token"), std::string::npos) << text;
    EXPECT_TRUE(closedByPeer(fd));
    ::close(fd);
  };
  refused(connectFrom("127.0.0.1", peer.port), wire::MsgType::kGetDescriptor, "");
  refused(connectFrom("127.0.0.1", peer.port), writeRequest(peer.rw, 4096).type, writeRequest(peer.rw, 4096).body);
  refused(connectFrom("127.0.0.1", peer.port), readRequest(peer.rw, 4096).type, readRequest(peer.rw, 4096).body);
  int local = -1;
  ASSERT_TRUE(net::connectUnix(shm::localSocketPath("/dev/shm", real.instance_id), 1000, local).ok());
  refused(local, wire::MsgType::kGetDescriptor, "");
  {  // a wrong proof
    int fd = connectFrom("127.0.0.1", peer.port);
    setReceiveTimeout(fd, 3000);
    ASSERT_TRUE(sendFrame(fd, wire::MsgType::kHello, std::string(32, 'n')));
    wire::FrameHeader h;
    std::string text;
    ASSERT_TRUE(readFrame(fd, tcpMessages(), h, text));
    EXPECT_EQ(h.type, wire::MsgType::kHelloAck);
    refused(fd, wire::MsgType::kAuthProof, std::string(32, 'm'));
  }
  EXPECT_EQ(peer.hash(peer.rw, 4096), before);

  std::vector<uint8_t> mem(1 << 20);
  fillPattern(mem.data(), mem.size(), 5);
  for (const std::string& token : {std::string(), std::string("a different token, long enough")}) {
    TransferEngine outsider(token.empty() ? loopbackConfig(3000) : withToken(loopbackConfig(3000), token));
    ASSERT_TRUE(outsider.available());
    SegmentID seg = 0;
    Status st = outsider.openSegment(seg, peer.segment);
    EXPECT_TRUE(st.IsPermissionDenied()) << (token.empty() ? "no token: " : "wrong token: ") << st.ToString();
  }
  // The cluster's own members move data as before, on every path.
  TransferEngine member(withToken(loopbackConfig(3000)));
  ASSERT_TRUE(member.registerLocalMemory(mem.data(), mem.size()).ok());
  SegmentID seg = 0;
  ASSERT_TRUE(member.openSegment(seg, peer.segment).ok());
  for (const char* hint : {"shm", "tcp"}) {
    fillPattern(mem.data(), mem.size(), hint[0]);
    Status st = runBatch(member, {Request{Request::WRITE, mem.data(), seg, peer.rw, mem.size(), hint}});
    ASSERT_TRUE(st.ok()) << hint << ": " << st.ToString();
    EXPECT_EQ(peer.hash(peer.rw, mem.size()), hashHex(mem.data(), mem.size())) << hint;
  }
  // A member refuses a peer without the token (it would serve anyone: not trusted with data).
  PeerProcess open_peer;
  ASSERT_TRUE(open_peer.start(0, 1 << 20));
  SegmentID open_seg = 0;
  EXPECT_TRUE(member.openSegment(open_seg, open_peer.segment).IsPermissionDenied());
}

// With a token, ferry-metadata refuses reads and writes that are not signed with it, and a
// captured signed request cannot be replayed: an entry cannot be redirected.
TEST(Attack, MetadataOverwriteWithoutToken) {
  ChildProcess server;
  ASSERT_TRUE(server.start({binPath("ferry-metadata"), "--host=127.0.0.1", "--port=0", "--auth_token=" + kToken}));
  std::string line = server.readLine();
  ASSERT_EQ(line.rfind("LISTENING ", 0), 0u) << line;
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(net::parseHostPort(line.substr(10), host, port).ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metadata";

  auto c = withToken(loopbackConfig(3000));
  c->set("metadata/type", "http");
  c->set("metadata/servers", url);
  c->set("local_segment_name", "target");
  TransferEngine target(c);
  ASSERT_TRUE(target.available()) << target.initStatus().ToString();
  std::vector<uint8_t> mem(1 << 20);
  ASSERT_TRUE(target.registerLocalMemory(mem.data(), mem.size()).ok());

  const std::string key = "/metadata?key=" + http::urlEncode(segmentKey("default", "target"));
  auto call = [&](const std::string& method, const std::string& body, const std::string& token) {
    http::Response r;
    EXPECT_TRUE(http::call("127.0.0.1", port, method, key, body, 3000, r, 1 << 20, token).ok());
    return r;
  };
  EXPECT_EQ(call("PUT", "{\"name\":\"target\",\"rpc\":{\"host\":\"10.6.6.6\",\"port\":1}}", "").status, 401);
  EXPECT_EQ(call("PUT", "{}", "not the cluster token at all").status, 403);
  EXPECT_EQ(call("DELETE", "", "").status, 401);
  EXPECT_EQ(call("GET", "", "").status, 401);  // descriptors name pids, addresses and paths
  EXPECT_EQ(call("GET", "", kToken).status, 200);

  // A signed request seen on the wire, sent again: refused.
  int fd = connectFrom("127.0.0.1", port);
  ASSERT_GE(fd, 0);
  std::string replay = "GET " + key + " HTTP/1.1\r\nAuthorization: " + http::signature(kToken, "GET", key, "", time(nullptr)) +
                       "\r\nContent-Length: 0\r\n\r\n";
  for (int i = 0; i < 2; ++i) {
    if (i == 1) fd = connectFrom("127.0.0.1", port);
    setReceiveTimeout(fd, 3000);
    ASSERT_TRUE(net::writeAll(fd, replay.data(), replay.size()).ok());
    char status[13] = {};
    ASSERT_TRUE(net::readAll(fd, status, 12).ok());
    EXPECT_EQ(std::string(status), i == 0 ? "HTTP/1.1 200" : "HTTP/1.1 403");
    ::close(fd);
  }

  // The entry is intact: a member finds the target and writes it.
  auto mc = withToken(loopbackConfig(3000));
  mc->set("metadata/type", "http");
  mc->set("metadata/servers", url);
  TransferEngine member(mc);
  ASSERT_TRUE(member.available()) << member.initStatus().ToString();
  std::vector<uint8_t> src(4096);
  fillPattern(src.data(), src.size(), 12);
  ASSERT_TRUE(member.registerLocalMemory(src.data(), src.size()).ok());
  SegmentID seg = 0;
  ASSERT_TRUE(member.openSegment(seg, "target").ok());
  ASSERT_TRUE(runBatch(member, {Request{Request::WRITE, src.data(), seg, reinterpret_cast<uint64_t>(mem.data()), 4096, "tcp"}}).ok());
  EXPECT_EQ(std::memcmp(mem.data(), src.data(), 4096), 0);
  // An engine without the token can neither publish itself nor read anyone: it does not start.
  auto oc = loopbackConfig(3000);
  oc->set("metadata/type", "http");
  oc->set("metadata/servers", url);
  TransferEngine outsider(oc);
  EXPECT_FALSE(outsider.available());
  EXPECT_TRUE(outsider.initStatus().IsPermissionDenied()) << outsider.initStatus().ToString();
}

// An engine started in another pid namespace (another container sharing /dev/shm) sweeps
// stale files at start. Before: it judged liveness by kill(pid, 0), could not see our pids
// and deleted live engines' files. Now liveness is each instance's lock.
TEST(Attack, PidNamespaceSweep) {
  PeerProcess owner;
  ASSERT_TRUE(owner.start(0, 1 << 20, "", "", /*alloc=*/true));
  const std::string prefix = "ferry." + decodeExported(owner.exported).instance_id + ".";
  auto files = [&] {
    size_t n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
      while (dirent* e = ::readdir(d)) n += std::string(e->d_name).rfind(prefix, 0) == 0;
      ::closedir(d);
    }
    return n;
  };
  const size_t owned = files();
  ASSERT_GE(owned, 4u);  // lock, beacon, socket, buffers

  PeerProcess other;  // pid 1 of its own namespace: none of our pids exist there
  other.prefix = {"unshare", "--pid", "--fork", "--kill-child", "--mount-proc"};
  if (!other.start(0, 1 << 20, "", "", /*alloc=*/true)) {
    if (::geteuid() != 0) GTEST_SKIP() << "creating a pid namespace needs root (unshare --pid)";
    FAIL() << "a peer in a new pid namespace did not start";
  }
  EXPECT_EQ(files(), owned) << "the other namespace's engine removed live files";

  TransferEngine engine(loopbackConfig(3000));
  std::vector<uint8_t> src(1 << 20);
  fillPattern(src.data(), src.size(), 77);
  ASSERT_TRUE(engine.registerLocalMemory(src.data(), src.size()).ok());
  for (PeerProcess* p : {&owner, &other}) {
    SegmentID seg = 0;
    ASSERT_TRUE(engine.openSegment(seg, p->segment).ok());
    Status st = runBatch(engine, {Request{Request::WRITE, src.data(), seg, p->rw, src.size(), "shm"}});
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(p->hash(p->rw, src.size()), hashHex(src.data(), src.size()));
  }
}

}  // namespace ferry::test
