// The exchange on an instance's channel (channel_exchange.h): the request frame, the
// non-blocking write and read of one invocation, and its answer or failure as an InvokeResult.
#include "channel_exchange.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <memory>

#include <google/protobuf/arena.h>

#include "faas/base/scope_exit.h"
#include "faas/base/text.h"
#include "faas/sandbox/channel.h"
#include "faas/v1/worker.pb.h"

#include "worker_response.h"

namespace faas::scheduler {

Status ChannelExchange::CheckIdleChannel() const {
  if (Unread()) {
    return InternalError(
        "protocol violation: the worker wrote to its channel while idle (nobody asked)");
  }
  return OkStatus();  // empty (EAGAIN), or closed: writing the request finds that out
}

bool ChannelExchange::Unread() const {
  char byte = 0;
  ssize_t n = 0;
  do {
    n = ::recv(p_->ChannelFd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

void ChannelExchange::Prepare(InvokeRequest& req, Exchange* x, bool keep_body) {
  const store::FunctionConfig& cfg = p_->Spec().config;
  // One message per thread, cleared and refilled: Clear keeps its strings' capacity and its
  // cleared headers for reuse, so a warm request's message allocates nothing once the thread
  // has built a request as large (a new message per call cost ~15 allocations, design 0015).
  // It holds no body between calls (released below); its headers are bounded by the request
  // header limit.
  thread_local v1::WorkerRequest wr;
  wr.Clear();
  wr.set_invocation_id(req.invocation_id);
  x->invocation_id = req.invocation_id;
  wr.set_method(req.method);
  wr.set_path(req.path);
  wr.set_query(req.query);
  for (const auto& [name, value] : req.headers) {
    auto* h = wr.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  wr.set_body(std::move(req.body));
  wr.set_trigger(req.trigger);
  wr.set_queue(req.queue);
  wr.set_message_id(req.message_id);
  wr.set_attempt(req.attempt == 0 ? 1 : req.attempt);
  wr.set_want_log_end(want_log_end_);
  wr.set_deadline_unix_ms(UnixMillisNow() + cfg.timeout.count());
  x->frame.assign(sandbox::kFrameHeaderBytes, '\0');
  wr.AppendToString(&x->frame);  // after the header: sent as is
  if (keep_body) {
    req.body = std::move(*wr.mutable_body());  // back to the call, for a run elsewhere
  }
  std::string().swap(*wr.mutable_body());  // the body is the call's: not kept by the thread
  sandbox::FillFrameHeader(&x->frame);
  x->done = 0;
  x->writing = true;
  x->check_idle = true;
  x->readable = false;
  x->pipelined = false;  // until a call is queued behind it (which may be before it starts)
  x->spill_to = nullptr;
}

Status ChannelExchange::Start(Exchange* x, bool behind) {
  const store::FunctionConfig& cfg = p_->Spec().config;
  if (!behind) {
    p_->ClearLogs();
    log_from_ = 0;
  }
  // CPU since the instance was ready or the last invocation ended is background use. A cold
  // start's first invocation is charged from the moment it was ready, like a warm one: what
  // came before is the platform's start-up or the function's init (billed on its own row).
  // Right after an invocation, the reading that ended it starts this one (kCpuReadReuse).
  // Peak memory is not reset: on cgroup v1 as on v2 it is the instance's peak so far.
  const Clock::time_point now = Clock::now();
  const bool reuse =
      cpu_last_at_ != Clock::time_point{} && (behind || now - cpu_last_at_ < kCpuReadReuse);
  x->cpu_now = reuse ? cpu_last_ : p_->Cpu();
  cpu_last_at_ = Clock::time_point{};  // one use: a failed invocation leaves no reading behind
  x->cpu_before = x->cpu_now;
  p_->Account().InvocationStarts(x->cpu_now);
  x->t0 = now;
  x->deadline = x->t0 + cfg.timeout;
  x->cpu_limit = store::EffectiveCpuLimit(cfg);
  x->cpu_exceeded = false;
  if (!behind) {
    return OkStatus();
  }
  x->check_idle = false;  // what is on the channel is its answer: its request was written
  x->readable = true;     // an edge for it may have come while the one ahead was current
  if (x->early.empty()) {
    return OkStatus();
  }
  if (x->writing) {  // answered before its request was written: nobody asked
    return InternalError("protocol violation: an answer came before its request was written");
  }
  const sandbox::FrameDecoder decoder(sandbox::kMaxFrameBytes);
  Result<std::size_t> taken = decoder.Feed(&x->frame, x->early);
  if (!taken.ok()) {
    x->early = std::string();
    return taken.status();
  }
  if (*taken < x->early.size()) {
    // Past its answer: the start of the answers behind it (depth > 1), passed down the line.
    if (x->spill_to == nullptr) {
      x->early = std::string();
      return sandbox::FrameDecoder::Trailing();
    }
    x->spill_to->append(std::string_view(x->early).substr(*taken));
  }
  x->early = std::string();
  return OkStatus();
}

void ChannelExchange::WriteAhead(Exchange* x) {
  x->check_idle = false;
  while (x->done < x->frame.size()) {
    const ssize_t n = ::send(p_->ChannelFd(), x->frame.data() + x->done, x->frame.size() - x->done,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      x->done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // full, or the worker is gone: the rest when it starts, or the failure ahead
    }
  }
  x->writing = false;
  x->frame.clear();
  x->done = 0;
}

Clock::time_point ChannelExchange::NextCheck(Exchange* x, bool first, Status* expired) {
  // The CPU budget is checked whenever it could have run out: the cgroup's CPU quota (one CPU)
  // means CPU time never grows faster than wall time. The first check needs no read: the
  // invocation has only just started.
  auto used = first ? x->cpu_now - x->cpu_before : p_->Cpu() - x->cpu_before;
  if (used >= x->cpu_limit) {
    x->cpu_exceeded = true;
    *expired = DeadlineExceededError("cpu limit");
    return x->deadline;
  }
  if (Clock::now() >= x->deadline) {
    *expired = DeadlineExceededError("deadline");
    return x->deadline;
  }
  *expired = OkStatus();
  auto slice =
      std::max<std::chrono::nanoseconds>(x->cpu_limit - used, std::chrono::milliseconds(1));
  return std::min(x->deadline, Clock::now() + slice);
}

Pumped ChannelExchange::Pump(Exchange* x, Result<std::string>* answer) {
  const int fd = p_->ChannelFd();
  if (x->writing) {
    if (x->done == 0 && x->check_idle) {
      if (Status idle = CheckIdleChannel(); !idle.ok()) {
        *answer = std::move(idle);
        return Pumped::kFailed;
      }
    }
    while (x->done < x->frame.size()) {
      const ssize_t n = ::send(fd, x->frame.data() + x->done, x->frame.size() - x->done,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        x->done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return Pumped::kWaiting;
      }
      *answer = UnavailableError("end of stream");  // the worker is gone: read why (Finish)
      return Pumped::kFailed;
    }
    x->writing = false;
    x->frame.clear();
    x->done = 0;
    // The worker has not answered a request it got this instant: wait for the channel to be
    // readable rather than spend a recv finding nothing (unless an edge said it already is).
    if (!x->readable) {
      return Pumped::kWaiting;
    }
  }
  // The answer: the header, then the payload; usually one recv takes both. The worker answers
  // one frame per request and never more.
  const sandbox::FrameDecoder decoder(sandbox::kMaxFrameBytes);
  for (;;) {
    Result<std::size_t> missing = decoder.Missing(x->frame);
    if (!missing.ok()) {
      *answer = missing.status();
      return Pumped::kFailed;
    }
    const std::size_t have = x->frame.size();
    ssize_t n = 0;
    if (have < sandbox::kFrameHeaderBytes) {
      // The length is not known yet: read into a scratch buffer (no zero-filled allocation).
      // Allocated on first use: a thread_local array would be zeroed in every thread's TLS.
      constexpr std::size_t kScratch = 64u << 10;
      thread_local std::unique_ptr<char[]> scratch;
      if (scratch == nullptr) {
        scratch = std::make_unique_for_overwrite<char[]>(kScratch);
      }
      n = ::recv(fd, scratch.get(), kScratch, MSG_DONTWAIT);
      if (n > 0) {
        const std::string_view got(scratch.get(), static_cast<std::size_t>(n));
        Result<std::size_t> taken = decoder.Feed(&x->frame, got);
        if (!taken.ok()) {
          *answer = taken.status();
          return Pumped::kFailed;
        }
        if (*taken < got.size()) {
          // Past its answer: the start of the pipelined answer behind it, else a violation.
          if (x->spill_to == nullptr) {
            *answer = sandbox::FrameDecoder::Trailing();
            return Pumped::kFailed;
          }
          x->spill_to->append(got.substr(*taken));
        }
      }
    } else {
      if (*missing == 0) {
        *answer = std::move(x->frame);  // with its header: Settle skips it (no copy)
        x->frame.clear();
        return Pumped::kAnswered;
      }
      // Beyond its first kOwnAnswerBytes an answer needs its whole size from the daemon's
      // budget; the buffer then grows with what arrives (at most doubling), so a worker that
      // announces 6 MiB and stalls costs what it sent, not what it announced.
      x->answer_bytes = have + *missing;
      if (x->answer_bytes > kOwnAnswerBytes && x->budget_bytes < x->answer_bytes) {
        return Pumped::kNeedsBudget;
      }
      const std::size_t want = std::min(*missing, std::max<std::size_t>(have, 64u << 10));
      x->frame.resize(have + want);
      n = ::recv(fd, x->frame.data() + have, want, MSG_DONTWAIT);
      x->frame.resize(have + (n > 0 ? static_cast<std::size_t>(n) : 0));
    }
    if (n > 0) {
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      x->readable = false;  // the next edge says when there is more
      return Pumped::kWaiting;
    }
    // ECONNRESET: the worker's end closed with requests still unread on it (pipelining): an
    // end of stream like any other.
    *answer = n == 0 || errno == ECONNRESET ? sandbox::FrameDecoder::Ended(x->frame)
                                            : ErrnoError(errno, "recv");
    return Pumped::kFailed;
  }
}

void ChannelExchange::Invoke(InvokeRequest& req, std::size_t log_capture_bytes,
                             AnswerBudget& budget, InvokeResult* out) {
  // The loop's steps (Pump), with poll(2) for the loop: one way to read an answer.
  Exchange x;
  Begin(req, &x);
  Result<std::string> answer = InternalError("no answer");
  Status expired;
  Clock::time_point until = NextCheck(&x, /*first=*/true, &expired);
  for (;;) {
    const Pumped p = Pump(&x, &answer);
    if (p == Pumped::kAnswered || p == Pumped::kFailed) {
      break;
    }
    // The CPU budget is checked whenever it could have run out, and at the deadline.
    if (Clock::now() >= until) {
      until = NextCheck(&x, /*first=*/false, &expired);
      if (!expired.ok()) {
        answer = expired;
        break;
      }
    }
    if (p == Pumped::kNeedsBudget) {
      if (budget.TakeUntil(x.answer_bytes - x.budget_bytes, until)) {
        x.budget_bytes = x.answer_bytes;
      }
      continue;
    }
    pollfd pfd{p_->ChannelFd(), static_cast<short>(x.WantsWrite() ? POLLOUT : POLLIN), 0};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    if (::poll(&pfd, 1, static_cast<int>(std::clamp<int64_t>(ms, 0, 1'000'000))) < 0 &&
        errno != EINTR) {
      answer = ErrnoError(errno, "poll");
      break;
    }
  }
  if (answer.ok()) {
    Status violation = Settle(x, *answer, log_capture_bytes, out, sandbox::kFrameHeaderBytes);
    answer = std::string();  // the answer buffer is freed before its budget is given back
    budget.Give(x.budget_bytes);
    if (!violation.ok()) {
      Finish(x, std::move(violation), log_capture_bytes, out);
    }
    return;
  }
  x.frame = std::string();
  budget.Give(x.budget_bytes);
  Finish(x, std::move(answer), log_capture_bytes, out);
}

Status ChannelExchange::Settle(const Exchange& x, std::string_view frame,
                               std::size_t log_capture_bytes, InvokeResult* out, std::size_t skip) {
  const Clock::time_point now = Clock::now();
  out->timings.exec = now - x.t0;
  const std::chrono::nanoseconds cpu = p_->Cpu();
  out->cpu = cpu - x.cpu_before;
  p_->Account().InvocationEnded(cpu);
  if (p_->Cgroup() != nullptr) {
    out->peak_memory_bytes = p_->Cgroup()->PeakMemory();
  }

  // Parsed on an arena whose first block is on this stack: the message, its result and its
  // headers take no allocation of their own (4-5 per warm answer before; their strings longer
  // than the small-string buffer still do).
  alignas(16) char arena_block[2048];
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block;
  arena_options.initial_block_size = sizeof arena_block;
  google::protobuf::Arena arena(arena_options);
  v1::WorkerResponse& msg = *google::protobuf::Arena::CreateMessage<v1::WorkerResponse>(&arena);
  std::string violation = frame.size() < skip
                              ? "protocol violation: malformed response frame"
                              : ParseWorkerResult(frame.substr(skip), x.invocation_id, &msg);
  // Its logs: from where the last one's ended to the end of the file; with a request pipelined
  // behind it (whose logs may follow already), to where the worker says its own ended, clamped
  // to the file. A lie mislabels this function's own logs only.
  const uint64_t until = violation.empty() && x.pipelined && msg.result().has_log_end()
                             ? msg.result().log_end()
                             : UINT64_MAX;
  out->logs = p_->ReadLogs(log_capture_bytes, log_from_, until, &log_from_);
  if (!violation.empty()) {
    return InternalError(std::move(violation));
  }
  // An acceptable answer: the instance may serve again, starting from this reading.
  cpu_last_ = cpu;
  cpu_last_at_ = now;
  v1::WorkerResult* result = msg.mutable_result();
  out->handler_return = result->handler_return();
  if (result->has_handler_ns()) {
    out->reported_handler = std::chrono::nanoseconds(
        std::min<uint64_t>(result->handler_ns(), uint64_t{1} << 62));  // a lie stays positive
  }
  if (result->response_too_large()) {
    out->outcome = Outcome::kResponseTooLarge;
    out->error_message = "the function's response passed the 6 MiB limit";
    return OkStatus();
  }
  if (result->handler_return() != 0) {
    out->outcome = Outcome::kFunctionError;
    out->error_message =
        "the function returned " + std::to_string(result->handler_return()) + " (non-zero)";
    return OkStatus();
  }
  out->outcome = Outcome::kOk;
  out->status = result->status();
  out->headers.reserve(static_cast<std::size_t>(result->headers_size()));
  for (auto& h : *result->mutable_headers()) {
    out->headers.emplace_back(std::move(*h.mutable_name()), std::move(*h.mutable_value()));
  }
  out->body = std::move(*result->mutable_body());
  return OkStatus();
}

void ChannelExchange::Finish(const Exchange& x, Result<std::string> frame,
                             std::size_t log_capture_bytes, InvokeResult* out, std::size_t skip) {
  if (frame.ok()) {
    Status violation = Settle(x, *frame, log_capture_bytes, out, skip);
    if (violation.ok()) {
      return;
    }
    frame = std::move(violation);
  }
  const store::FunctionConfig& cfg = p_->Spec().config;
  const auto cpu_before = x.cpu_before;
  ScopeExit account([&] {
    p_->Account().InvocationEnded(cpu_before + out->cpu);
    if (p_->Cgroup() != nullptr) {
      out->peak_memory_bytes = p_->Cgroup()->PeakMemory();
    }
  });
  out->timings.exec = Clock::now() - x.t0;
  const Status& err = frame.status();
  if (err.code() == StatusCode::kDeadlineExceeded) {
    p_->KillAll();  // enforced from outside; the worker gets no say
    out->cpu = p_->Cpu() - cpu_before;
    p_->Bury("timeout");
    out->outcome = Outcome::kTimeout;
    out->error_message = TimeoutMessage(x);
  } else {
    // EOF or a protocol violation (a bad frame, or an answer Settle refused).
    std::string why = err.code() == StatusCode::kInternal ? err.message() : "";
    if (!why.empty()) {
      p_->KillAll();
    }
    ExitInfo info;
    std::string exit = p_->Bury(why.empty() ? "closed its channel" : "protocol violation", &info);
    out->cpu = p_->Cpu() - cpu_before;
    out->outcome = Outcome::kCrashed;
    out->error_message =
        why.empty() ? "the worker " + exit : "the worker broke the protocol: " + why + "; " + exit;
    if (why.empty() && info.signaled && info.value == SIGSYS) {
      // The seccomp policy killed it (SCMP_ACT_KILL_PROCESS delivers SIGSYS).
      out->outcome = Outcome::kSandboxViolation;
      out->error_message =
          "the worker was killed by the sandbox for a forbidden system call (SIGSYS)";
    } else if (p_->Cgroup() != nullptr && p_->Cgroup()->OomKills() > 0) {
      out->outcome = Outcome::kSandboxViolation;
      out->error_message = "the instance passed its memory limit of " +
                           std::to_string(cfg.memory_mb) + " MiB and was killed";
    }
  }
  out->logs = p_->ReadLogs(log_capture_bytes, log_from_, UINT64_MAX, &log_from_);
}

std::string ChannelExchange::TimeoutMessage(const Exchange& x) const {
  return x.cpu_exceeded
             ? "the function used its " + FormatDuration(x.cpu_limit) +
                   " CPU-time limit; the instance was killed"
             : "the function did not finish within its " +
                   FormatDuration(p_->Spec().config.timeout) + " timeout; the instance was killed";
}

void ChannelExchange::Abandon(const Exchange& x, const Status& why, InvokeResult* out) {
  p_->Kill();  // a signal: the reaper thread's destructor kills the rest and reaps
  p_->MarkDead();
  out->timings.exec = Clock::now() - x.t0;
  if (why.code() == StatusCode::kDeadlineExceeded) {
    out->outcome = Outcome::kTimeout;
    out->error_message = TimeoutMessage(x);
  } else {
    out->outcome = Outcome::kCrashed;
    out->error_message =
        why.code() == StatusCode::kInternal
            ? "the worker broke the protocol: " + why.message() + " (worker killed)"
            : "the worker stopped answering: " + why.message();
  }
}

}  // namespace faas::scheduler
