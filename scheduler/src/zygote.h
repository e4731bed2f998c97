// Zygote: a sandboxed worker of one function version that has loaded the library and run
// faas_init, and forks new instances on request (docs/design/0003-zygote.md).
//
//   FAAS_ASSIGN_OR_RETURN(std::shared_ptr<Zygote> z, Zygote::Start(spec, options));
//   FAAS_ASSIGN_OR_RETURN(pid_t ns_pid, z->Fork(channel_fd, log_fd, deadline));
//   // the child's first frame on channel_fd carries its host pid (SCM_CREDENTIALS)
//
// Every instance forked from it holds a shared_ptr: the zygote is PID 1 of their pid namespace,
// so it must outlive them. Thread-safe: forks are serialised on its channel.
//
// It keeps instances *parked* (docs/design/0010-cold-start-after-idle.md, "Parked"): forked
// ahead of need, in their instance jail, verified and moved into their own cgroups, waiting on
// their channels; one, or SchedulerOptions::parked_fresh for an `isolation: fresh` function, whose
// every call takes one. A cold start takes the oldest (InstanceProcess::Fork), and the scheduler's
// reaper parks the next one. The zygote owns its parked instances (which do not hold the zygote
// until taken, so there is no cycle), and ends them when it is retired or destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"
#include "faas/sandbox/cgroup.h"
#include "faas/scheduler/scheduler.h"

#include "instance_process.h"
#include "worker_process.h"

namespace faas::scheduler {

// How many instances a zygote of `spec` keeps parked: none with parking off; parked_fresh for an
// `isolation: fresh` function, whose every call takes one, so a call in a tight loop need not
// wait for the park its predecessor started; else one.
std::size_t ParkTargetFor(const FunctionSpec& spec, const SchedulerOptions& options);

class Zygote : public std::enable_shared_from_this<Zygote> {
 public:
  // Spawns `faas-worker --zygote` for `spec` in a cgroup of its own and waits for it to load and
  // initialise; then parks an instance (SchedulerOptions::park_instances; a failure to park is
  // logged, and cold starts fork). FailedPrecondition when this version cannot have a zygote
  // (loading or faas_init failed, or faas_init left threads running, which a fork would not copy).
  // `group` is the function's cgroup level: the zygote's group and its instances' go there.
  // With `park_first` false the first park is left to the caller (a deploy's Prepare: the
  // reaper parks it while the deploy goes on, docs/design/0036-rollout-path.md).
  static Result<std::shared_ptr<Zygote>> Start(std::shared_ptr<const FunctionSpec> spec,
                                               const SchedulerOptions& options,
                                               std::shared_ptr<sandbox::FunctionCgroup> group,
                                               bool park_first = true);
  // Ends the parked instance, closes the channel (the zygote exits), kills what is left in its
  // cgroup.
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  // Forks an instance whose fd 3 is `channel` and stdout/stderr `log`. Returns its pid inside
  // the zygote's namespace. On any failure the zygote is marked dead (Unavailable).
  Result<pid_t> Fork(int channel, int log, Clock::time_point deadline);
  // Forks an instance and parks it, unless ParkTarget() are parked already, one is being parked,
  // parking was stopped, or the zygote is dead (then OK, nothing done). Blocks for one fork
  // (about a millisecond); any thread. Errors as InstanceProcess::Fork's.
  Status Park(const SchedulerOptions& options);
  // The oldest parked instance, handed over: from now on it holds this zygote like any forked
  // instance. nullptr when none is parked (those that died while parked are skipped). When none
  // is parked, a Park under way is waited for, until `deadline`: it is further along than a new
  // fork would be. Any thread.
  std::unique_ptr<InstanceProcess> TakeParked(Clock::time_point deadline);
  // The same without waiting: nullptr unless one is parked now. Never blocks on a fork, so an
  // event loop may call it (the cold start then needs no blocking thread).
  std::unique_ptr<InstanceProcess> TryTakeParked();
  // True when the reaper should Park: fewer than ParkTarget() parked, none being parked, parking
  // not stopped, alive.
  bool WantsPark();
  // How many instances this zygote keeps parked (0: parking off).
  std::size_t ParkTarget() const { return park_target_; }
  // How its start went (logged with zygote.started): the worker's start until its ready frame
  // (`boot`: of which spawn, load and faas_init as for an instance; the rest is the worker's exec
  // and jail), then the checks and limits before the first fork (`ready`), then that fork and
  // park (`park`).
  struct Phases {
    std::chrono::nanoseconds boot{0};
    StartTimings start;
    std::chrono::nanoseconds ready{0};
    std::chrono::nanoseconds park{0};
  };
  const Phases& StartPhases() const { return phases_; }
  // The oldest parked instance's host pid, 0 when none is parked (Stats, tests).
  pid_t ParkedPid();
  // How many are parked now (the faas_instances{state="parked"} gauge).
  std::size_t ParkedCount();
  // Ends the parked instances (blocks: kill, reap, cgroup removal) and parks no more: for a
  // retired zygote, which may live on while instances forked from it do. Any thread.
  void StopParking();
  // How the child `ns_pid` ended, as the zygote reported it (waits until `deadline`).
  std::optional<ExitInfo> ExitOf(pid_t ns_pid, Clock::time_point deadline);
  // False once the zygote died or failed a fork. Any thread.
  bool Alive();
  // Stop forking from this zygote: a child it forked did not behave (no first frame, wrong
  // identity). Its namespace ends, with whatever is left in it, when the last instance is gone.
  void Abandon() { dead_ = true; }
  pid_t HostPid() const { return host_pid_; }
  const FunctionSpec& Spec() const { return *spec_; }
  const std::shared_ptr<const FunctionSpec>& SpecPtr() const { return spec_; }
  const std::shared_ptr<sandbox::FunctionCgroup>& Group() const { return group_; }
  // Its start's CPU (metering::CpuAccount): loading and faas_init are the function's.
  std::chrono::nanoseconds InitCpu() const { return worker_->Account().InitCpu(); }
  std::chrono::nanoseconds PlatformCpu() const { return worker_->Account().PlatformCpu(); }
  // Called once, from the destructor, with the CPU the zygote used after it was ready (forks).
  void SetOnEnd(std::function<void(const FunctionSpec&, std::chrono::nanoseconds)> fn) {
    on_end_ = std::move(fn);
  }

