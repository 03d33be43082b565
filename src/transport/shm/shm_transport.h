// Shared-memory transport for peers on the same machine (same machine id). A buffer the
// peer backs with a shared-memory file (allocateLocalMemory does, through allocate()) is
// mapped once and copied to and from directly: read-only buffers are mapped read-only,
// local-only ones never. Other registered memory is reached with cross-memory attach
// (process_vm_readv/writev) where the kernel allows it; when it does not, the slice fails
// with NotSupported and the selector moves it to the next transport (tcp), with one log
// line per peer.
//
// What it publishes (descriptor attrs under "shm"): per buffer {"name", "offset"} of its
// shared-memory file. A peer uses neither that nor anything else of a descriptor from a
// store: it attaches through our local socket (transport/local_peer.h), reads our own
// descriptor there, and asks us for a file by name (kShmOpen); we hand over a descriptor we
// opened ourselves, read-only unless a read-write buffer lies in the file. Cross-memory
// attach goes to the pid the kernel gave for the socket's other end.
//
// Small submits are copied by the submitting thread. Larger ones are queued: copy workers
// (transports/shm/copy_threads) take them a slice at a time, and a thread that waits for
// its batch (progress) copies its own submits' slices. A waiting thread never copies other
// threads' slices: its batch would then end only when theirs do, and on a machine with few
// cores the idle gaps cost a tenth of the copy rate. Workers start only while fewer threads
// copy than the process has CPUs, so they add parallelism without preempting copiers.
//
// Locks: ShmEndpoint::mu_, ShmTransport::mu_ (the queue) and files_->mu are leaves; a
// copy and a completion never run under any of them (docs/locking.md).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/options.h"
#include "common/shm_file.h"
#include "transport/endpoint_cache.h"
#include "transport/transport.h"

namespace ferry {

class ShmEndpoint;

namespace shm_wire {
constexpr wire::MsgType kShmOpen{17};  // body: a shared file's name, as our descriptor lists it -> kShmFile
constexpr wire::MsgType kShmFile{18};  // empty; the file's descriptor rides with it (SCM_RIGHTS)
constexpr uint32_t kMaxNameBytes = 255;
/// The control messages and these: what a shm endpoint's local channel understands.
const wire::MessageTable& messages();
}  // namespace shm_wire

class ShmTransport : public Transport {
 public:
  ShmTransport();
  ~ShmTransport() override;

  static void declareOptions(OptionTable& table);

  const char* name() const override { return "shm"; }
  TransportCaps caps() const override;
  Status start(TransportContext& ctx) override;
  void stop() override;
  bool canReach(const PeerEndpoint& peer) const override;
  uint64_t sliceSize() const override { return slice_size_; }
  Status connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) override;
  Status allocate(size_t size, const Location& location, std::unique_ptr<Allocation>& out) override;
  Status registerMemory(const BufferDesc& buffer, const MemoryOptions& options,
                        std::string& attrs) override;
  Status unregisterMemory(const BufferDesc& buffer) override;
  bool progress(const std::function<bool()>& done) override;
  size_t peerStateCount() const override { return endpoints_.liveCount(); }

 private:
  friend class ShmEndpoint;
  // What a submit's copies need kept alive: the peer's state and the mappings its slices
  // land in. Held by the submit and by each take of its slices: one reference per take of
  // up to kMaxTake slices, not two per slice (counts two cores would bounce between them).
  struct Holds {
    std::shared_ptr<ShmEndpoint> peer;
    std::vector<std::shared_ptr<shm::Mapping>> mappings;
  };
  struct Work {
    Slice* slice = nullptr;
    uint8_t* mapped = nullptr;  // target bytes in a mapping the holds keep, or null: use pid
    int64_t pid = 0;
    bool streamed = false;  // of a submit larger than the cache: copied past it (checkedCopy's `large`)
  };

  // One submit's queued slices, taken in order.
  struct Submission {
    std::thread::id owner;  // the submitting thread: its progress() copies these
    std::vector<Work> work;
    std::shared_ptr<const Holds> holds;
    size_t next = 0;
    std::chrono::steady_clock::time_point queued;
    uint8_t priority = 0;  // the highest class (lowest Task::priority) among its slices
  };
  // Consecutive slices of one submit, taken in one lock round, and what keeps them valid.
  struct Take {
    std::vector<Work> work;
    std::shared_ptr<const Holds> holds;
  };

