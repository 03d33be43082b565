// One initiator-side TCP connection of the TCP transport. Requests are written in order
// and the target answers in order, so in-flight slices form a FIFO. Slices wait to be sent
// in one queue per priority class (the higher class goes first). Only the receiver thread
// completes sent slices, and only once no thread is still writing from their memory: a
// slice reported FAILED/TIMEOUT is never touched again. The sending half (queues, frames,
// the sender thread) is in tcp_connection.cpp, the receiving half (answers, read data,
// checksum verdicts) in tcp_connection_receive.cpp.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/cuda_driver.h"
#include "common/net.h"
#include "model/slice.h"
#include "transport/tcp/tcp_socket.h"
#include "ferry/status.h"

namespace ferry {

class TcpConnection {
 public:
  struct Options {
    uint64_t inline_send_bytes = 256 * 1024;
    int64_t transfer_timeout_ms = 30000;
    int spin_us = 0;  // polling mode
    size_t rcvlowat_bytes = 0;  // READ data: net::SocketReader::setLowWaterCap
    std::string source;         // local address to leave from (a rail); "": any
    int liveness_ms = 0;        // net::setLiveness
    tcp_socket::SendBuffers send_buffers;  // tcp_socket::applySendBuffer
    // When the connection is lost (not closed by us: no timeout, cancel or abort; not a
    // protocol violation), its unfinished slices go here instead of failing: the endpoint
    // re-posts them on its other connections. Called from the receiver thread.
    std::function<void(TcpConnection* lost, std::deque<Slice*> orphans, const Status& why)> on_lost;
    // Called from the receiver when the peer's epoch (registry version) changes.
    std::function<void(uint64_t epoch)> on_epoch;
    // The cluster token: the handshake runs before anything is sent, and the server must
    // say it is `expect_name` / `expect_instance` (when given; the descriptor's).
    std::string token;
    std::string expect_name, expect_instance;
    // Slices with a GPU end are staged through host memory by this driver's copies.
    cuda::Gpu* gpu = nullptr;
    // Counts this connection while it exists (the transport's, for /metrics); may be null.
    std::atomic<size_t>* live = nullptr;
  };

  /// Connects (and with a token, authenticates both ways and checks the server is the
  /// expected peer: Unavailable with `other_instance` set when another instance of it
  /// answers, PermissionDenied when another segment does), then starts the sender and
  /// receiver threads.
  static Status open(const std::string& host, uint16_t port, int connect_timeout_ms,
                     const Options& options, std::shared_ptr<TcpConnection>& out,
                     bool* other_instance = nullptr);
  ~TcpConnection();

  /// Queues slices (completing them with the connection's error if it is dead). Sends
  /// inline from the calling thread while the batch is small and nobody else is sending.
  /// `may_send_inline` false: always hand over to the sender thread (callers that must not
  /// block in a send).
  void enqueue(Slice* const* slices, size_t count, bool may_send_inline = true);
  bool dead() const { return dead_.load(std::memory_order_acquire); }
  /// Bytes queued or in flight, for load balancing across the pool.
  uint64_t load() const { return outstanding_.load(std::memory_order_relaxed); }
  /// Kills the connection if its oldest slice is past its deadline.
  void checkDeadline(int64_t now_ns);
  /// Kills the connection; its slices complete with `reason`.
  void abort(const Status& reason);
  /// Joins the threads (not from one of them).
  void join();
  const std::string& where() const { return where_; }
  const std::string& source() const { return options_.source; }

  /// A run of slices queued together, of host memory at both ends and each at most
  /// kMaxVectorSliceBytes (the default slice size), travels as one frame (WriteV/ReadV) of
  /// up to kMaxVectorFrameBytes: one header, one answer, one scatter receive. Small slices
  /// would pay the per-frame costs every few KiB; 1 MiB slices pay them in wake-ups (a target
  /// answering two 1 MiB READs as two frames moved 1 MiB x 4 batches at ~0.7x the rate of
  /// one 2 MiB answer; 4 MiB frames moved 4 MiB x 16 writes at ~0.8x the rate of 16 MiB
  /// ones: docs/architecture.md "TCP frames"). Frames of lower classes stay smaller
  /// (a write of them carries at most 2 MiB), so a latency class waits behind no more.
  static constexpr uint32_t kMaxVectorSliceBytes = 1 << 20;
  static constexpr uint64_t kMaxVectorFrameBytes = 16 << 20;

