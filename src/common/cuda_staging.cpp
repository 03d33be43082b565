// Host staging for GPU memory: the pieces pipeline between device memory and a byte stream
// (Gpu::copyOutPieces / copyInPieces, what tcp moves GPU bytes with) and StagingBuffer.
// Split from cuda_driver.cpp, which keeps loading the driver and the Gpu's contexts and
// streams; nothing here includes cuda.h (the driver is reached through its table).
#include <algorithm>

#include "common/cuda_driver.h"

namespace ferry::cuda {

namespace {
// How a staging buffer is cut into pieces: up to kMaxPieceSlots slots of at most
// kPieceBytes, so one piece's copy overlaps the stream I/O of another.
struct PieceLayout {
  PieceLayout(size_t n, size_t staging_len)
      : slots(std::clamp<size_t>(staging_len / kPieceBytes, 1, kMaxPieceSlots)),
        piece(std::min(kPieceBytes, staging_len / slots)),
        count(piece ? (n + piece - 1) / piece : 0) {}
  size_t lengthOf(size_t k, size_t n) const { return std::min(piece, n - k * piece); }
  size_t slots, piece, count;
};

}  // namespace

Status Gpu::copyOutPieces(const void* src, size_t n, uint8_t* staging, size_t staging_len,
                          const std::function<Status(const uint8_t*, size_t)>& emit, bool* emitted) {
  *emitted = false;
  const PieceLayout layout(n, staging_len);
  if (n == 0 || layout.piece == 0) return n == 0 ? Status::OK() : Status::InvalidArgument("no staging memory");
  const auto base = reinterpret_cast<uint64_t>(src);
  const PointerInfo info = pointerInfo(base);
  if (!info.device) return Status::InvalidArgument("copyOutPieces: the source is not device memory");
  Status emit_status;
  Status copied = onCopyStream(info.ordinal, [&](CopyStream& cs) -> int {
    const Stream stream = cs.stream;
    if (int r = slotEvents(cs, layout.slots)) return r;
    auto enqueue = [&](size_t k) {
      uint8_t* at = staging + (k % layout.slots) * layout.piece;
      if (int r = api_->copy_async(reinterpret_cast<uint64_t>(at), base + k * layout.piece, layout.lengthOf(k, n), stream))
        return r;
      return api_->event_record(cs.events[k % layout.slots], stream);
    };
    for (size_t k = 0; k < std::min(layout.slots, layout.count); ++k)
      if (int r = enqueue(k)) return r;
    for (size_t k = 0; k < layout.count; ++k) {
      if (int r = api_->event_synchronize(cs.events[k % layout.slots])) return r;
      emit_status = emit(staging + (k % layout.slots) * layout.piece, layout.lengthOf(k, n));
      *emitted = true;
      if (!emit_status.ok()) return 0;
      // The slot is free again: the piece `slots` ahead goes into it while this one travels.
      if (k + layout.slots < layout.count)
        if (int r = enqueue(k + layout.slots)) return r;
    }
    return 0;
  }, "copying GPU memory out");
  return copied.ok() ? emit_status : copied;
}

Status Gpu::copyInPieces(void* dst, size_t n, uint8_t* staging, size_t staging_len,
                         const std::function<Status(uint8_t*, size_t)>& fill) {
  const PieceLayout layout(n, staging_len);
  if (n == 0) return Status::OK();
  if (layout.piece == 0) return Status::InvalidArgument("copyInPieces: no staging memory");
  const auto base = reinterpret_cast<uint64_t>(dst);
  const PointerInfo info = pointerInfo(base);
  Status fill_status;
  size_t filled = 0;  // bytes taken off the stream
  Status copied = Status::InvalidArgument("copyInPieces: the destination is not device memory");
  if (info.device) {
    copied = onCopyStream(info.ordinal, [&](CopyStream& cs) -> int {
      const Stream stream = cs.stream;
      int failed = slotEvents(cs, layout.slots);
      // Once something failed nothing more is copied, but copies queued before may still be
      // reading their slots: wait for them all before a slot is refilled.
      bool quiet = false;
      auto settle = [&] {
        if (failed && !quiet) {
          api_->stream_synchronize(stream);
          quiet = true;
        }
      };
      settle();
      for (size_t k = 0; k < layout.count; ++k) {
        uint8_t* at = staging + (k % layout.slots) * layout.piece;
        // The slot's previous piece must be in device memory before the stream refills it.
        if (k >= layout.slots && !failed) failed = api_->event_synchronize(cs.events[k % layout.slots]);
        settle();
        fill_status = fill(at, layout.lengthOf(k, n));
        if (!fill_status.ok()) return 0;
        filled += layout.lengthOf(k, n);
        if (!failed) failed = api_->copy_async(base + k * layout.piece, reinterpret_cast<uint64_t>(at), layout.lengthOf(k, n), stream);
        if (!failed) failed = api_->event_record(cs.events[k % layout.slots], stream);
        settle();
      }
      return failed;
    }, "copying into GPU memory");
  }
  // Whatever stopped the copies (or kept them from starting), the payload is read to its end:
  // the stream stays framed. No copy is running into the staging memory any more.
  while (fill_status.ok() && filled < n) {
    const size_t len = std::min(layout.piece, n - filled);
    fill_status = fill(staging, len);
    filled += len;
  }
  return fill_status.ok() ? copied : fill_status;
}

uint8_t* StagingBuffer::reserve(size_t n) {
  if (n > bytes_.size()) {
    release();
    bytes_.resize(n);
  }
  if (!pinned_ && gpu_) pinned_ = gpu_->pin(bytes_.data(), bytes_.size()).ok();
  return bytes_.data();
}

void StagingBuffer::release() {
  if (pinned_) gpu_->unpin(bytes_.data());
  pinned_ = false;
}

}  // namespace ferry::cuda
