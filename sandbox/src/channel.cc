#include "faas/sandbox/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

namespace faas::sandbox {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return DeadlineExceededError("deadline passed");
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
    if (n > 0) {
      return OkStatus();  // readable, writable, HUP or ERR: the next read/write tells which
    }
    if (n < 0 && errno != EINTR) {
      return ErrnoError(errno, "poll");
    }
  }
}

Status WriteBytes(int fd, std::string_view data, std::optional<Clock::time_point> deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN && deadline) {
        FAAS_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, *deadline));
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) {
        return UnavailableError("peer closed the channel");
      }
      return ErrnoError(errno, "send");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return OkStatus();
}

// Reads exactly out.size() bytes; returns how many were read before EOF in *got.
Status ReadBytes(int fd, char* out, std::size_t size, std::optional<Clock::time_point> deadline,
                 std::size_t* got) {
  *got = 0;
  while (*got < size) {
    ssize_t n = ::recv(fd, out + *got, size - *got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN && deadline) {
        FAAS_RETURN_IF_ERROR(WaitFor(fd, POLLIN, *deadline));
        continue;
      }
      if (errno == ECONNRESET) {
        return UnavailableError("end of stream");
      }
      return ErrnoError(errno, "recv");
    }
    if (n == 0) {
      return UnavailableError("end of stream");
    }
    *got += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

}  // namespace

Status WaitReadable(int fd, Clock::time_point deadline) { return WaitFor(fd, POLLIN, deadline); }

Status WriteFrame(int fd, std::string_view payload, std::optional<Clock::time_point> deadline) {
  if (payload.size() > UINT32_MAX) {
    return InvalidArgumentError("frame too large");
  }
  auto len = static_cast<uint32_t>(payload.size());
  char header[kFrameHeaderBytes] = {static_cast<char>(len & 0xff),
                                    static_cast<char>((len >> 8) & 0xff),
                                    static_cast<char>((len >> 16) & 0xff),
                                    static_cast<char>((len >> 24) & 0xff)};
  if (payload.size() <= 64u << 10) {
    // Small frames (the common case) go out in one syscall.
    std::string buf;
    buf.reserve(kFrameHeaderBytes + payload.size());
    buf.append(header, kFrameHeaderBytes);
    buf.append(payload);
    return WriteBytes(fd, buf, deadline);
  }
  FAAS_RETURN_IF_ERROR(WriteBytes(fd, std::string_view(header, kFrameHeaderBytes), deadline));
  return WriteBytes(fd, payload, deadline);
}

Result<std::string> ReadFrame(int fd, std::size_t max_bytes,
                              std::optional<Clock::time_point> deadline) {
  unsigned char header[kFrameHeaderBytes];
  std::size_t got = 0;
  Status s = ReadBytes(fd, reinterpret_cast<char*>(header), sizeof header, deadline, &got);
  if (!s.ok()) {
    if (s.code() == StatusCode::kUnavailable && got > 0) {
      return InternalError("protocol violation: stream ended inside a frame header");
    }
    return s;
  }
  uint32_t len = static_cast<uint32_t>(header[0]) | (static_cast<uint32_t>(header[1]) << 8) |
                 (static_cast<uint32_t>(header[2]) << 16) |
                 (static_cast<uint32_t>(header[3]) << 24);
  if (len > max_bytes) {
    return InternalError("protocol violation: frame of " + std::to_string(len) +
                         " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  std::string payload(len, '\0');
  s = ReadBytes(fd, payload.data(), len, deadline, &got);
  if (!s.ok()) {
    if (s.code() == StatusCode::kUnavailable) {
      return InternalError("protocol violation: stream ended inside a frame (" +
                           std::to_string(got) + " of " + std::to_string(len) + " bytes)");
    }
    return s;
  }
  return payload;
}

}  // namespace faas::sandbox
