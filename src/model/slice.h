// Batches, tasks and slices: the data model of a transfer, shared by core (which creates
// them) and transports (which move slices). A task is one Request; it is cut into slices
// (the unit a transport moves). Slices report back through completeSlice(); the last slice
// of a task settles its state, and the last task of a batch wakes waiters.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "ferry/types.h"
#include "model/buffer.h"
#include "model/transfer_counters.h"

namespace ferry {

struct Task;
struct Batch;

/// One contiguous piece of a slice's bytes: `length` bytes at our `local` and the peer's
/// `remote`.
struct SliceRange {
  uint8_t* local = nullptr;
  uint64_t remote = 0;
  uint64_t length = 0;
};

/// The most pieces one slice carries (Slice::ranges): a tcp frame still holds several such
/// slices, and a slice of small pages still stops at ~256 of them for cancel and failover.
inline constexpr uint32_t kMaxSliceRanges = 256;

// Who writes what: core (makeSlices) fills task..deadline_ns once; `attempt` is core's
// (the route's candidate index, set before each hand-over); `request_id` and `file_id` are
// scratch for the transport carrying the slice and mean nothing to anyone else, as is
// `resends` (how often the transport re-posted it after losing a path).
struct Slice {
  Task* task = nullptr;
  Request::OpCode op = Request::WRITE;
  uint8_t* local = nullptr;
  uint64_t remote = 0;      // target address (memory segment) or file offset (file segment)
  uint32_t length = 0;
  int64_t deadline_ns = 0;  // steady clock
  uint64_t request_id = 0;  // assigned by the transport carrying it
  uint8_t attempt = 0;      // index of the route candidate carrying it
  uint32_t file_id = 0;     // target file of a file segment (set by transports that need it)
  uint8_t resends = 0;
  // Fault injection (the fault transport's flip_byte_every): the transport carrying the
  // slice changes one byte of it between the sender's checksum and the receiver's check,
  // as a bad link or memory would. Honoured by the transports that check checksums.
  bool flip_byte = false;
  // Set by the transport that found the bytes of a checksummed slice arrived different
  // (checksumMismatch): the slice fails Corrupted, counted, and is not failed over.
  bool checksum_mismatch = false;
  // What the two ends are (core, from the registrations): a transport that may touch GPU
  // memory copies a cuda end through the driver, never with the CPU.
  MemoryKind local_kind = kHostMemory;
  MemoryKind remote_kind = kHostMemory;
  // Stage times (steady ns) while metrics are on: admitSlice stamps when its bytes start
  // moving (mutable: transports hold slices const there); a transport that knows when the
  // bytes left (markSent) stamps that, so the wait for the peer's ack is told apart.
  mutable int64_t admitted_ns = 0;
  int64_t sent_ns = 0;
  // A slice of several pieces (a paged transfer's scattered pages, on a route whose every
  // transport says TransportCaps::multi_range): `ranges` points at its `range_count`
  // (2..kMaxSliceRanges) pieces in its task's table; local and remote are the first one's
  // and `length` the sum of theirs. Null: the slice is the one range local/remote/length.
  // Walk a slice's pieces with SliceRanges, never local/remote/length alone.
  const SliceRange* ranges = nullptr;
  uint32_t range_count = 0;
};

/// How many pieces a slice has: its ranges, or 1.
inline size_t rangeCount(const Slice& s) { return s.ranges ? s.range_count : 1; }

/// A slice's pieces, read the same way whether it has one or several:
/// `for (const SliceRange& r : SliceRanges(slice))`. The fault transport's flip lands in the
/// first (flipsIn).
class SliceRanges {
 public:
  explicit SliceRanges(const Slice& s)
      : many_(s.ranges), count_(rangeCount(s)), one_{s.local, s.remote, s.length} {}
  SliceRanges(const SliceRanges&) = delete;
  SliceRanges& operator=(const SliceRanges&) = delete;
  const SliceRange* begin() const { return many_ ? many_ : &one_; }
  const SliceRange* end() const { return begin() + count_; }
  size_t size() const { return count_; }
  const SliceRange& operator[](size_t i) const { return begin()[i]; }

 private:
  const SliceRange* many_;
  size_t count_;
  SliceRange one_;
};

/// Whether the fault transport's flip (Slice::flip_byte) lands in piece `index` of the slice.
inline bool flipsIn(const Slice& s, size_t index) { return s.flip_byte && index == 0; }

/// Where a task's failed slices may go next (the selector's other candidates). The engine
/// implements it; a slice it takes back completes later through completeSlice() again.
struct SliceRoute {
  virtual ~SliceRoute() = default;
  /// The selector's index of the transport of each candidate (Slice::attempt indexes it):
  /// what completions count bytes under.
  std::vector<uint8_t> transport_index;
  /// True when the failed slice was resubmitted on another transport.
  virtual bool failover(Slice* slice, const Status& why) = 0;
};

/// Runs when every task of a submit call has finished (used for notifications).
struct CompletionGroup {
  std::atomic<size_t> tasks_left{0};
  std::atomic<bool> any_failed{false};
  std::function<void(bool all_ok)> on_done;
};

/// Priority classes (Request::priority, clamped): 0 is served first.
inline constexpr int kPriorityClasses = 3;

struct Task {
  std::atomic<uint8_t> state{INITIAL};
  // Set by cancelTransfer: no slice of it may start any more (admitSlice), and a task that
  // did not complete every slice settles CANCELED.
  std::atomic<bool> canceled{false};
  uint8_t priority = 0;     // the request's class (0..kPriorityClasses-1)
  int64_t start_by_ns = 0;  // the request's deadline (steady clock); 0: none
  bool checksum = false;    // its bytes are checked end to end (Request::checksum or config)
  int64_t submitted_ns = 0;  // steady clock, set only while metrics are on
  uint64_t length = 0;       // bytes of all its slices
  std::atomic<uint8_t> failure{COMPLETED};  // first failure kind seen among slices
  std::atomic<uint64_t> transferred{0};
  std::atomic<uint32_t> slices_left{0};
  Batch* batch = nullptr;
  std::shared_ptr<CompletionGroup> group;
  // Where failed slices may go next; it also keeps the endpoints carrying the task's
  // slices alive until the batch is freed. Null: no failover.
  std::shared_ptr<SliceRoute> route;
  std::unique_ptr<Slice[]> slices;
  uint32_t num_slices = 0;
  // The pieces its multi-range slices point at (Slice::ranges); empty for other tasks.
  std::vector<SliceRange> ranges;
};

struct Batch {
  Batch(BatchID id, size_t capacity)
      : id(id), capacity(capacity), tasks(std::make_unique<Task[]>(capacity)) {}

