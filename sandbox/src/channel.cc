#include "faas/sandbox/channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace faas::sandbox {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes (time_point::max(): no deadline).
Status WaitFor(int fd, short events, Clock::time_point deadline) {
  const bool forever = deadline == Clock::time_point::max();
  for (;;) {
    auto left = forever
                    ? -1
                    : std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (!forever && left <= 0) {
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

Status OversizedFrame(uint32_t len, std::size_t max_bytes) {
  return InternalError("protocol violation: frame of " + std::to_string(len) +
                       " bytes exceeds the limit of " + std::to_string(max_bytes));
}

// A message of the one byte in `iov` with `control` for ancillary data (fds, credentials).
msghdr OneByte(iovec* iov, char* control, std::size_t control_len) {
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = control_len;
  return msg;
}

}  // namespace

Status WaitReadable(int fd, Clock::time_point deadline) {
  return WaitFor(fd, POLLIN, deadline);
}

Status WriteFrame(int fd, std::string_view payload, std::optional<Clock::time_point> deadline) {
  if (payload.size() > UINT32_MAX) {
    return InvalidArgumentError("frame too large");
  }
  auto len = static_cast<uint32_t>(payload.size());
  char header[kFrameHeaderBytes] = {
      static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
      static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
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

bool FillFrameHeader(std::string* frame) {
  if (frame->size() < kFrameHeaderBytes || frame->size() - kFrameHeaderBytes > UINT32_MAX) {
    return false;
  }
  auto len = static_cast<uint32_t>(frame->size() - kFrameHeaderBytes);
  for (std::size_t i = 0; i < kFrameHeaderBytes; ++i) {
    (*frame)[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  }
  return true;
}

uint32_t FrameLength(const char* header) {
  uint32_t len = 0;
  for (std::size_t i = 0; i < kFrameHeaderBytes; ++i) {
    len |= static_cast<uint32_t>(static_cast<unsigned char>(header[i])) << (8 * i);
  }
  return len;
}

Result<std::size_t> FrameDecoder::Missing(std::string_view header, std::size_t received) const {
  if (received < kFrameHeaderBytes) {
    return kFrameHeaderBytes - received;
  }
  const uint32_t len = FrameLength(header.data());
  if (len > max_bytes_) {
    return OversizedFrame(len, max_bytes_);
  }
  const std::size_t total = kFrameHeaderBytes + len;
  return total - std::min(received, total);
}

Result<std::size_t> FrameDecoder::Feed(std::string* frame, std::string_view data) const {
  std::size_t taken = 0;
  for (;;) {
    // At most two rounds: the rest of the header, then (its length known) the payload.
    FAAS_ASSIGN_OR_RETURN(std::size_t missing, Missing(*frame));
    const std::size_t n = std::min(missing, data.size() - taken);
    if (n == 0) {
      return taken;
    }
    frame->append(data.substr(taken, n));
    taken += n;
  }
}

Status FrameDecoder::Ended(std::string_view header, std::size_t received) {
  if (received == 0) {
    return UnavailableError("end of stream");
  }
  if (received < kFrameHeaderBytes) {
    return InternalError("protocol violation: stream ended inside a frame header");
  }
  return InternalError("protocol violation: stream ended inside a frame (" +
                       std::to_string(received - kFrameHeaderBytes) + " of " +
                       std::to_string(FrameLength(header.data())) + " bytes)");
}

Status FrameDecoder::Trailing() {
  return InternalError("protocol violation: bytes after the response frame");
}

Result<std::size_t> FrameBytesMissing(std::string_view received, std::size_t max_bytes) {
  const FrameDecoder decoder(max_bytes);
  FAAS_ASSIGN_OR_RETURN(std::size_t missing, decoder.Missing(received));
  if (received.size() >= kFrameHeaderBytes &&
      received.size() > kFrameHeaderBytes + FrameLength(received.data())) {
    return FrameDecoder::Trailing();
  }
  return missing;
}

Status WriteFramed(int fd, std::string* frame, std::optional<Clock::time_point> deadline) {
  if (!FillFrameHeader(frame)) {
    return InvalidArgumentError("frame without a header, or too large");
  }
  return WriteBytes(fd, *frame, deadline);
}

Result<std::string> ReadFrame(int fd, std::size_t max_bytes,
                              std::optional<Clock::time_point> deadline) {
  const FrameDecoder decoder(max_bytes);
  // The header apart, the payload straight into the string returned: no copy, and the payload
  // is sized once, when its length has passed the decoder's check.
  char header[kFrameHeaderBytes];
  std::string payload;
  std::size_t received = 0;
  for (;;) {
    const std::string_view head(header, std::min(received, kFrameHeaderBytes));
    // Exactly what the frame still needs: the header, then the payload. Never more: the next
    // frame stays in the socket.
    FAAS_ASSIGN_OR_RETURN(std::size_t missing, decoder.Missing(head, received));
    if (missing == 0) {
      break;
    }
    char* into = header + received;
    if (received >= kFrameHeaderBytes) {
      if (payload.empty()) {
        payload.resize(missing);
      }
      into = payload.data() + (received - kFrameHeaderBytes);
    }
    // Never blocks in recv: it waits in poll(2). A reader asleep in a unix stream socket's recv
    // is woken, for nothing, every time the peer consumes bytes this side sent (the kernel's
    // write-space wake-up reaches every sleeper on the socket), and poll's sleepers are woken
    // only for the events they asked for. Measured on a warm invocation: one context switch less
    // in the worker, and the daemon's recv no longer pays for waking it.
    const ssize_t n = ::recv(fd, into, missing, MSG_DONTWAIT);
    if (n > 0) {
      received += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      FAAS_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline.value_or(Clock::time_point::max())));
      continue;
    }
    if (n == 0 || errno == ECONNRESET) {
      return FrameDecoder::Ended(head, received);
    }
    return ErrnoError(errno, "recv");
  }
  return payload;
}

Status SendWithFds(int fd, char byte, std::span<const int> fds) {
  constexpr std::size_t kMaxFds = 4;
  if (fds.size() > kMaxFds) {
    return InvalidArgumentError("too many fds for one message");
  }
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  iovec iov{&byte, 1};
  msghdr msg = OneByte(&iov, control, CMSG_SPACE(fds.size() * sizeof(int)));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
  std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  for (;;) {
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n == 1) {
      return OkStatus();
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return UnavailableError("peer closed the channel");
    }
    return ErrnoError(errno, "sendmsg", "SCM_RIGHTS");
  }
}

Result<std::pair<char, std::vector<UniqueFd>>> ReceiveWithFds(int fd, std::size_t want_fds) {
  constexpr std::size_t kMaxFds = 4;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  char byte = 0;
  iovec iov{&byte, 1};
  msghdr msg = OneByte(&iov, control, sizeof control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno == ECONNRESET ? Status(UnavailableError("end of stream"))
                               : ErrnoError(errno, "recvmsg");
  }
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(received);
      }
    }
  }
  if (n == 0) {
    return UnavailableError("end of stream");
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || fds.size() != want_fds) {
    return InternalError("protocol violation: expected " + std::to_string(want_fds) + " fds, got " +
                         std::to_string(fds.size()));
  }
  return std::make_pair(byte, std::move(fds));
}

Result<pid_t> PeekSenderPid(int fd, Clock::time_point deadline) {
  for (;;) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
    char byte = 0;
    iovec iov{&byte, 1};
    msghdr msg = OneByte(&iov, control, sizeof control);
    ssize_t n = ::recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      return UnavailableError("end of stream");
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        FAAS_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline));
        continue;
      }
      return errno == ECONNRESET ? Status(UnavailableError("end of stream"))
                                 : ErrnoError(errno, "recvmsg", "SCM_CREDENTIALS");
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred;
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        if (cred.pid > 0) {
          return cred.pid;
        }
      }
    }
    return InternalError("no sender credentials on the channel (SO_PASSCRED not set?)");
  }
}

}  // namespace faas::sandbox
