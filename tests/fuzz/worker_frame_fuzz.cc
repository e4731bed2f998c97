// Fuzz target for the daemon's decoding of what a worker sends (docs/architecture.md): the
// frame header and its bounds, as read by sandbox::ReadFrame (Invoke, AwaitReady, the zygote)
// and by sandbox::FrameBytesMissing (the event loop's ChannelExchange::Pump; both are
// sandbox::FrameDecoder), then the protobuf parse and checks of a faas.v1.WorkerResponse
// (ParseWorkerResult, ParseWorkerReady).
//
// Input: the bytes a hostile worker writes on its channel before closing it. They go through a
// real socketpair to ReadFrame, frame after frame, and through a model of Pump's reads to
// FrameBytesMissing; the two readers must agree on the first frame. Every payload, and the raw
// input itself, is parsed as a WorkerResponse; what the checks accept must satisfy them, and
// survive a serialise-and-parse round trip unchanged.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"
#include "faas/v1/worker.pb.h"

#include "worker_response.h"

namespace {

using faas::Result;
using faas::Status;
using faas::StatusCode;
using faas::sandbox::kFrameHeaderBytes;
using faas::sandbox::kMaxFrameBytes;

constexpr std::size_t kMaxFrames = 64;
constexpr std::size_t kPumpScratch = 64u << 10;  // Pump's read size while the header is incomplete

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return std::string_view(s).starts_with(prefix);
}

