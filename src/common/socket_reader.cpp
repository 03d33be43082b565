// net::SocketReader: framed reads with staging, deadlines, low-water-mark receives of large
// payloads and scatter receives (net.h).
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/net.h"
#include "common/net_io.h"

namespace ferry::net {

SocketReader::SocketReader(int fd, int spin_us, size_t capacity)
    : fd_(fd), spin_us_(spin_us), buf_(capacity) {}

ssize_t SocketReader::recvSome(void* dst, size_t n, bool wait_all) {
  if (spin_us_ > 0) {
    // Spin for a bounded time before sleeping in the kernel.
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    while (std::chrono::steady_clock::now() < until) {
      ssize_t r = ::recv(fd_, dst, n, MSG_DONTWAIT);
      if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        if (r > 0 && wait_all && static_cast<size_t>(r) < n) {
          ssize_t more = recvSome(static_cast<uint8_t*>(dst) + r, n - r, true);
          return more <= 0 ? (more == 0 ? r : more) : r + more;
        }
        return r;
      }
    }
  }
  ssize_t r;
  do {
    r = ::recv(fd_, dst, n, wait_all ? MSG_WAITALL : 0);
  } while (r < 0 && errno == EINTR);
  return r;
}

Status SocketReader::check(ssize_t r) {
  if (r == 0) return Status::Unavailable("connection closed by peer");
  if (r < 0) {
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && keepWaiting(deadline_)) return Status::OK();
    if (deadline_ != kNoDeadline && (errno == EAGAIN || errno == EWOULDBLOCK))
      return Status::Timeout("peer did not send the whole frame in time");
    return recvError(errno);
  }
  if (deadline_ != kNoDeadline && Clock::now() >= deadline_)
    return Status::Timeout("peer did not send the whole frame in time");
  return Status::OK();
}

Status SocketReader::fill() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == buf_.size()) {  // compact
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  ssize_t r = recvSome(buf_.data() + end_, buf_.size() - end_, false);
  FERRY_RETURN_IF_ERROR(check(r));
  if (r > 0) end_ += static_cast<size_t>(r);
  return Status::OK();
}

Status SocketReader::readExact(void* dst, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  size_t have = std::min(n, buffered());
  std::memcpy(out, buf_.data() + begin_, have);
  begin_ += have;
  out += have;
  n -= have;
  if (n == 0) return Status::OK();
  if (n >= buf_.size() / 2) {
    // Large payload: straight into its destination, no staging copy.
    if (lowat_cap_ > 0 && n >= kLowWaterMinBytes) {
      iovec whole{out, n};
      return readLowWater(&whole, 1, n);
    }
    while (n > 0) {
      ssize_t r = recvSome(out, n, true);
      FERRY_RETURN_IF_ERROR(check(r));
      if (r <= 0) continue;  // a receive tick before the deadline
      out += r;
      n -= static_cast<size_t>(r);
    }
    return Status::OK();
  }
  while (n > 0) {
    FERRY_RETURN_IF_ERROR(fill());
    size_t take = std::min(n, buffered());
    std::memcpy(out, buf_.data() + begin_, take);
    begin_ += take;
    out += take;
    n -= take;
  }
  return Status::OK();
}

ssize_t SocketReader::waitReadable() {
  if (tick_ms_ == -2) {
    timeval tv{};
    socklen_t len = sizeof tv;
    tick_ms_ = ::getsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec)
                   ? static_cast<int>(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000)
                   : -1;
  }
  pollfd p{fd_, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, tick_ms_);
  } while (r < 0 && errno == EINTR);
  if (r == 0) errno = EAGAIN;  // the receive tick, as a blocking recv would report it
  return r > 0 ? 1 : -1;
}

