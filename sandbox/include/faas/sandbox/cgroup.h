// Per-instance cgroups: memory (swap off), pids and CPU quota limits, CPU accounting, and
// killing everything an instance started (docs/sandbox.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto root, CgroupRoot::Create({}));          // once per daemon
//   FAAS_ASSIGN_OR_RETURN(auto cg, root->CreateInstance("i-42", limits));
//   spawn the worker so that it writes "0" to each of cg->ProcsFds() before exec;
//   ... cg->CpuUsage() ... cg->KillAll(); (the destructor also kills and removes it)
//
// Layout: every cgroup is nested under the daemon's own cgroup (read from /proc/self/cgroup)
// as <own>/faas-<daemon pid>/f-<function>/<leaf> (or <own>/faas-<daemon pid>/<leaf> without a
// function level), per controller on cgroup v1 (each controller may be its own
// hierarchy, with its own path) and once on cgroup v2. A daemon that starts removes the
// faas-<pid> trees of daemons that are no longer running. v1 groups are made with libcgroup;
// v2 groups with plain mkdir/write, because libcgroup 2.0.2 cannot parse the v2 line of
// /proc/self/cgroup and writes subtree_control into every ancestor.
// Thread-safe after creation.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/unique_fd.h"

namespace faas::sandbox {

enum class CgroupMode { kV1, kV2 };

struct CgroupLimits {
  uint64_t memory_bytes = 128u << 20;  // swap is off
  uint64_t pids_max = 64;
  uint64_t cpu_quota_us = 100'000;  // per period: 100000/100000 = one CPU
  uint64_t cpu_period_us = 100'000;
};

// Caps of one function's level (f-<name>): all its instances and zygotes together. 0 = no cap.
struct FunctionLimits {
  uint64_t cpu_cap_us = 0;  // per cpu_period_us
  uint64_t cpu_period_us = 100'000;
  uint64_t memory_bytes = 0;
  uint64_t pids_max = 0;
};

struct CgroupOptions {
  std::optional<CgroupMode> mode;  // default: detect (pure v2 if /sys/fs/cgroup is cgroup2)
  std::string v2_mount = "/sys/fs/cgroup";  // tests point this at /sys/fs/cgroup/unified
  // Caps of the whole platform's level (faas-<pid>): every function together. 0 = no cap
  // (faasd always sets them: --max-memory, --max-pids, defaults below).
  uint64_t max_memory_bytes = 0;
  uint64_t max_pids = 0;
};

// faasd's defaults for the platform caps. Memory: 3/4 of MemTotal (/proc/meminfo), so that
// functions together can never take the memory faasd, the kernel and the host's other services
// need (one quarter; there is no swap to fall back on). Pids: half of min(pid_max,
// threads-max), so functions together can never use up the pids or task structs the host needs
// to fork (an sshd to log in, faasd's own threads). 0 when the /proc file cannot be read.
uint64_t DefaultMaxMemoryBytes();
uint64_t DefaultMaxPids();

class InstanceCgroup;
class FunctionCgroup;

class CgroupRoot {
 public:
  // FailedPrecondition with the fix when the host cannot give us cgroups.
  static Result<std::unique_ptr<CgroupRoot>> Create(const CgroupOptions& options);
  ~CgroupRoot();  // removes faas-<pid> (instances must be gone)
  CgroupRoot(const CgroupRoot&) = delete;
  CgroupRoot& operator=(const CgroupRoot&) = delete;

  // A group for one instance (or zygote), below `function` when given.
  Result<std::unique_ptr<InstanceCgroup>> CreateInstance(
      const std::string& leaf, const CgroupLimits& limits,
      const std::shared_ptr<FunctionCgroup>& function = nullptr);

  // The level that holds one function's instances and zygote (f-<name>), made on first use: the
  // CPU scheduler then sees one entity per function, however many instances it runs, and
  // `cpu_cap_us` per `cpu_period_us` caps them together (0 = no cap), so one function cannot
  // take every CPU (measured: a fork bomb's neighbour's p99 20-50 ms -> 5-7 ms with a one-CPU
  // cap; docs/design/0005-function-cgroups.md). It lives while anyone holds it: the scheduler's
  // pool, each instance and zygote under it; the last one removes it.
  // `limits` also caps the pids and memory of the function's instances and zygotes together.
  // A level that is still alive (a redeploy) takes caps that are higher at once and keeps its
  // caps where the new ones are lower: instances of the old version, with the old limits, may
  // still run below it. The level is made anew, with exactly the new caps, once it is empty.
  Result<std::shared_ptr<FunctionCgroup>> Function(const std::string& name,
                                                   const FunctionLimits& limits);
  Result<std::shared_ptr<FunctionCgroup>> Function(const std::string& name, uint64_t cpu_cap_us,
                                                   uint64_t cpu_period_us = 100'000) {
    return Function(name, FunctionLimits{.cpu_cap_us = cpu_cap_us, .cpu_period_us = cpu_period_us});
  }

