// Instance: one running worker of one function version, as the scheduler's pools hold it. It
// joins the two parts (docs/design/0013-instance-split.md): the process it owns
// (InstanceProcess: spawn or fork, the jail handshake, kill, bury, logs, cgroup, CPU readings)
// and the exchange on that process's channel (ChannelExchange: request frame, non-blocking
// write and read, answer or failure to InvokeResult); and it bills what the process used
// outside invocations when it ends. Owned by exactly one thread at a time (the pool hands it
// out); not thread-safe, except Kill(), which any thread may call.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "faas/scheduler/scheduler.h"

#include "answer_budget.h"
#include "channel_exchange.h"
#include "instance_process.h"

namespace faas {
class EventLoop;
}

namespace faas::scheduler {

struct ChannelSlot;  // async_path.cc's (scheduler_impl.h)

class Instance {
 public:
  // A new instance of `spec`: forked from `zygote` when it is given and alive, else (or when the
  // fork fails, which is logged) a newly spawned worker.
  // `group` is the function's cgroup level (nullptr: none).
  static Result<std::unique_ptr<Instance>> Create(
      std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
      const std::shared_ptr<Zygote>& zygote, const std::shared_ptr<sandbox::FunctionCgroup>& group,
      StartTimings* timings);
  // A newly spawned worker (InstanceProcess::Start; as_zygote is for Zygote::Start, which owns
  // the process itself: an Instance with it would never be invoked).
  static Result<std::unique_ptr<Instance>> Start(
      std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
      const std::shared_ptr<sandbox::FunctionCgroup>& group, StartTimings* timings,
      bool as_zygote = false);
  // An instance forked from `zygote` (InstanceProcess::Fork).
  static Result<std::unique_ptr<Instance>> Fork(const std::shared_ptr<Zygote>& zygote,
                                                const SchedulerOptions& options,
                                                StartTimings* timings);
  // The parked instance of `zygote` when it has one now and is of `spec`'s version, else
  // nullptr; never waits (InstanceProcess::TakeParked).
  static std::unique_ptr<Instance> TakeParked(const FunctionSpec& spec,
                                              const std::shared_ptr<Zygote>& zygote,
                                              StartTimings* timings);
  // Kills everything in the instance (its cgroup, or the worker) without waiting.
  void KillAll() { process_->KillAll(); }
  // Bills its last background CPU and its teardown (OnEnd), then the process ends.
  ~Instance();

  // ChannelExchange::Invoke, and its steps for an event loop (see there).
  using Exchange = scheduler::Exchange;
  using Pumped = scheduler::Pumped;
  void Invoke(InvokeRequest& req, std::size_t log_capture_bytes, AnswerBudget& budget,
              InvokeResult* out) {
    exchange_.Invoke(req, log_capture_bytes, budget, out);
  }
  void Begin(InvokeRequest& req, Exchange* x) { exchange_.Begin(req, x); }
  bool Unread() const { return exchange_.Unread(); }
  void Prepare(InvokeRequest& req, Exchange* x, bool keep_body = false) {
    exchange_.Prepare(req, x, keep_body);
  }
  Status Start(Exchange* x, bool behind) { return exchange_.Start(x, behind); }
  void WriteAhead(Exchange* x) { exchange_.WriteAhead(x); }
  bool TakesBehind() const { return exchange_.TakesBehind(); }
  void SetWantLogEnd(bool want) { exchange_.SetWantLogEnd(want); }
  Pumped Pump(Exchange* x, Result<std::string>* answer) { return exchange_.Pump(x, answer); }
  Clock::time_point NextCheck(Exchange* x, bool first, Status* expired) {
    return exchange_.NextCheck(x, first, expired);
  }
  Status Settle(const Exchange& x, std::string_view frame, std::size_t log_capture_bytes,
                InvokeResult* out, std::size_t skip = 0) {
    return exchange_.Settle(x, frame, log_capture_bytes, out, skip);
  }
  void Finish(const Exchange& x, Result<std::string> frame, std::size_t log_capture_bytes,
              InvokeResult* out, std::size_t skip = 0) {
    exchange_.Finish(x, std::move(frame), log_capture_bytes, out, skip);
  }
  void Abandon(const Exchange& x, const Status& why, InvokeResult* out) {
    exchange_.Abandon(x, why, out);
  }
  int ChannelFd() const { return process_->ChannelFd(); }

  // Background CPU (used since it was ready, outside invocations) not yet recorded; `final`
  // (the instance is ending) reads the counter once more first. The recorder bills it.
  std::chrono::nanoseconds TakeBackgroundCpu(bool final);
  // The CPU of the instance's start until it was ready (kernel-measured, docs/metering.md):
  // the function's init (loading and faas_init; zero for a forked instance, which starts
  // initialised) and the platform's share (exec and jail, or the fork and the instance's jail).
  std::chrono::nanoseconds InitCpu() const { return process_->Account().InitCpu(); }
  std::chrono::nanoseconds PlatformCpu() const { return process_->Account().PlatformCpu(); }
  // Called once, when the instance ends, with its last background CPU (until the kill) and the
  // platform's (the teardown after it).
  using OnEnd = std::function<void(const FunctionSpec&, std::chrono::nanoseconds background,
                                   std::chrono::nanoseconds platform)>;
  void SetOnEnd(OnEnd fn) { on_end_ = std::move(fn); }

  bool Healthy() const { return process_->Healthy(); }
  bool Forked() const { return process_->Forked(); }
  // Marks the instance as not to be reused; it stops when released.
  void Retire() { process_->MarkDead(); }
  const FunctionSpec& Spec() const { return process_->Spec(); }
  pid_t Pid() const { return process_->Pid(); }
  void Kill() { process_->Kill(); }
  // Ends it now without waiting (Scheduler::Impl::Bury): its background CPU is read first, as the
  // destructor would, so the teardown that follows the SIGKILL stays the platform's; the
  // destructor then reaps it and bills both.
  void EndNow();
  Clock::time_point last_used;
  // The event loop whose epoll set holds the channel, registered once and kept between
  // invocations (async_path.cc; nullptr: none), and the state its callback reads. Touched only
  // by whoever holds the instance (the pool hands it out under the scheduler's mutex).
  EventLoop* loop = nullptr;
  std::shared_ptr<ChannelSlot> slot;

 private:
  explicit Instance(std::unique_ptr<InstanceProcess> process)
      : process_(std::move(process)), exchange_(process_.get()) {}
  static Result<std::unique_ptr<Instance>> Of(Result<std::unique_ptr<InstanceProcess>> process);

  std::unique_ptr<InstanceProcess> process_;  // never null
  ChannelExchange exchange_;                  // on process_
  OnEnd on_end_;
  bool Billed() const {
    return on_end_ && process_->Account().IsReady() && process_->Cgroup() != nullptr;
  }
  std::optional<std::chrono::nanoseconds> ended_background_;  // EndNow's reading
};

}  // namespace faas::scheduler
