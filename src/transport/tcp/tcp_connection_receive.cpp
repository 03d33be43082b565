// The receiving half of a TcpConnection (tcp_connection.h): its receiver thread reads the
// target's answers in order, matches each to the in-flight slices it is for (one, or those of
// a vectored frame), lands read data in place (scattered over the frame's ranges: every piece
// of every slice), checks checksums and verdicts per piece, and completes the slices. The
// sending half is tcp_connection.cpp.
#include <sys/uio.h>

#include "common/checksum.h"
#include "common/endian.h"
#include "common/net.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_wire.h"

namespace ferry {

using wire::FrameHeader;
using namespace tcp_wire;

void TcpConnection::receiverLoop() {
  net::SocketReader reader(fd_, options_.spin_us);
  reader.setLowWaterCap(options_.rcvlowat_bytes);
  uint8_t hb[wire::kHeaderSize];
  Status cause;
  std::string error_text;
  uint64_t epoch = 0;
  // The slices one answer is for: one, or those of a vectored frame (same request id).
  Slice* group[kMaxRanges];
  Status results[kMaxRanges];
  while (true) {
    cause = reader.readExact(hb, sizeof hb);
    if (!cause.ok()) break;
    FrameHeader h;
    cause = wire::decodeHeader(hb, sizeof hb, messages(), h);
    if (!cause.ok()) break;
    size_t count = 0, pieces = 0;  // slices, and their pieces (the frame's ranges)
    uint64_t group_bytes = 0;
    {
      std::lock_guard lock(mu_);
      for (Slice* x : inflight_) {
        if (x->request_id != inflight_.front()->request_id || pieces + rangeCount(*x) > kMaxRanges) break;
        group[count++] = x;
        group_bytes += x->length;
        pieces += rangeCount(*x);
      }
    }
    Slice* s = count ? group[0] : nullptr;
    // A group's slices are all checked or all not (they share a frame); a checked write is
    // answered by WriteAck (WriteSum) or SumVerdicts (WriteSumV).
    const bool summed = s && s->task->checksum;
    const bool expected = s && h.request_id == s->request_id &&
                          (s->op == Request::READ ? h.type == kReadData
                                                  : h.type == kWriteAck || (summed && h.type == kSumVerdicts));
    if (!expected) {
      cause = Status::Corrupted(std::string("unexpected ") + messages().name(h.type) + " #" +
                                std::to_string(h.request_id));
      break;
    }
    if (h.epoch != epoch) {
      epoch = h.epoch;
      if (options_.on_epoch) options_.on_epoch(epoch);
    }
    for (size_t i = 0; i < count; ++i) results[i] = Status::OK();
    if (h.status != 0) {
      error_text.assign(h.body_len, '\0');
      cause = reader.readExact(error_text.data(), error_text.size());
      if (!cause.ok()) break;
      const Status refused = wire::fromWire(h.status, where_ + " refused " +
                                                          (s->op == Request::READ ? "read: " : "write: ") + error_text);
      for (size_t i = 0; i < count; ++i) {
        results[i] = refused;
        // The target found a WriteSum's bytes landed different (it refuses nothing else so).
        if (refused.code() == Status::Code::kCorrupted && group[i]->op == Request::WRITE && group[i]->task->checksum)
          group[i]->checksum_mismatch = true;
      }
    } else if (s->op == Request::READ) {
      if (h.body_len != group_bytes + (summed ? pieces * kSumSize : 0)) {
        cause = Status::Corrupted("read response length disagrees with request");
        break;
      }
      uint8_t sums[kMaxRanges * kSumSize];  // the target's, in front of the data
      if (summed && !(cause = reader.readExact(sums, pieces * kSumSize)).ok()) break;
      bool any_canceled = false;
      for (size_t i = 0; i < count; ++i) any_canceled |= group[i]->task->canceled.load(std::memory_order_acquire);
      if (pieces > 1 && !any_canceled) {  // a vectored frame's ranges: host memory, one scatter receive
        iovec parts[kMaxRanges];
        size_t p = 0;
        for (size_t i = 0; i < count; ++i)
          for (const SliceRange& r : SliceRanges(*group[i])) parts[p++] = {r.local, r.length};
        cause = reader.readExactV(parts, pieces);
      } else {
        for (size_t i = 0; i < count && cause.ok(); ++i) cause = receiveRead(reader, *group[i], results[i]);
      }
      if (!cause.ok()) break;
      size_t p = 0;  // the piece's index in the frame
      for (size_t i = 0; i < count; ++i) {
        Slice& r = *group[i];
        const SliceRanges ranges(r);
        if (!results[i].ok() || r.local_kind != kHostMemory) {  // dropped, or staged to a GPU
          p += ranges.size();
          continue;
        }
        for (size_t k = 0; k < ranges.size(); ++k, ++p) {
          if (flipsIn(r, k)) flipByte(ranges[k].local, ranges[k].length);
          if (summed && results[i].ok())
            results[i] = compareChecksums(r, "initiator", getU64(sums + p * kSumSize),
                                          checksum::xxh3(ranges[k].local, ranges[k].length));
        }
      }
    } else if (h.type == kSumVerdicts) {
      uint8_t verdicts[kMaxRanges];
      if (h.body_len != pieces) {
        cause = Status::Corrupted("checksum verdicts disagree with the frame's ranges");
        break;
      }
      if (!(cause = reader.readExact(verdicts, pieces)).ok()) break;
      for (size_t i = 0, p = 0; i < count; ++i) {
        bool mismatch = false;
        for (size_t k = 0; k < rangeCount(*group[i]); ++k, ++p) mismatch |= verdicts[p] != 0;
        if (mismatch) results[i] = checksumMismatch(*group[i], "target");
      }
    }
    {
      std::unique_lock lock(mu_);
      if (written_ < s->request_id) {  // rare: the answer came back before sendmsg returned
        receiver_waits_ = true;
        cv_.wait(lock, [&] { return written_ >= s->request_id || !sending_; });
        receiver_waits_ = false;
      }
      bool room = false;  // made for held lower-class slices
      for (size_t i = 0; i < count; ++i) {
        inflight_.pop_front();
        if (group[i]->task->priority > 0) {
          lower_inflight_ -= group[i]->length;
          room = true;
        }
      }
      if (room && sender_waits_ && anyQueuedLocked()) cv_.notify_all();
    }
    outstanding_.fetch_sub(group_bytes, std::memory_order_relaxed);
    for (size_t i = 0; i < count; ++i) completeSlice(group[i], results[i]);
  }
  failAll(cause);
}

Status TcpConnection::receiveRead(net::SocketReader& reader, Slice& s, Status& result) {
  if (s.task->canceled.load(std::memory_order_acquire)) {
    // Canceled while its answer was on the way: the bytes are dropped, never landed (a
    // cancel waits for this slice, so once it returns nothing more is written here).
    result = Status::Canceled("task canceled: its read data was dropped on arrival");
    return reader.skip(s.length);
  }
  if (s.local_kind == kCudaMemory) {  // in pieces through host memory, each copied in while the next arrives
    if (!options_.gpu) {
      result = Status::InternalError("tcp: a GPU slice on a connection without the CUDA driver");
      return reader.skip(s.length);
    }
    Status received;  // the socket's verdict: its failure ends the connection
    result = options_.gpu->copyInPieces(s.local, s.length, recv_staging_.reserve(cuda::kPieceStagingBytes),
                                        cuda::kPieceStagingBytes,
                                        [&](uint8_t* piece, size_t len) { return received = reader.readExact(piece, len); });
    return received;
  }
  for (const SliceRange& r : SliceRanges(s))  // straight into registered memory
    FERRY_RETURN_IF_ERROR(reader.readExact(r.local, r.length));
  return Status::OK();
}

}  // namespace ferry
