#include "transport/local_peer.h"

#include <poll.h>
#include <algorithm>
#include <atomic>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "control/handshake.h"
#include "control/rpc_client.h"
#include "transport/transport.h"

namespace ferry {

using wire::FrameHeader;
using wire::MsgType;

namespace {
void closeAll(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

Status mustBe(const SegmentDescriptor& got, const SegmentDescriptor& claimed, const std::string& where) {
  if (got.name != claimed.name || got.instance_id != claimed.instance_id)
    return Status::PermissionDenied(where + " is '" + got.name + "' instance " + got.instance_id + ", not '" +
                                    claimed.name + "' instance " + claimed.instance_id + " as claimed");
  return Status::OK();
}
}  // namespace

void LocalPeer::detach() {
  if (fd_ >= 0) ::close(fd_);
  if (pidfd_ >= 0) ::close(pidfd_);
  fd_ = pidfd_ = -1;
  pid_ = 0;
  proven_.reset();
  beacon_.reset();
}

bool LocalPeer::alive() const {
  if (pidfd_ < 0) return true;  // no pidfd here: the beacon and the channel tell
  pollfd p{pidfd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;  // readable: the process exited
}

Status LocalPeer::call(MsgType type, std::string_view body, std::string* reply, std::vector<int>& fds) {
  if (fd_ < 0) return Status::Unavailable("not attached");
  const uint64_t id = next_id_++;
  Status answer;
  Status st = rpc::sendRequest(fd_, type, id, body);
  if (st.ok()) st = rpc::readResponse(fd_, messages_, type, id, "the local peer", reply, answer, &fds);
  if (!st.ok()) {
    detach();  // the stream is in an unknown state: start over
    return st;
  }
  return answer;
}

Status LocalPeer::describe(const SegmentDescriptor& claimed) {
  std::string text;
  std::vector<int> fds;
  Status st = call(MsgType::kGetDescriptor, {}, &text, fds);
  auto desc = std::make_shared<SegmentDescriptor>();
  if (st.ok()) st = SegmentDescriptor::fromJson(text, *desc);
  if (st.ok()) st = mustBe(*desc, claimed, "the local peer");
  if (st.ok() && !beacon_) {
    auto page = std::make_unique<shm::Mapping>();
    st = fds.size() == 1 ? page->map(fds[0], false) : Status::Corrupted("local peer sent no beacon");
    if (st.ok() && page->size() < sizeof(uint64_t)) st = Status::Corrupted("local peer's beacon is too small");
    if (st.ok()) beacon_ = std::move(page);
  }
  closeAll(fds);
  if (st.ok()) proven_ = std::move(desc);
  return st;
}

Status LocalPeer::connect(const PeerEndpoint& peer) {
  const SegmentDescriptor& claimed = *peer.desc;
  if (!shm::validInstance(claimed.instance_id))
    return Status::InvalidArgument("descriptor has no usable instance id");
  const std::string path = shm::localSocketPath(ctx_.localDir(), claimed.instance_id);
  const int timeout_ms = ctx_.config().get<int>("connect_timeout_ms");
  FERRY_RETURN_IF_ERROR(net::connectUnix(path, timeout_ms, fd_));
  uint32_t uid = 0;
  FERRY_RETURN_IF_ERROR(net::peerCredentials(fd_, pid_, uid));
  if (uid != ::geteuid() && uid != 0)
    return Status::PermissionDenied(path + " is held by uid " + std::to_string(uid) + ", not by this user");
  // Before the first answer: an answer after this proves the pidfd is of the process that
  // holds the socket now (not of a process that reused its pid).
  pidfd_ = net::peerPidfd(fd_);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (const std::string& token = ctx_.authToken(); !token.empty()) {
    handshake::Identity id;
    FERRY_RETURN_IF_ERROR(handshake::client(fd_, token, timeout_ms, path, &id));
    if (id.name != claimed.name || id.instance != claimed.instance_id)
      return Status::PermissionDenied(path + " is '" + id.name + "' instance " + id.instance + ", not as claimed");
  }
  return describe(claimed);
}

Status LocalPeer::attach(const PeerEndpoint& peer) {
  if (!peer.desc) return Status::NotSupported(std::string(transport_) + " needs the peer's descriptor");
  if (fd_ < 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now < retry_at_) return last_failure_;
    Status st = connect(peer);
    if (!st.ok()) {
      if (backoff_.count() == 0)
        FERRY_LOG(INFO) << transport_ << ": cannot attach to '" << peer.desc->name << "' on this machine ("
                        << st.ToString() << "); using other transports";
      detach();
      backoff_ = std::min<std::chrono::milliseconds>(std::max<std::chrono::milliseconds>(2 * backoff_, std::chrono::seconds(1)),
                                                     std::chrono::seconds(60));
      retry_at_ = now + backoff_;
      last_failure_ = Status::NotSupported("segment '" + peer.desc->name + "' is not reachable through " +
                                           transport_ + " here: " + st.message());
      return last_failure_;
    }
    backoff_ = std::chrono::milliseconds(0);
  }
  // Registrations moved on since we read its descriptor: read it again (the peer's word).
  const uint64_t live = liveVersion();
  if (live != shm::kEngineGone && live > proven_->version) {
    Status st = describe(*peer.desc);
    if (!st.ok()) return Status::Unavailable("segment '" + peer.desc->name + "': " + st.message());
  }
  return Status::OK();
}

Status checkLiveVersion(const PeerEndpoint& peer, uint64_t live, bool alive, uint64_t& reported) {
  const SegmentDescriptor& desc = *peer.desc;
  if (live == shm::kEngineGone || !alive) {
    // The instance we hold a descriptor of is gone: whoever answers at its address now is
    // someone else (a restart), to be read afresh.
    reported = kPeerGone;
    return Status::Unavailable("segment '" + desc.name + "' has " + (alive ? "shut down" : "exited"));
  }
  // Registrations changed since the engine read its descriptor: have it refreshed first, so
  // a removed or re-permissioned buffer or file is refused with the engine's own message.
  bool current = live == desc.version || (peer.just_refreshed && desc.version >= peer.refreshed_over);
  if (!current) {
    reported = live;
    return Status::Unavailable("segment '" + desc.name + "' changed (version " + std::to_string(desc.version) +
                               " -> " + std::to_string(live) + ")");
  }
  return Status::OK();
}

uint64_t LocalPeer::liveVersion() const {
  return reinterpret_cast<const std::atomic<uint64_t>*>(beacon_->base())->load(std::memory_order_acquire);
}

Status LocalPeer::checkCurrent(const PeerEndpoint& peer, uint64_t& reported) const {
  return checkLiveVersion(peer, liveVersion(), alive(), reported);
}

Status LocalPeer::attachCurrent(const PeerEndpoint& peer, uint64_t& reported,
                                std::shared_ptr<const SegmentDescriptor>& proven) {
  FERRY_RETURN_IF_ERROR(attach(peer));
  FERRY_RETURN_IF_ERROR(checkCurrent(peer, reported));
  proven = proven_;
  return Status::OK();
}

}  // namespace ferry