  const BatchID id;
  const size_t capacity;
  std::unique_ptr<Task[]> tasks;
  std::atomic<size_t> size{0};     // tasks handed out by submitTransfer
  std::atomic<size_t> pending{0};  // tasks not yet settled
  std::atomic<uint64_t> submitted_bytes{0};  // all its requests' lengths (waiters size their spin by it)
  // Guards size reservation, first_error and waiting. Taken after the batch table's lock
  // (docs/locking.md); completers take it last, alone.
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;  // message of the first failed slice, for logs
  bool freed = false;       // set by freeBatch: no submit may add tasks any more
  // WRITE slices given up while their bytes were in flight on a cut connection: they may
  // still land at the target, so a cancel cannot promise they will not (markUnfenced).
  std::atomic<uint32_t> unfenced{0};
  TransferCounters* counters = nullptr;  // the engine's, while metrics are on
  std::atomic<uint64_t>* checksum_mismatches = nullptr;  // the engine's counter (always kept)
};

/// Maps a failed Status onto the task state it implies.
TransferStatusEnum stateFor(const Status& s);

/// Cuts [local, local+length) into slices of at most slice_size bytes.
void makeSlices(Task& task, const Request& req, uint64_t slice_size, int64_t deadline_ns,
                MemoryKind local_kind = kHostMemory, MemoryKind remote_kind = kHostMemory);
/// The same for several ranges moved as one task (a paged transfer's runs), with the
/// opcode, priority, deadline and checksum of `like`. A range longer than slice_size is cut
/// as above. With `multi_range` (the route's every transport carries Slice::ranges), shorter
/// ranges in a row share slices of up to slice_size bytes and kMaxSliceRanges pieces; the task
/// then keeps `ranges` (moved in) for them to point at.
void makeSlices(Task& task, std::vector<SliceRange>&& ranges, const Request& like, uint64_t slice_size,
                int64_t deadline_ns, MemoryKind local_kind, MemoryKind remote_kind, bool multi_range);

/// Whether a transport may still start `slice`: Canceled once its task was canceled,
/// Timeout once its request's deadline passed. A transport asks right before the slice's
/// bytes start moving (sent, posted, copied) and completes it with the error instead.
Status admitSlice(const Slice& slice);
/// A transport saw the slice's bytes (or its read request) leave: what follows is the wait
/// for the peer's answer (a metrics stage). Cheap when metrics are off.
inline void markSent(Slice& slice);
/// A transport gave up on a WRITE slice whose bytes may still land at the target later (a
/// connection cut with them in flight): a cancel of its batch cannot be fenced.
void markUnfenced(const Slice& slice);

/// A checksummed slice's sent and landed checksums compared where `where` saw them: OK when
/// equal; else the slice is marked (not failed over, counted when it completes) and the
/// status to complete it with is returned.
Status compareChecksums(Slice& slice, const char* where, uint64_t sent, uint64_t got);
/// The same when only the verdict came back (the target checked a range of a frame).
Status checksumMismatch(Slice& slice, const char* where);
/// Fault injection: the byte a flip changes, and how.
constexpr uint64_t flipOffset(uint64_t length) { return length / 2; }
inline constexpr uint8_t kFlipMask = 0x20;
/// Changes that byte of [data, data + length) (nothing when it is empty): where a transport
/// flips a piece the fault transport asked for (flipsIn).
inline void flipByte(uint8_t* data, uint64_t length) {
  if (length > 0) data[flipOffset(length)] ^= kFlipMask;
}

/// Records a slice's outcome; settles the task when it is the last one.
void completeSlice(Slice* slice, const Status& status);
/// The same for `count` slices of one task that all succeeded, with one update of the
/// task's counters (a transport that moves many small slices at a time).
void completeSlicesOk(Slice* const* slices, size_t count);
/// Settles a task that never reached a transport.
void failTask(Task& task, const Status& status);

/// Overall status of a batch (see TransferEngine::getTransferStatus).
TransferStatus overallStatus(Batch& b);

inline int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void markSent(Slice& slice) {
  if (slice.admitted_ns) slice.sent_ns = nowNs();
}

}  // namespace ferry
