// Instance: one running worker of one function version, with its channel and log memfd.
// Owned by exactly one thread at a time (the pool hands it out); not thread-safe, except
// Kill(), which any thread may call.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/cgroup.h"
#include "faas/sandbox/network.h"
#include "faas/scheduler/scheduler.h"

#include "answer_budget.h"
#include "worker_process.h"

namespace faas::scheduler {

struct StartTimings {
  std::chrono::nanoseconds spawn{0};
  std::chrono::nanoseconds load{0};
  std::chrono::nanoseconds init{0};
};

class Zygote;

// The host uid (= gid) the function runs as (FunctionSpec::uid).
uid_t RunAs(const FunctionSpec& spec);
// The cgroup limits of one instance (or zygote, before its fork allowance) of `spec`.
sandbox::CgroupLimits LimitsFor(const FunctionSpec& spec, const SchedulerOptions& options);

// What one live forked instance keeps charged to the zygote's memory cgroup: the kernel memory a
// fork allocates in the forking process's group (page tables, kernel stack, task structures) and
// the pages either side copies before the child is moved. Measured ~160 KiB on cgroup v1
// (bench: prewarm 150, memory.usage_in_bytes of z-N); charges do not follow a moved task.
inline constexpr uint64_t kForkAllowanceBytes = 256u << 10;

// The caps of the function's level (f-<name>), all its instances and zygotes together: one slot
// per instance (max_instances) plus two zygote slots (the current version's, and a replaced
// one's, which lives until its last instance is gone), each slot with one instance's pids and
// memory; and each zygote's fork allowance. The zygote slots are also the slack for an instance
// that is being killed while its replacement starts: a zygote uses a few tasks (itself and its
// keeper) and the memory faas_init left, far below a slot. Default function (16 instances of
// 128 MiB): 1152 tasks, 2.25 GiB + 8 MiB.
sandbox::FunctionLimits FunctionLevelLimits(const FunctionSpec& spec,
                                            const SchedulerOptions& options);

// RLIMIT_NPROC of the function's workers: a backstop, not the limit. The kernel counts every
// task of the function's uid on the host (all its instances, zygotes, keepers and deploy probes
// share the uid), checked at fork and clone; the pids cgroups are what bind. So: the function
// level's pids cap plus one instance's pids for tasks still being reaped. Default function: 1216.
uint64_t NprocFor(const FunctionSpec& spec, const SchedulerOptions& options);

// /proc/<pid>/status with a '\n' in front, so every field is found as "\n<Name>:\t" ("" and then
// no fields when the process is gone).
std::string ProcStatus(pid_t pid);
// A field of ProcStatus's text: its first value ("Uid" -> the real uid), or with `last` its last
// ("NSpid" -> the pid in the innermost namespace); "" when absent.
std::string StatusField(const std::string& status, std::string_view name, bool last = false);

class Instance {
 public:
  // A new instance of `spec`: forked from `zygote` when it is given and alive, else (or when the
  // fork fails, which is logged) a newly spawned worker.
  // `group` is the function's cgroup level (nullptr: none).
  static Result<std::unique_ptr<Instance>> Create(
      std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
      const std::shared_ptr<Zygote>& zygote, const std::shared_ptr<sandbox::FunctionCgroup>& group,
      StartTimings* timings);
  // Spawns a worker for `spec` and waits for its WorkerReady until `init_timeout`. With
  // `as_zygote` the worker serves fork requests after it is ready (see Zygote).
  // Errors: FailedPrecondition (the library failed to load or init; message says why, with the
  // worker's stderr), DeadlineExceeded (init took too long), others (cannot spawn).
  static Result<std::unique_ptr<Instance>> Start(
      std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
      const std::shared_ptr<sandbox::FunctionCgroup>& group, StartTimings* timings,
      bool as_zygote = false);
  // Forks an instance from `zygote`, verifies the child the kernel names, and moves it into a
  // cgroup of its own (in the zygote's function level) before it gets any work. Unavailable
  // when the zygote failed.
  static Result<std::unique_ptr<Instance>> Fork(const std::shared_ptr<Zygote>& zygote,
                                                const SchedulerOptions& options,
                                                StartTimings* timings);
  // Kills everything in the instance (its cgroup, or the worker) and waits until it is gone.
  void KillAll();
  ~Instance();

  // Runs one invocation with the function's wall-clock timeout. Fills outcome, response,
  // cpu, logs and timings.exec in *out. After kTimeout/kCrashed the instance is dead. Every
  // invocation, a cold start's first included, is charged only the CPU from its start.
  // The request's body is moved into the frame (the only copy is the serialisation). An answer
  // larger than kOwnAnswerBytes waits for its bytes from `budget` (within the deadline).
  void Invoke(InvokeRequest& req, std::size_t log_capture_bytes, AnswerBudget& budget,
              InvokeResult* out);