  // kShmOpen from a local peer: one of our shared files, opened here.
  Status serveOpen(const wire::FrameHeader& h, ServerConnection& conn);
  // Copies small work now, queues the rest (called by ShmEndpoint::submit).
  Status dispatch(std::vector<Work> work, std::shared_ptr<const Holds> holds, uint64_t bytes);
  // Completes as CANCELED the queued work of `peer` (ShmEndpoint::cancel).
  void cancelQueued(const ShmEndpoint* peer);
  // One slice's bytes moved (and checked when asked); the slice is not completed.
  Status move(Work& w, ShmEndpoint& peer);
  // The destination and source of a piece of a mapped work's slice (SliceRanges).
  static std::pair<uint8_t*, const uint8_t*> ends(const Work& w, const SliceRange& piece);
  // The pieces of a mapped, streamed, unchecked slice copied (unfenced), pairs at a time.
  static void copyPiecesStreamed(const Work& w, const SliceRanges& pieces);
  // Whether two works of a take that streams may be copied together: both mapped, of one
  // piece each, unchecked, unflipped, of one length.
  static bool pairable(const Work& a, const Work& b);
  // Copies two pairable works together (streaming::copyPairUnfenced) once both are admitted;
  // false, having copied nothing, when either may not start (move() then says why).
  static bool movePair(Work& a, Work& b);
  // Moves and completes a take's slices, then empties it (releasing its holds). Slices of
  // one task that succeed complete together.
  void copyRun(Take& run);
  // Starts loading the first lines of a piece's source while the one before is copied.
  static void prefetchSource(const Work& w, const SliceRange& piece);
  static void prefetchSource(const Work& w);  // its first piece
  // A take is this many slices at most, and stops once it holds kTakeBytes: one lock round
  // and one completion per take rather than per slice (16 KiB pages: 16 slices a take), while
  // a higher-class submit queued meanwhile waits for at most ~kTakeBytes of copying.
  static constexpr size_t kMaxTake = 32;
  static constexpr uint64_t kTakeBytes = 256 << 10;
  // Queue access; caller holds mu_. Whether `id` is copying its own submits now.
  bool copyingLocked(std::thread::id id) const;
  // Takes the next slices of `owner`'s highest-class queued submit (false when none).
  bool takeOwnLocked(std::thread::id owner, Take& out);
  // Takes slices for a worker: from the oldest submit no one copies, else the oldest.
  bool takeForWorkerLocked(Take& out);
  // Moves the next slices of `it` (a take) to `out`, dropping the submit when they were its last.
  void popLocked(std::list<Submission>::iterator it, Take& out);
  void workerLoop();

  TransportContext* ctx_ = nullptr;
  uint64_t slice_size_ = 1 << 20;
  uint64_t inline_bytes_ = 64 << 10;
  uint64_t copy_piece_ = 256 << 10;  // largest single memcpy (see copyInPieces)
  uint64_t streaming_min_bytes_ = UINT64_MAX;  // same_machine/streaming_copy_bytes
  bool cross_memory_attach_ = true;
  size_t copy_threads_ = 1;

  std::string dir_;     // where our files go (same_machine/dir); "" : allocations stay private
  std::string prefix_;  // "ferry.<instance>."
  EndpointCache<ShmEndpoint> endpoints_;

  // Our allocations (by address), so registerMemory can publish their files, and the
  // files registered buffers lie in, so a peer is given only those (kShmOpen).
  struct SharedFiles {
    std::mutex mu;  // a leaf
    std::map<uintptr_t, std::pair<std::string, size_t>> by_addr;  // allocations: name, size
    struct Offered {
      int buffers = 0;   // registered buffers peers may read in it
      int writable = 0;  // ... and write
    };
    std::map<std::string, Offered> offered;  // by name
  };
  std::shared_ptr<SharedFiles> files_ = std::make_shared<SharedFiles>();

  std::mutex mu_;  // guards the queue and the fields below; a leaf: copies run unlocked
  std::condition_variable cv_;
  std::list<Submission> queue_;
  bool stopping_ = false;
  size_t busy_workers_ = 0;
  // Threads copying their own submits in progress(), and those that left it within
  // caller_hold_: a waiting thread usually comes straight back with its next batch, and a
  // worker that took its CPU meanwhile would preempt it.
  struct Caller {
    std::thread::id id;
    bool copying = false;
    std::chrono::steady_clock::time_point left;
  };
  std::vector<Caller> callers_;
  std::chrono::microseconds caller_hold_{1000};
  size_t max_copiers_ = 1;  // max(copy_threads_, CPUs this process may run on)
  struct Outlook {
    bool may_copy = false;        // work is queued and a CPU is unclaimed: a worker may copy
    bool unattended = false;      // a queued submit's owner is not copying it
    bool overdue = false;         // ... and has not for caller_hold_: a worker must
    bool anyone_copying = false;  // a worker or a caller is copying now
    std::chrono::steady_clock::time_point retry = std::chrono::steady_clock::time_point::max();
  };
  // The queue's state for waking and starting workers; `retry`: when the earliest held CPU
  // is released. Prunes callers_ whose hold ran out. Caller holds mu_.
  Outlook outlookLocked();
  std::vector<std::thread> workers_;
};

}  // namespace ferry