  // Spare groups, made ahead of need off the request path: creating a group costs a few ms
  // (a mkdir per v1 hierarchy, each allocating kernel state), setting a limit on an empty one
  // a few µs. KeepSpares(n, base) starts a thread that keeps empty groups with `base`'s limits
  // ready: up to two at the top level, and `n` shared out among the function levels that have
  // taken one (at least one each; a group cannot move to another parent); 0 stops it. TakeInstance
  // hands out a spare of `function`'s level, with `limits` written into it where they differ from
  // the base, or creates a group when none is ready. Leaves are named i-<N> by the root.
  void KeepSpares(std::size_t n, const CgroupLimits& base);
  Result<std::unique_ptr<InstanceCgroup>> TakeInstance(
      const CgroupLimits& limits, const std::shared_ptr<FunctionCgroup>& function = nullptr);
  // Spares ready now at `function`'s level (for tests and /metrics).
  std::size_t SpareCount(const FunctionCgroup* function = nullptr) const;
  CgroupMode mode() const { return mode_; }
  // Whether memory and pids limits are enforced (false on a v2 mount whose controllers are
  // bound to v1 hierarchies, as on the hybrid test host's `unified` mount).
  bool EnforcesLimits() const { return enforces_limits_; }
  // Why not, when not: which controller is missing where, and how to fix it ("" when enforced).
  const std::string& LimitsProblem() const { return limits_problem_; }
  // Directories of this daemon's tree (one per v1 hierarchy, or one on v2).
  const std::vector<std::string>& Dirs() const { return dirs_; }

 private:
  friend class FunctionCgroup;
  CgroupRoot() = default;
  void DropSpares(const FunctionCgroup* function);  // a function level is going away
  CgroupMode mode_ = CgroupMode::kV1;
  bool enforces_limits_ = false;
  std::string limits_problem_;
  // v1: controller -> (libcgroup name of our parent, directory); v2: one entry "".
  std::vector<std::pair<std::string, std::string>> parents_;  // {controller, relative name}
  std::vector<std::string> dirs_;
  struct Spares;
  std::unique_ptr<Spares> spares_;
  std::atomic<uint64_t> next_leaf_{0};
  std::mutex functions_mu_;
  std::map<std::string, std::weak_ptr<FunctionCgroup>> functions_;  // by directory name
};

class FunctionCgroup {
 public:
  ~FunctionCgroup();  // drops its spares and removes its directories (nothing is left under it)
  FunctionCgroup(const FunctionCgroup&) = delete;
  FunctionCgroup& operator=(const FunctionCgroup&) = delete;
  const std::string& Leaf() const { return leaf_; }  // "f-<name>"
  const std::vector<std::string>& Dirs() const { return dirs_; }

 private:
  friend class CgroupRoot;
  FunctionCgroup() = default;
  CgroupRoot* root_ = nullptr;  // outlives every function level
  std::string leaf_;
  std::vector<std::pair<std::string, std::string>> groups_;  // {controller, libcgroup name}
  std::vector<std::string> dirs_;
  FunctionLimits limits_;  // as written (guarded by the root's functions_mu_)
};

class InstanceCgroup {
 public:
  ~InstanceCgroup();  // KillAll, then remove the group(s); failures are logged
  InstanceCgroup(const InstanceCgroup&) = delete;
  InstanceCgroup& operator=(const InstanceCgroup&) = delete;

  // Open O_WRONLY|O_CLOEXEC fds of every cgroup.procs: a forked child writes "0" to each to
  // join before exec (async-signal-safe), so every byte it allocates is charged here.
  std::vector<int> ProcsFds() const;
  // Moves process `pid` with all its threads into the group (every cgroup.procs). For instances
  // forked by a zygote, moved before they get work; on v1, memory charged before the move stays
  // with the old group.
  Status Move(pid_t pid);
  // CPU time of everything in the group since creation (cpuacct.usage / cpu.stat usage_usec).
  Result<std::chrono::nanoseconds> CpuUsage() const;
  // How often the kernel OOM-killed inside this group (memory.oom_control / memory.events).
  uint64_t OomKills() const;
  // Peak memory use since creation or the last ResetPeakMemory (v1 memory.max_usage_in_bytes,
  // v2 memory.peak); 0 when unknown.
  uint64_t PeakMemory() const;
  // Starts a new peak window (v1 only; v2 keeps the lifetime peak).
  void ResetPeakMemory();
  // How often a fork failed at pids.max (pids.events "max").
  uint64_t PidsLimitHits() const;
  // SIGCONT then SIGKILL to every member, then lifts the group's CPU quota (a throttled task
  // cannot run to exit), until the group is empty (bounded at 5 s). Waits with a short backoff,
  // never by spinning: the dying tasks need the CPU the waiter would take.
  Status KillAll();
  // The same for every member but `keep` (the quota stays): e.g. whatever a zygote's faas_init
  // left running beside the zygote and its keeper.
  Status KillAllExcept(std::span<const pid_t> keep);
  // Writes the memory and pids limits (the group must be empty). Used on spares.
  Status SetLimits(const CgroupLimits& from, const CgroupLimits& to);
  const std::vector<std::string>& Dirs() const { return dirs_; }

 private:
  friend class CgroupRoot;
  InstanceCgroup() = default;
  std::shared_ptr<FunctionCgroup> parent_;  // destroyed last: the parent is removed after us
  CgroupMode mode_ = CgroupMode::kV1;
  std::vector<std::pair<std::string, std::string>> groups_;  // {controller, libcgroup name}
  std::vector<std::string> dirs_;
  std::vector<UniqueFd> procs_;
  std::string cpu_dir_, memory_dir_, pids_dir_, kill_dir_;
  std::string quota_file_;  // cpu.cfs_quota_us (v1) or cpu.max (v2); empty when not enforced
  // Kept open: every invocation reads them, and pread(2) on an open fd is one syscall where
  // open+read+close is three (each ~1-3 µs on these VMs).
  UniqueFd cpu_fd_, peak_fd_;
};

// "<controller>" -> path of the calling process's cgroup in that v1 hierarchy, or "" -> v2 path,
// parsed from /proc/self/cgroup (libcgroup 2.0.2 fails on the v2 line).
Result<std::vector<std::pair<std::string, std::string>>> ReadSelfCgroups();

}  // namespace faas::sandbox
