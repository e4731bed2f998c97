// The worker channel (docs/architecture.md): length-prefixed frames on a stream socketpair.
//
// A frame is a 4-byte little-endian payload length followed by the payload (one serialized
// faas.v1.WorkerRequest or WorkerResponse). Both sides bound the length before allocating: the
// daemon treats an oversized or truncated frame from a worker as a protocol violation and kills
// that worker; the worker exits on a bad frame from the daemon.
//
//   FAAS_RETURN_IF_ERROR(faas::sandbox::WriteFrame(fd, payload, deadline));
//   FAAS_ASSIGN_OR_RETURN(std::string reply, faas::sandbox::ReadFrame(fd, kMaxFrameBytes,
//   deadline));
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"

namespace faas::sandbox {

// 6 MiB body limit + headers and framing slack. Bigger bodies will travel through a memfd.
inline constexpr std::size_t kMaxFrameBytes = (6u << 20) + (256u << 10);
inline constexpr std::size_t kFrameHeaderBytes = 4;

// Waits until `fd` is readable (or hung up) or the deadline passes (DeadlineExceeded);
// Clock::time_point::max() waits without a deadline.
Status WaitReadable(int fd, Clock::time_point deadline);

// Writes one frame. With a deadline the fd must be non-blocking: waits with poll(2) and returns
// DeadlineExceeded when the peer does not drain the socket in time. Peer gone: Unavailable.
Status WriteFrame(int fd, std::string_view payload,
                  std::optional<Clock::time_point> deadline = std::nullopt);

// Writes a frame built in place, so the payload is not copied again into a frame buffer:
//   std::string frame(kFrameHeaderBytes, '\0');
//   msg.AppendToString(&frame);                     // serialise after the reserved header
//   FAAS_RETURN_IF_ERROR(WriteFramed(fd, &frame, deadline));
// Fills in the header (FillFrameHeader) and writes it all. Same errors as WriteFrame.
Status WriteFramed(int fd, std::string* frame,
                   std::optional<Clock::time_point> deadline = std::nullopt);
// Writes the length of what follows the first kFrameHeaderBytes into them. False when `frame`
// has no room for the header or its payload is over 4 GiB.
bool FillFrameHeader(std::string* frame);
// The payload length a frame header announces (its first kFrameHeaderBytes bytes).
uint32_t FrameLength(const char* header);
// The one decoder of the frame format, for every reader of a channel: ReadFrame (blocking,
// below) and the daemon's non-blocking exchange with a worker (scheduler/src/channel_exchange.cc).
// The frame arrives in pieces into a buffer the reader owns, laid out as on the wire (header,
// then what has arrived of the payload); the decoder says how much is missing, takes what
// belongs to the frame, and names every way a frame can be wrong, with the same words for both
// readers. It holds only the limit: the buffer is the state, so a reader can free it at any time.
//
//   FrameDecoder d(kMaxFrameBytes);
//   std::string frame;
//   FAAS_ASSIGN_OR_RETURN(std::size_t missing, d.Missing(frame));  // 0: complete
//   FAAS_ASSIGN_OR_RETURN(std::size_t taken, d.Feed(&frame, bytes)); // the rest is not its
//   ... on EOF: return d.Ended(frame);
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_bytes = kMaxFrameBytes) : max_bytes_(max_bytes) {}

  // How many bytes are still missing from the frame whose first bytes are `received`: what is
  // left of the header while it is incomplete, then what is left of the payload; 0 when the
  // frame is complete. Internal("protocol violation: frame of N bytes exceeds the limit of M")
  // once the header announces more than the limit. `received` must not run past the frame.
  Result<std::size_t> Missing(std::string_view received) const {
    return Missing(received.substr(0, kFrameHeaderBytes), received.size());
  }
  // The same for a reader that keeps the header apart from the payload (ReadFrame: the payload
  // is what it returns): `header` holds the first bytes of the frame, up to kFrameHeaderBytes,
  // and `received` counts every byte of the frame that has arrived.
  Result<std::size_t> Missing(std::string_view header, std::size_t received) const;
  // Appends to *frame the bytes at the front of `data` that belong to its frame (at most up to
  // its end) and returns how many: the rest belong to whatever follows. Stops at an oversized
  // header with Missing's error (the header is then in *frame).
  Result<std::size_t> Feed(std::string* frame, std::string_view data) const;
  // Why the stream ending after `received` is an error: Unavailable("end of stream") before any
  // byte; Internal("protocol violation: stream ended inside a frame header") or
  // Internal("protocol violation: stream ended inside a frame (N of M bytes)").
  static Status Ended(std::string_view received) {
    return Ended(received.substr(0, kFrameHeaderBytes), received.size());
  }
  static Status Ended(std::string_view header, std::size_t received);
  // Internal("protocol violation: bytes after the response frame"): a reader that expects exactly
  // one frame (the daemon waiting for an answer) got more.
  static Status Trailing();

 private:
  std::size_t max_bytes_;
};

// FrameDecoder::Missing for a reader that expects exactly one frame in `received`: also the
// Trailing() error when bytes follow the frame. Pure function.
Result<std::size_t> FrameBytesMissing(std::string_view received, std::size_t max_bytes);

// Reads one frame of at most `max_bytes` with a FrameDecoder, never a byte past it (the next
// frame stays in the socket). EOF: FrameDecoder::Ended; a length over the limit: its Missing
// error; deadline passed: DeadlineExceeded. With a deadline the fd must be non-blocking.
Result<std::string> ReadFrame(int fd, std::size_t max_bytes,
                              std::optional<Clock::time_point> deadline = std::nullopt);

// Zygote fork requests (docs/design/0003-zygote.md): one byte with fds attached (SCM_RIGHTS), in
// one sendmsg. Blocking.
Status SendWithFds(int fd, char byte, std::span<const int> fds);
// Receives one byte and exactly `want_fds` fds (made O_CLOEXEC). EOF: Unavailable. Any other
// number of fds, or truncated control data: Internal (whatever arrived is closed).
Result<std::pair<char, std::vector<UniqueFd>>> ReceiveWithFds(int fd, std::size_t want_fds);

// The pid, in the caller's pid namespace, of the process that wrote the next unread byte on the
// unix socket `fd`, as the kernel recorded it (SCM_CREDENTIALS: a sender cannot forge it without
// CAP_SYS_ADMIN). Set SO_PASSCRED on `fd` before the peer writes. Waits until readable; does not
// consume the byte. EOF: Unavailable.
Result<pid_t> PeekSenderPid(int fd, Clock::time_point deadline);

}  // namespace faas::sandbox