  // The same invocation in steps, for an event loop (Scheduler::InvokeAsync):
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
    bool WantsWrite() const { return writing; }
  };
  // kNeedsBudget: the answer is larger than kOwnAnswerBytes and x->budget_bytes does not cover
  // x->answer_bytes; nothing more is read until it does.
  enum class Pumped { kWaiting, kAnswered, kFailed, kNeedsBudget };
  // Builds the request frame (the body is moved into it) and starts the CPU accounting.
  void Begin(InvokeRequest& req, Exchange* x);
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
  // the instance dead and fills *out from `why` alone. The instance's destructor (the reaper
  // thread's) reaps it.
  void Abandon(const Exchange& x, const Status& why, InvokeResult* out);
  int ChannelFd() const { return channel_.Get(); }
  // Background CPU (used since it was ready, outside invocations) not yet recorded; `final`
  // (the instance is ending) reads the counter once more first. The recorder bills it.
  std::chrono::nanoseconds TakeBackgroundCpu(bool final);
  // The CPU of the instance's start until it was ready (kernel-measured, docs/metering.md):
  // the function's init (loading and faas_init; zero for a forked instance, which starts
  // initialised) and the platform's share (exec and jail, or the fork and the instance's jail).
  std::chrono::nanoseconds InitCpu() const { return init_cpu_; }
  std::chrono::nanoseconds PlatformCpu() const { return platform_cpu_; }
  // Called once, when the instance ends, with its last background CPU (until the kill) and the
  // platform's (the teardown after it).
  using OnEnd = std::function<void(const FunctionSpec&, std::chrono::nanoseconds background,
                                   std::chrono::nanoseconds platform)>;
  void SetOnEnd(OnEnd fn) { on_end_ = std::move(fn); }

  bool Healthy() const { return healthy_; }
  bool Forked() const { return zygote_ != nullptr; }
  // Marks the instance as not to be reused; it stops when released.
  void Retire() { healthy_ = false; }
  const FunctionSpec& Spec() const { return *spec_; }
  pid_t Pid() const { return process_.pid(); }
  void Kill() { process_.Kill(); }
  Clock::time_point last_used;

 private:
  friend class Zygote;  // a zygote is a worker started by Start(as_zygote): it uses the parts
  Instance(std::shared_ptr<const FunctionSpec> spec, std::unique_ptr<sandbox::InstanceCgroup> cg,
           WorkerProcess process, UniqueFd channel, UniqueFd log)
      : spec_(std::move(spec)),
        cgroup_(std::move(cg)),
        process_(std::move(process)),
        channel_(std::move(channel)),
        log_(std::move(log)) {}
  std::chrono::nanoseconds Cpu() const;
  // Internal("protocol violation: …") when the worker has written to its channel although no
  // request is outstanding (a frame left over from an earlier call, or one forged ahead of the
  // next): its next answer could not be told from a stale one. One non-blocking peek.
  Status CheckIdleChannel() const;
  // Reads the WorkerReady frame (until `deadline`); on failure buries the worker and says why.
  // A `spawned` worker first says WorkerJailed, answered with SendEnvironment; with `egress` (an
  // outbound worker) a NetworkPending frame before that gets AttachNetwork. Measures the start's
  // platform and init CPU.
  Status AwaitReady(Clock::time_point deadline, std::chrono::milliseconds budget,
                    StartTimings* timings, bool spawned,
                    const sandbox::EgressPolicy* egress = nullptr);
  Status AttachNetwork(const sandbox::EgressPolicy& egress, Clock::time_point deadline);
  Status SendEnvironment(Clock::time_point deadline);
  // The worker stopped talking: learn why (its exit status if it exited on its own within a
  // moment, else kill it) and mark the instance dead.
  std::string Bury(std::string_view what, ExitInfo* exit = nullptr);
  std::string ReadLogs(std::size_t cap);
  std::string TimeoutMessage(const Exchange& x) const;  // kTimeout's: wall clock or CPU

  std::shared_ptr<const FunctionSpec> spec_;
  std::shared_ptr<Zygote> zygote_;                   // forked instances: PID 1 of their namespace
  std::unique_ptr<sandbox::InstanceCgroup> cgroup_;  // destroyed after process_ (declared first)
  WorkerProcess process_;
  std::unique_ptr<sandbox::Slirp> slirp_;  // outbound: the worker's path out; ends with it
  UniqueFd channel_;
  UniqueFd log_;
  bool healthy_ = true;
  pid_t ready_pid_ = -1;                  // as_zygote: who sent the ready frame (the kernel says)
  bool ready_ = false;                    // sent WorkerReady: CPU accounting runs
  std::chrono::nanoseconds init_cpu_{0};  // loading and faas_init (spawned workers)
  std::chrono::nanoseconds platform_cpu_{0};  // the rest of the start (exec, jail, fork)
  bool log_empty_ = false;                    // the log memfd was empty when last read
  std::chrono::nanoseconds last_cpu_{0};      // CPU when ready, then at the end of each invocation
  std::chrono::nanoseconds background_{0};    // used between invocations, not yet recorded
  OnEnd on_end_;
};

}  // namespace faas::scheduler
