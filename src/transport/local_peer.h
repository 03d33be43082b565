// What this process knows for certain about a same-machine peer instance — the shared part
// of the shm and file transports' endpoints. A descriptor from a metadata store or a peer's
// RPC answer is a claim: it may name any pid, shared-memory file or path. So nothing in it
// is used to touch memory or open files. Instead:
//   1. connect to the instance's local socket, whose path derives from the instance id
//      (checked to be a plain name) and the same-machine directory we share — never a path
//      from the descriptor;
//   2. the kernel says who holds the other end (SO_PEERCRED: it must be our user or root;
//      a pidfd of that very process for cross-memory attach and liveness);
//   3. with a cluster token, the handshake proves the peer knows it;
//   4. the peer's own descriptor is read through the channel and must name the segment and
//      instance claimed. Its buffers (bounds, permissions, shared files) are what the
//      transports check against; its beacon page comes with it as a read-only descriptor.
// Files (shared-memory files, exposed files) are then asked of the peer by name or id and
// arrive as descriptors it opened, read-only where it offers read-only access.
//
// Used under the owning endpoint's lock (no lock of its own). Calls over the channel block
// at most connect_timeout_ms; a peer that cannot be attached is retried after a backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/shm_file.h"
#include "control/wire.h"
#include "ferry/status.h"
#include "model/peer.h"

namespace ferry {

class TransportContext;

/// Whether peer.desc (the engine's copy of a same-machine peer's descriptor) is current,
/// given the peer's `live` version (its beacon) and whether its process is `alive`. OK when
/// it is; else Unavailable with `reported` set to the live version, or kPeerGone when the
/// peer stopped or exited (the engine refreshes and resubmits). A just-refreshed descriptor
/// passes if it is no older than peer.refreshed_over: under churn equality may never hold,
/// and a lagging store must not hand back a buffer the peer has already removed.
Status checkLiveVersion(const PeerEndpoint& peer, uint64_t live, bool alive, uint64_t& reported);

class LocalPeer {
 public:
  LocalPeer(TransportContext& ctx, const wire::MessageTable& messages, const char* transport)
      : ctx_(ctx), messages_(messages), transport_(transport) {}
  ~LocalPeer() { detach(); }
  LocalPeer(const LocalPeer&) = delete;
  LocalPeer& operator=(const LocalPeer&) = delete;

  /// Attaches to the instance `peer.desc` names (first use, or after the channel broke) and
  /// keeps the peer's own descriptor at least as new as its beacon. NotSupported when it
  /// cannot be reached this way or is not who the descriptor claims (the selector then
  /// moves on, e.g. to tcp); a failed attach is retried after a backoff (1 s .. 60 s).
  Status attach(const PeerEndpoint& peer);
  /// checkLiveVersion with this peer's beacon and process (after attach()).
  Status checkCurrent(const PeerEndpoint& peer, uint64_t& reported) const;
  /// attach() then checkCurrent(); on success `proven` holds the peer's own descriptor (a
  /// reference of the caller's: a channel that breaks later drops LocalPeer's).
  Status attachCurrent(const PeerEndpoint& peer, uint64_t& reported,
                       std::shared_ptr<const SegmentDescriptor>& proven);
  /// The descriptor the peer itself sent (after attach()).
  const std::shared_ptr<const SegmentDescriptor>& proven() const { return proven_; }
  /// The peer's pid as this process sees it; 0 when it is in a pid namespace we cannot see.
  int32_t pid() const { return pid_; }
  /// A request over the channel; `fds` receives descriptors passed with the answer (the
  /// caller owns them, also on error). A broken channel is dropped (attach() reconnects).
  Status call(wire::MsgType type, std::string_view body, std::string* reply, std::vector<int>& fds);

 private:
  Status connect(const PeerEndpoint& peer);
  // Reads the peer's descriptor (and its beacon, the first time) through the channel.
  Status describe(const SegmentDescriptor& claimed);
  bool alive() const;
  // The registry version the peer's beacon holds now (after attach()).
  uint64_t liveVersion() const;
  void detach();

  TransportContext& ctx_;
  const wire::MessageTable& messages_;  // the control messages and the transport's
  const char* transport_;               // for messages
  int fd_ = -1;
  int pidfd_ = -1;
  int32_t pid_ = 0;
  uint64_t next_id_ = 1;
  std::shared_ptr<const SegmentDescriptor> proven_;
  std::unique_ptr<shm::Mapping> beacon_;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  Status last_failure_;
};

}  // namespace ferry
