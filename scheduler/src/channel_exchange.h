// ChannelExchange: one invocation on an instance's channel, after the worker is ready. It builds
// the request frame, writes it and reads the answer without blocking (for an event loop) or in
// a poll(2) loop (Invoke), decodes the answer with the channel's one FrameDecoder, and maps the
// answer, or the failure, to an InvokeResult. The process it talks to, and whose CPU and logs it
// reads, is an InstanceProcess; on a failure it has that process killed and buried.
// Every answer is checked as hostile (worker_response.h): a stale or forged frame, an oversized
// or malformed one, kills the worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/scheduler/scheduler.h"

#include "answer_budget.h"
#include "instance_process.h"

namespace faas::scheduler {

// The state of one invocation in steps, for an event loop (Scheduler::InvokeAsync):
//   Begin; Pump whenever the channel is ready (writable while WantsWrite, else readable) and
//   NextCheck at the time it returned, until Pump answers or fails or NextCheck expires (when
//   Pump asks for budget, take AnswerBytes() into budget_bytes before pumping again); then
//   Settle the answer (never blocks); on failure, or a violation Settle found, Finish (it
//   kills and reaps: a blocking thread's work).
struct Exchange {
  std::string invocation_id;  // the request's: the answer must name it
  std::string frame;          // the request frame, then what has arrived of the answer
  std::size_t done = 0;       // bytes of the request frame written
  bool writing = true;
  std::size_t answer_bytes = 0;  // the answer frame's size, header included, once announced
  std::size_t budget_bytes = 0;  // taken from the AnswerBudget for it (the caller gives back)
  Clock::time_point t0;
  Clock::time_point deadline;
  std::chrono::nanoseconds cpu_now{0};
  std::chrono::nanoseconds cpu_before{0};
  std::chrono::nanoseconds cpu_limit{0};
  bool cpu_exceeded = false;
  // Peek for bytes the worker wrote while idle before writing the request (CheckIdleChannel).
  // Begin sets it; the event-loop path clears it when its loop saw no event while idle.
  bool check_idle = true;
  // An edge-triggered loop reported the channel readable since a read last found it empty:
  // Pump reads right after writing the request instead of waiting for an event that has passed.
  bool readable = false;
  // Pipelining (design/0015, design/0042). A call with another behind it: that request was
  // written before this one's answer was read (its logs then end at the worker's log_end), and
  // where bytes read past its answer go (the start of the answers behind: `early` of the next
  // call's Exchange; nullptr: they are a protocol violation). A call behind: those bytes. Each
  // call behind has the next one's `early` as its own spill_to, so answers pass down the line.
  bool pipelined = false;
  std::string* spill_to = nullptr;
  std::string early;
  bool WantsWrite() const { return writing; }
};

// An instance takes a call behind its current one only while its log memfd holds less than this
// (it is emptied only when an invocation starts with nothing ahead of it).
inline constexpr uint64_t kPipelineLogBacklog = 1u << 20;

// kNeedsBudget: the answer is larger than kOwnAnswerBytes and x->budget_bytes does not cover
// x->answer_bytes; nothing more is read until it does.
enum class Pumped { kWaiting, kAnswered, kFailed, kNeedsBudget };

class ChannelExchange {
 public:
  explicit ChannelExchange(InstanceProcess* process) : p_(process) {}

  // Runs one invocation with the function's wall-clock timeout: the steps below, with poll(2).
  // Fills outcome, response, cpu, logs and timings.exec in *out. After kTimeout/kCrashed the
  // process is dead. Every invocation, a cold start's first included, is charged only the CPU
  // from its start. The request's body is moved into the frame (the only copy is the
  // serialisation). An answer larger than kOwnAnswerBytes waits for its bytes from `budget`
  // (within the deadline).
  void Invoke(InvokeRequest& req, std::size_t log_capture_bytes, AnswerBudget& budget,
              InvokeResult* out);