namespace {
// Moves the front of `iov` (n entries) past `bytes` received.
void advance(iovec*& iov, size_t& n, size_t bytes) {
  while (bytes > 0 && n > 0) {
    size_t step = std::min(bytes, iov->iov_len);
    iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + step;
    iov->iov_len -= step;
    bytes -= step;
    if (iov->iov_len == 0) {
      ++iov;
      --n;
    }
  }
}
}  // namespace

Status SocketReader::readLowWater(iovec* iov, size_t count, size_t n) {
  auto spin_until = Clock::now() + std::chrono::microseconds(spin_us_);
  Status st;
  while (n > 0) {
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = count;
    ssize_t r = ::recvmsg(fd_, &m, MSG_DONTWAIT);
    if (r > 0) {
      advance(iov, count, static_cast<size_t>(r));
      n -= static_cast<size_t>(r);
      if (deadline_ != kNoDeadline && !(st = check(r)).ok()) break;  // a trickle is held to the deadline too
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (spin_us_ > 0 && Clock::now() < spin_until) continue;
      // Wake when half of what is missing (at most `cap`) is there, not for every segment:
      // the reader copies one half while the other arrives, so when the last byte lands
      // only a short tail (under kLowWaterTailBytes) is left to copy. poll honours the mark
      // too, and a closed or failed socket is readable whatever it is.
      int want = static_cast<int>(std::min({n, lowat_cap_, std::max(n / 2, kLowWaterTailBytes)}));
      if (want != lowat_ && ::setsockopt(fd_, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) lowat_ = want;
      r = waitReadable();
      if (r > 0) continue;
    }
    st = check(r);  // EOF, an error, or a tick that passed the deadline
    if (!st.ok()) break;
  }
  // Frames that follow are small: never leave a mark they would wait behind.
  if (lowat_ != 1) {
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    lowat_ = 1;
  }
  return st;
}

Status SocketReader::readExactV(const iovec* parts, size_t count) {
  if (count > kMaxScatterParts)
    return Status::InternalError("readExactV: more than " + std::to_string(kMaxScatterParts) + " parts");
  iovec rest[kMaxScatterParts];
  size_t n = 0, total = 0;
  for (size_t i = 0; i < count; ++i) {
    rest[n] = parts[i];
    total += parts[i].iov_len;
    if (rest[n].iov_len) ++n;
  }
  // What the last receive staged belongs to the first parts.
  iovec* iov = rest;
  size_t have = std::min(total, buffered());
  for (size_t left = have; left > 0;) {
    size_t step = std::min(left, iov->iov_len);
    std::memcpy(iov->iov_base, buf_.data() + begin_, step);
    begin_ += step;
    advance(iov, n, step);
    left -= step;
  }
  total -= have;
  if (total == 0) return Status::OK();
  // One scatter receive (a few, with the low-water mark) instead of one per part.
  if (lowat_cap_ > 0 && total >= kLowWaterMinBytes) return readLowWater(iov, n, total);
  for (size_t i = 0; i < n; ++i) FERRY_RETURN_IF_ERROR(readExact(iov[i].iov_base, iov[i].iov_len));
  return Status::OK();
}

Status SocketReader::readFrameStart(void* dst, size_t n, Clock::time_point idle_until,
                                    std::chrono::milliseconds frame_budget) {
  deadline_ = idle_until;
  while (buffered() == 0) {
    Status st = fill();
    if (st.IsTimeout()) {
      if (idle_until == kNoDeadline) continue;  // idle between frames: a tick, not an error
      return Status::Timeout("no request in time");
    }
    FERRY_RETURN_IF_ERROR(st);
  }
  deadline_ = frame_budget.count() > 0 ? Clock::now() + frame_budget : kNoDeadline;
  return readExact(dst, n);
}

Status SocketReader::skip(size_t n) {
  uint8_t scratch[16384];
  while (n > 0) {
    size_t take = std::min(n, sizeof scratch);
    FERRY_RETURN_IF_ERROR(readExact(scratch, take));
    n -= take;
  }
  return Status::OK();
}

}  // namespace ferry::net
