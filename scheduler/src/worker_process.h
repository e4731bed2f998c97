// WorkerProcess: one faas-worker child (pid + pidfd). Move-only; its destructor SIGKILLs and
// reaps a worker that is still around, so no worker outlives its owner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/unique_fd.h"

namespace faas::scheduler {

struct SpawnSpec {
  std::string worker_path;
  std::string library_path;
  std::vector<std::string> jail_args;      // --uid, --gid, limits (see sandbox/worker.h)
  std::map<std::string, std::string> env;  // the function's env only; nothing inherited
  int channel_fd = -1;                     // becomes fd 3 in the worker
  int log_fd = -1;                         // becomes stdout and stderr
  std::vector<int> cgroup_procs_fds;       // the child joins each (writes "0") before exec
};

struct ExitInfo {
  bool signaled = false;
  int value = 0;  // exit status, or signal number
  // "exited with status 3", "killed by signal 11 (SIGSEGV)"
  std::string Describe() const;
};

class WorkerProcess {
 public:
  // Spawns the worker with Boost.Process (the only place that includes it).
  static Result<WorkerProcess> Spawn(const SpawnSpec& spec);

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

 private:
  WorkerProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = false;
  ExitInfo exit_;
};

}  // namespace faas::scheduler