  // Builds the request frame (the body is moved into it) and starts the CPU accounting.
  void Begin(InvokeRequest& req, Exchange* x) {
    Prepare(req, x);
    (void)Start(x, /*behind=*/false);  // fails only for a call behind
  }
  // Begin's halves. Prepare builds the frame. Start begins the invocation: its deadline, CPU
  // budget and accounting, and its logs. `behind`: it was pipelined behind the invocation that
  // just ended here; it starts from the reading that ended that one (every nanosecond billed
  // once, split at the daemon's read), its logs from where that one's ended, and the bytes of
  // its answer read with that one's (x->early) become the start of its answer; bytes past it go
  // on to the call behind it (x->spill_to), and are Internal when there is none.
  // `keep_body`: the body is moved back into `req` once serialised (a call pipelined behind
  // another keeps it, to run elsewhere if that one fails before it starts).
  void Prepare(InvokeRequest& req, Exchange* x, bool keep_body = false);
  Status Start(Exchange* x, bool behind);
  // Writes what fits now of a frame pipelined behind the current invocation (never blocks; the
  // rest is written when it starts). Errors are left for the invocation ahead to find.
  void WriteAhead(Exchange* x);
  // Requests ask the worker for log_end (WorkerRequest.want_log_end): pipelining is on.
  void SetWantLogEnd(bool want) { want_log_end_ = want; }
  // Whether bytes wait unread on the channel (one non-blocking peek).
  bool Unread() const;
  // Whether a call may be pipelined behind the current one (the log backlog is small).
  bool TakesBehind() const { return log_from_ < kPipelineLogBacklog; }
  // Non-blocking: writes what it can of the request, reads what has arrived of the answer (its
  // buffer grows with what arrives, at most doubling, never to the announced size at once).
  // kAnswered and kFailed set *answer (the whole frame, header included, or why it failed).
  Pumped Pump(Exchange* x, Result<std::string>* answer);
  // When to check next (the CPU budget or the deadline); sets *expired to DeadlineExceeded once
  // either is spent. `first`: right after Begin (no CPU read needed).
  Clock::time_point NextCheck(Exchange* x, bool first, Status* expired);
  // Fills *out from a complete answer without blocking (CPU, peak memory and logs are reads of
  // open files). Returns the protocol violation when the answer is not acceptable: the worker
  // must then be killed, by Finish with that status (the loop hands it to a blocking thread).
  // The answer's payload starts `skip` bytes in (Pump leaves the frame header in front).
  Status Settle(const Exchange& x, std::string_view frame, std::size_t log_capture_bytes,
                InvokeResult* out, std::size_t skip = 0);
  // Fills *out from the answer (or failure); on failure kills and buries the worker (blocks).
  void Finish(const Exchange& x, Result<std::string> frame, std::size_t log_capture_bytes,
              InvokeResult* out, std::size_t skip = 0);
  // When no thread can be had to Finish a failure: SIGKILLs the worker without waiting, marks
  // the process dead and fills *out from `why` alone. The process's owner reaps it later.
  void Abandon(const Exchange& x, const Status& why, InvokeResult* out);

 private:
  // Internal("protocol violation: …") when the worker has written to its channel although no
  // request is outstanding (a frame left over from an earlier call, or one forged ahead of the
  // next): its next answer could not be told from a stale one. One non-blocking peek.
  Status CheckIdleChannel() const;
  std::string TimeoutMessage(const Exchange& x) const;  // kTimeout's: wall clock or CPU

  InstanceProcess* p_;
  // The CPU reading that ended the last answered invocation, and when it was taken: the next
  // invocation starting within kCpuReadReuse starts from it instead of reading again.
  std::chrono::nanoseconds cpu_last_{0};
  Clock::time_point cpu_last_at_{};
  // Where the next invocation's logs start in the memfd: 0 after it is emptied, else where the
  // last pipelined invocation's ended.
  uint64_t log_from_ = 0;
  bool want_log_end_ = false;
};

// Two invocations on an instance less than this apart share one CPU reading: the one that ends
// the first starts the second (one read of the cgroup counter per invocation instead of two).
// What the function's own threads ran in that gap (at most the gap times its CPU quota) is then
// billed to the second invocation instead of as background (docs/metering.md).
inline constexpr std::chrono::milliseconds kCpuReadReuse{1};

}  // namespace faas::scheduler
