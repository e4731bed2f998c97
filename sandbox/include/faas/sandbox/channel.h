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
// How many bytes are still missing from one frame of which `received` has arrived (a reader
// that expects exactly one frame, such as the daemon's non-blocking Instance::Pump): 0 when it is
// complete; kFrameHeaderBytes - received.size() while the header is incomplete. Errors, both
// Internal("protocol violation: …"): the header announces more than `max_bytes`, or bytes
// follow the frame. Pure function.
Result<std::size_t> FrameBytesMissing(std::string_view received, std::size_t max_bytes);

// Reads one frame of at most `max_bytes`. EOF before the first byte: Unavailable("end of stream");
// EOF inside a frame or a length over the limit: Internal("protocol violation: …");
// deadline passed: DeadlineExceeded. With a deadline the fd must be non-blocking.
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