 private:
  TcpConnection(int fd, std::string where, const Options& options);
  // The token handshake, and that the server is the peer instance we expect.
  static Status verifyPeer(int fd, const std::string& where, int timeout_ms, const Options& options,
                           bool* other_instance);
  void senderLoop();
  void receiverLoop();
  // One READ slice's data off the socket, into place (or dropped: canceled); `result` is the
  // slice's outcome, the return value the connection's (an error ends it).
  Status receiveRead(net::SocketReader& reader, Slice& s, Status& result);
  // Writes queued slices while holding `lock` only between writes. Stops when the queue is
  // empty or the next slice would exceed `budget` bytes.
  void drain(std::unique_lock<std::mutex>& lock, uint64_t budget);
  void failAll(const Status& cause);
  // The drainer's write call for everything up to `request_id` has returned (the receiver
  // may complete those slices now).
  void wroteLocked(uint64_t request_id);
  // Ends the connection: the first reason stays (`by_us`: our decision, a timeout or cancel,
  // so its slices are not re-posted elsewhere); the receiver then fails what is left.
  void shutLocked(const Status& reason, bool by_us);
  static bool vectorizable(const Slice& s);
  struct VectorFrame {
    bool open = false;  // slices may still join it
    Request::OpCode op = Request::WRITE;
    bool summed = false;  // its slices' bytes are checked (WriteSumV/ReadSumV)
    size_t head_iov = 0;  // its header's place in the write's iovecs
    size_t count = 0;
    uint64_t bytes = 0;
    uint64_t request_id = 0;  // shared by its slices
  };
  // The send queues (under mu_): whether any slice waits, and the next one to send.
  bool anyQueuedLocked() const;
  std::deque<Slice*>& nextQueueLocked();
  // The next queued slice is of a lower class and enough of that class is in flight: it
  // waits (an answer makes room), so a higher-class slice queued later waits for little.
  bool lowerClassHeldLocked();
  // A WRITE slice of GPU memory, as a write of its own (the drainer's; `lock` held on entry
  // and exit): its header, then its bytes in pieces staged through send_staging_, each
  // piece's copy out of the GPU overlapping the send of the one before.
  void sendFromGpu(std::unique_lock<std::mutex>& lock, Slice* s);

  const int fd_;
  const std::string where_;
  const Options options_;
  // Guards the queues, sending_, written_, kill_reason_ and next_id_; a leaf under TcpEndpoint::mu_,
  // released while writing and before completing slices (docs/locking.md).
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<std::deque<Slice*>, kPriorityClasses> sendq_;  // by Task::priority
  std::deque<Slice*> inflight_;
  bool sending_ = false;
  struct DrainScratch;
  const std::unique_ptr<DrainScratch> drain_scratch_;  // the drainer's (one at a time: sending_)
  // Request id of the last slice whose write call has returned: the receiver completes a
  // slice only after that (an ack can beat sendmsg's return; the slice's memory must not be
  // handed back while a thread is still in a call reading it).
  uint64_t written_ = 0;
  bool receiver_waits_ = false;
  // Bytes of lower-class (priority > 0) slices sent and not yet answered: the sender thread
  // waits while the next one would pass kMaxLowerClassInFlight, and the receiver wakes it
  // when answers make room (sender_waits_: the sender thread is in its wait).
  uint64_t lower_inflight_ = 0;
  bool sender_waits_ = false;
  Status kill_reason_;  // why the socket was shut (timeout, cancel, a failed send)
  bool closed_by_us_ = false;  // kill_reason_ is our decision (timeout, cancel), not a loss
  uint64_t next_id_ = 1;
  std::atomic<bool> dead_{false};
  std::atomic<uint64_t> outstanding_{0};
  std::thread sender_, receiver_;
  // Host pieces of GPU slices (pinned, cuda::kPieceStagingBytes): one slice at a time each,
  // made on the first such slice.
  cuda::StagingBuffer send_staging_{options_.gpu};  // the drainer's (one at a time: sending_)
  cuda::StagingBuffer recv_staging_{options_.gpu};  // the receiver thread's
};

}  // namespace ferry
