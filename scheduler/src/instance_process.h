// InstanceProcess: the process one instance (or zygote) owns — a sandboxed faas-worker, spawned
// or forked from a zygote — with its channel, log memfd, cgroup and, for an outbound worker, its
// slirp4netns; and the kernel's CPU readings of it, which its metering::CpuAccount sums.
// It starts the worker through the jail handshake (WorkerJailed, WorkerEnv, NetworkPending,
// WorkerReady), and kills and buries it. What travels on the channel after the ready frame is
// ChannelExchange's (channel_exchange.h); an Instance (instance.h) joins the two.
// Owned by one thread at a time; not thread-safe, except Kill(), which any thread may call.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "faas/base/unique_fd.h"
#include "faas/metering/cpu_account.h"
#include "faas/sandbox/cgroup.h"
#include "faas/sandbox/network.h"
#include "faas/scheduler/scheduler.h"

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
// keeper) and the memory faas_init left, far below a slot; so does each zygote's parked instance
// (one task, the few pages it wrote; docs/design/0010). Default function (16 instances of
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

class InstanceProcess {
 public:
  // Spawns a worker for `spec` and waits for its WorkerReady until `init_timeout`. With
  // `as_zygote` the worker serves fork requests after it is ready (see Zygote).
  // `group` is the function's cgroup level (nullptr: none).
  // Errors: FailedPrecondition (the library failed to load or init; message says why, with the
  // worker's stderr), DeadlineExceeded (init took too long), others (cannot spawn).
  static Result<std::unique_ptr<InstanceProcess>> Start(
      std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
      const std::shared_ptr<sandbox::FunctionCgroup>& group, StartTimings* timings,
      bool as_zygote = false);
  // Forks a process from `zygote`, verifies the child the kernel names, and moves it into a
  // cgroup of its own (in the zygote's function level) before it gets any work. Unavailable
  // when the zygote failed. The process holds the zygote (PID 1 of its namespace) until it ends.
  // The zygote's parked instance, when it has one, is taken instead of forking (then `spawn` is
  // the take); with `park`, the fork is for the zygote to park (Zygote::Park), and the process
  // holds the zygote only once Zygote::TakeParked has handed it over.
  static Result<std::unique_ptr<InstanceProcess>> Fork(const std::shared_ptr<Zygote>& zygote,
                                                       const SchedulerOptions& options,
                                                       StartTimings* timings, bool park = false);
  // The zygote's oldest parked instance, handed over (it holds the zygote from now on), without
  // waiting for a Park under way: nullptr when none is parked now. `spawn` is the hand-over.
  static std::unique_ptr<InstanceProcess> TakeParked(const std::shared_ptr<Zygote>& zygote,
                                                     StartTimings* timings);
  // Closes the channel (a healthy worker exits), kills and reaps the worker; the cgroup then
  // kills what the function left behind and is removed.
  ~InstanceProcess();
  InstanceProcess(const InstanceProcess&) = delete;
  InstanceProcess& operator=(const InstanceProcess&) = delete;

  const FunctionSpec& Spec() const { return *spec_; }
  const std::shared_ptr<const FunctionSpec>& SpecPtr() const { return spec_; }
  // The process we own: a spawned worker's keeper, or the forked instance itself.
  pid_t Pid() const { return process_.pid(); }
  // Who sent a zygote's ready frame, or an outbound worker's first frame, as the kernel named it
  // (PID 1 of the worker's namespace, not the keeper); -1 for other workers.
  pid_t SenderPid() const { return sender_pid_; }
  int ChannelFd() const { return channel_.Get(); }
  bool Forked() const { return zygote_ != nullptr; }
  bool Healthy() const { return healthy_; }
  void MarkDead() { healthy_ = false; }
  // The instance's own cgroup (nullptr when faasd runs without cgroups).
  sandbox::InstanceCgroup* Cgroup() const { return cgroup_.get(); }

  // The kernel's reading of the CPU the worker used so far: its cgroup's (everything the
  // function started included), else the process's. 0 when it cannot be read.
  std::chrono::nanoseconds Cpu() const;
  // Its CPU split into start (init, platform), invocations and background; fed with Cpu().
  metering::CpuAccount& Account() { return account_; }
  const metering::CpuAccount& Account() const { return account_; }

  // SIGKILL to the process (any thread).
  void Kill() { process_.Kill(); }
  // Kills everything in the instance (its cgroup, or the worker) without waiting.
  void KillAll();
  void CloseChannel() { channel_.Reset(); }
  ExitInfo Wait() { return process_.Wait(); }
  // True once the process has exited (it is then reaped). Does not wait for a running process,
  // but an exited forked one's report may take the zygote a moment.
  bool Exited();
  // True once the process has exited; neither waits nor reaps (an event loop may ask).
  bool Gone() const { return process_.Gone(); }
  // The worker stopped talking: learn why (its exit status if it exited on its own within a
  // moment, else kill it), mark it dead, and return the description.
  std::string Bury(std::string_view what, ExitInfo* exit = nullptr);

  // Empties the log memfd unless it was empty when last read (one syscall saved on most calls):
  // output written between invocations then belongs to the next one.
  void ClearLogs();
  // What the worker wrote to stdout/stderr, cut to `cap` bytes with a note of what was dropped.
  std::string ReadLogs(std::size_t cap) { return ReadLogs(cap, 0, UINT64_MAX, nullptr); }
  // The bytes [from, min(until, size)) of the log, at most `cap` (then a marker); *end (when
  // given) is set to where they ended: a pipelined invocation's logs end where the worker says
  // its answer's did (design/0015), clamped to the file.
  std::string ReadLogs(std::size_t cap, uint64_t from, uint64_t until, uint64_t* end);

 private:
  InstanceProcess(std::shared_ptr<const FunctionSpec> spec,
                  std::unique_ptr<sandbox::InstanceCgroup> cg, WorkerProcess process,
                  UniqueFd channel, UniqueFd log)
      : spec_(std::move(spec)),
        cgroup_(std::move(cg)),
        process_(std::move(process)),
        channel_(std::move(channel)),
        log_(std::move(log)) {}
  // Reads the WorkerReady frame (until `deadline`); on failure buries the worker and says why.
  // A `spawned` worker first says WorkerJailed, answered with SendEnvironment; with `egress` (an
  // outbound worker) a NetworkPending frame before that gets AttachNetwork. Measures the start's
  // platform and init CPU.
  Status AwaitReady(Clock::time_point deadline, std::chrono::milliseconds budget,
                    StartTimings* timings, bool spawned,
                    const sandbox::EgressPolicy* egress = nullptr);
  Status AttachNetwork(const sandbox::EgressPolicy& egress, Clock::time_point deadline);
  Status SendEnvironment(Clock::time_point deadline);

  std::shared_ptr<const FunctionSpec> spec_;
  std::shared_ptr<Zygote> zygote_;                   // forked: PID 1 of their namespace
  std::unique_ptr<sandbox::InstanceCgroup> cgroup_;  // destroyed after process_ (declared first)
  WorkerProcess process_;
  std::unique_ptr<sandbox::Slirp> slirp_;  // outbound: the worker's path out; ends with it
  UniqueFd channel_;
  UniqueFd log_;
  bool healthy_ = true;
  pid_t sender_pid_ = -1;
  bool log_empty_ = false;  // the log memfd was empty when last read
  metering::CpuAccount account_;
};

}  // namespace faas::scheduler