 private:
  Zygote() = default;
  // Reads one frame from the zygote: an exit report is kept for ExitOf, a fork reply is
  // returned in *forked. Any error marks the zygote dead. mu_ held.
  Status ReadOne(Clock::time_point deadline, std::optional<pid_t>* forked);
  // Removes and returns the kept report of `ns_pid` (from exits_ and exit_order_). mu_ held.
  std::optional<ExitInfo> TakeExit(pid_t ns_pid);

  // The zygote is a worker process started with --zygote (its keeper, cgroup, channel and log),
  // used through InstanceProcess's public interface: it is never invoked, so it is no Instance.
  std::shared_ptr<sandbox::FunctionCgroup> group_;  // outlives worker_ (declared first)
  std::unique_ptr<InstanceProcess> worker_;
  std::shared_ptr<const FunctionSpec> spec_;
  pid_t host_pid_ = -1;  // the zygote itself, PID 1 of its namespace
  std::atomic<bool> dead_{false};
  std::mutex alive_mu_;  // Alive() polls the keeper: InstanceProcess is not thread-safe
  std::mutex mu_;
  std::unordered_map<pid_t, ExitInfo> exits_;  // reported, not yet asked for; bounded
  std::deque<pid_t> exit_order_;
  int fork_error_ = 0;  // errno the zygote reported with its last fork answer (under mu_)
  std::function<void(const FunctionSpec&, std::chrono::nanoseconds)> on_end_;
  Phases phases_;                      // set once, in Start
  std::size_t park_target_ = 0;        // set once, in Start
  std::mutex park_mu_;                 // guards the three below; never held across a fork or a kill
  std::condition_variable parked_cv_;  // a Park finished
  std::deque<std::unique_ptr<InstanceProcess>> parked_;  // forked ahead, oldest first
  bool parking_ = false;                                 // a Park is forking
  bool park_stopped_ = false;                            // retired: park no more
};

}  // namespace faas::scheduler