// The daemon's checks on one payload; whatever they accept must hold what they promise.
void CheckPayload(std::string_view payload) {
  // The daemon checks an answer against the invocation it asked about: use the one the payload
  // itself names, so the checks behind the id comparison are reached too.
  faas::v1::WorkerResponse any;
  std::string id = any.ParseFromArray(payload.data(), static_cast<int>(payload.size()))
                       ? any.result().invocation_id()
                       : "";
  faas::v1::WorkerResponse result_msg;
  const bool is_result = faas::scheduler::ParseWorkerResult(payload, id, &result_msg).empty();
  faas::v1::WorkerResponse ready_msg;
  const bool is_ready = faas::scheduler::ParseWorkerReady(payload, &ready_msg);
  Check(!(is_result && is_ready));  // one oneof
  if (is_result) {
    const faas::v1::WorkerResult& r = result_msg.result();
    Check(r.invocation_id() == id);
    Check(r.status() >= 200 && r.status() <= 599);
    Check(static_cast<std::size_t>(r.headers_size()) <= faas::scheduler::kMaxResponseHeaders);
    for (const auto& h : r.headers()) {
      Check(!h.name().empty());
      for (char c : h.name()) {
        Check(!(c >= 'A' && c <= 'Z') && c != ':' && c != ' ' && c != '\r' && c != '\n');
      }
      Check(h.value().find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    }
    std::string again = result_msg.SerializeAsString();
    faas::v1::WorkerResponse reparsed;
    Check(faas::scheduler::ParseWorkerResult(again, id, &reparsed).empty());
    Check(reparsed.SerializeAsString() == again);
    // Any other invocation's caller never gets this answer.
    faas::v1::WorkerResponse other;
    Check(!faas::scheduler::ParseWorkerResult(again, id + "x", &other).empty());
  }
  if (is_ready) {
    Check(ready_msg.has_ready());
    std::string again = ready_msg.SerializeAsString();
    faas::v1::WorkerResponse reparsed;
    Check(faas::scheduler::ParseWorkerReady(again, &reparsed));
    Check(reparsed.SerializeAsString() == again);
  }
}

// Writes `bytes` into a socketpair and closes the writing end; returns the reading end and, in
// *sent, how much the socket took (a non-blocking write: the rest is dropped, never waited for).
faas::UniqueFd Feed(std::string_view bytes, std::string_view* sent) {
  int sv[2];
  Check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  faas::UniqueFd reader(sv[0]);
  faas::UniqueFd writer(sv[1]);
  Check(::fcntl(writer.Get(), F_SETFL, O_NONBLOCK) == 0);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(writer.Get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  *sent = bytes.substr(0, done);
  return reader;
}

// Reads frames from `fd`, which holds exactly `sent`, with ReadFrame until the stream ends or
// breaks; checks each against the bytes. Returns the first frame's payload or why not.
Result<std::string> ReadAll(const faas::UniqueFd& fd, std::string_view sent) {
  std::optional<Result<std::string>> first;
  std::size_t consumed = 0;
  for (std::size_t i = 0; i < kMaxFrames; ++i) {
    Result<std::string> frame = faas::sandbox::ReadFrame(fd.Get(), kMaxFrameBytes);
    if (!first) {
      first = frame;
    }
    if (!frame.ok()) {
      const Status& s = frame.status();
      std::string_view rest = sent.substr(consumed);
      if (s.code() == StatusCode::kUnavailable) {
        Check(rest.empty());  // a clean end only between frames
      } else {
        Check(s.code() == StatusCode::kInternal && StartsWith(s.message(), "protocol violation: "));
        Check(rest.size() < kFrameHeaderBytes ||
              faas::sandbox::FrameLength(rest.data()) > kMaxFrameBytes ||
              rest.size() < kFrameHeaderBytes + faas::sandbox::FrameLength(rest.data()));
      }
      break;
    }
    std::string_view rest = sent.substr(consumed);
    Check(rest.size() >= kFrameHeaderBytes + frame->size());
    Check(faas::sandbox::FrameLength(rest.data()) == frame->size());
    Check(frame->size() <= kMaxFrameBytes);
    Check(rest.substr(kFrameHeaderBytes, frame->size()) == *frame);
    consumed += kFrameHeaderBytes + frame->size();
    CheckPayload(*frame);
  }
  return *first;
}

// ChannelExchange::Pump's reads of one answer, over `stream` ending in EOF: a 64 KiB read while
// the header is incomplete, then exactly the bytes FrameBytesMissing asks for. Returns the whole
// frame, or why not (EOF: Unavailable).
Result<std::string> Pump(std::string_view stream) {
  std::string frame;
  std::size_t pos = 0;
  for (;;) {
    std::size_t want = kPumpScratch;
    if (frame.size() >= kFrameHeaderBytes) {
      Result<std::size_t> missing = faas::sandbox::FrameBytesMissing(frame, kMaxFrameBytes);
      if (!missing.ok()) {
        return missing.status();
      }
      if (*missing == 0) {
        return frame;
      }
      want = *missing;
    } else {
      Result<std::size_t> missing = faas::sandbox::FrameBytesMissing(frame, kMaxFrameBytes);
      Check(missing.ok() && *missing == kFrameHeaderBytes - frame.size());
    }
    std::size_t n = std::min(want, stream.size() - pos);
    if (n == 0) {
      return faas::UnavailableError(frame.empty() ? "end of stream" : "inside a frame");
    }
    frame.append(stream.substr(pos, n));
    pos += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckPayload(input);

  std::string_view sent;
  faas::UniqueFd fd = Feed(input, &sent);
  Result<std::string> by_read = ReadAll(fd, sent);
  Result<std::string> by_pump = Pump(sent);
  // The two readers agree on the first frame.
  if (sent.size() < kFrameHeaderBytes) {
    Check(!by_read.ok() && !by_pump.ok());
    Check(by_pump.status().code() == StatusCode::kUnavailable);
    return 0;
  }
  const uint32_t len = faas::sandbox::FrameLength(sent.data());
  const std::size_t total = kFrameHeaderBytes + len;
  if (len > kMaxFrameBytes) {
    Check(!by_read.ok() && !by_pump.ok());
    Check(by_read.status().message() == by_pump.status().message());
    Check(by_pump.status().code() == StatusCode::kInternal);
  } else if (sent.size() < total) {
    Check(!by_read.ok() && by_read.status().code() == StatusCode::kInternal);
    Check(!by_pump.ok() && by_pump.status().code() == StatusCode::kUnavailable);
  } else if (std::min(kPumpScratch, sent.size()) > total) {
    Check(by_read.ok());
    Check(!by_pump.ok() && by_pump.status().code() == StatusCode::kInternal);
    Check(by_pump.status().message() == "protocol violation: bytes after the response frame");
  } else {
    Check(by_read.ok() && by_pump.ok());
    Check(*by_pump == sent.substr(0, total));
    Check(by_pump->substr(kFrameHeaderBytes) == *by_read);
  }
  return 0;
}
