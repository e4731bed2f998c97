// WorkerProcess: one faas-worker process (pid + pidfd). Move-only; its destructor SIGKILLs and
// reaps a worker that is still around, so no worker outlives its owner. Either our child
// (Spawn), or an instance a zygote forked (Adopt): only its parent can wait for it, so its exit
// status comes from the zygote's report.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"

namespace faas::scheduler {

struct SpawnSpec {
  std::string worker_path;
  std::string library_path;
  std::vector<std::string> jail_args;  // --uid, --gid, limits (see sandbox/worker.h)
  int channel_fd = -1;                 // becomes fd 3 in the worker
  int log_fd = -1;                     // becomes stdout and stderr
  std::vector<int> cgroup_procs_fds;   // the child joins each (writes "0") before exec
  bool sched_batch = false;            // the child runs SCHED_BATCH from exec on
};

struct ExitInfo {
  bool signaled = false;
  int value = 0;         // exit status, or signal number
  bool unknown = false;  // an adopted process whose zygote did not report its end
  // "exited with status 3", "killed by signal 11 (SIGSEGV)"
  std::string Describe() const;
};

// How an adopted process ended, waiting until the deadline for its parent's report.
using ExitLookup = std::function<std::optional<ExitInfo>(Clock::time_point deadline)>;

class WorkerProcess {
 public:
  // Spawns the worker with Boost.Process (the only place that includes it).
  static Result<WorkerProcess> Spawn(const SpawnSpec& spec);
  // Owns a process that is not our child, through `pidfd` (which must refer to `pid`).
  static WorkerProcess Adopt(pid_t pid, UniqueFd pidfd, ExitLookup exit_lookup);

  WorkerProcess(WorkerProcess&&) noexcept = default;
  WorkerProcess& operator=(WorkerProcess&&) noexcept = default;
  ~WorkerProcess();

  pid_t pid() const { return pid_; }
  // SIGKILL through the pidfd (never hits a recycled pid). Idempotent.
  void Kill();
  // Blocks until the worker has exited and reaps it. Idempotent: later calls return the same.
  ExitInfo Wait();
  // Waits up to `timeout` for the worker to exit (poll(2) on the pidfd) and reaps it.
  // False if it is still running.
  bool WaitFor(std::chrono::milliseconds timeout, ExitInfo* info);
  // True once the process has exited or was reaped: one poll(2) of the pidfd, never waits and
  // never reaps (an event loop may call it).
  bool Gone() const;

 private:
  WorkerProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  // Adopted: poll(2) the pidfd until the process is gone, then ask the lookup how it ended.
  bool WaitAdopted(int timeout_ms);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  ExitLookup exit_lookup_;  // set when adopted
  bool reaped_ = false;
  ExitInfo exit_;
};

}  // namespace faas::scheduler
