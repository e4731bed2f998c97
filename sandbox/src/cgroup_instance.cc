// One instance's cgroup (InstanceCgroup): created below the platform or a function level with
// its limits, then moved into, read for metering (CPU, peak memory, OOM kills, pids-limit hits),
// emptied with SIGKILL and removed.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "faas/base/log.h"
#include "faas/sandbox/cgroup.h"

#include "cgroup_internal.h"

namespace faas::sandbox {
namespace {

using cgroup_internal::CreateV1Group;
using cgroup_internal::KeyedValue;
using cgroup_internal::Members;
using cgroup_internal::ReadSmall;
using cgroup_internal::SetV1Memory;
using cgroup_internal::WriteFile;

// Reads a small cgroup file from offset 0 of an open fd (cgroup files regenerate on each read).
Result<std::string> PreadAll(int fd) {
  char buf[4096];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n < 0) {
    return ErrnoError(errno, "pread", "cgroup file");
  }
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

Status InstanceCgroup::SetLimits(const CgroupLimits& from, const CgroupLimits& to) {
  if (to.cpu_quota_us != from.cpu_quota_us || to.cpu_period_us != from.cpu_period_us) {
    return InvalidArgumentError("a spare cgroup's CPU quota is fixed at creation");
  }
  bool v2 = mode_ == CgroupMode::kV2;
  if (to.memory_bytes != from.memory_bytes && !memory_dir_.empty()) {
    if (v2) {
      FAAS_RETURN_IF_ERROR(WriteFile(memory_dir_ + "/memory.max", std::to_string(to.memory_bytes)));
    } else {
      FAAS_RETURN_IF_ERROR(
          SetV1Memory(memory_dir_, to.memory_bytes, to.memory_bytes > from.memory_bytes));
    }
  }
  if (to.pids_max != from.pids_max && !pids_dir_.empty()) {
    FAAS_RETURN_IF_ERROR(WriteFile(pids_dir_ + "/pids.max", std::to_string(to.pids_max)));
  }
  return OkStatus();
}

Result<std::unique_ptr<InstanceCgroup>> CgroupRoot::CreateInstance(
    const std::string& leaf, const CgroupLimits& limits,
    const std::shared_ptr<FunctionCgroup>& function) {
  std::unique_ptr<InstanceCgroup> inst(new InstanceCgroup());
  inst->mode_ = mode_;
  inst->parent_ = function;
  const std::vector<std::string>& base_dirs = function ? function->dirs_ : dirs_;
  const auto& base_groups = function ? function->groups_ : parents_;
  if (mode_ == CgroupMode::kV2) {
    std::string dir = base_dirs[0] + "/" + leaf;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return ErrnoError(errno, "mkdir", dir);
    }
    inst->dirs_.push_back(dir);  // from here on the destructor removes it
    if (enforces_limits_) {
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/memory.max", std::to_string(limits.memory_bytes)));
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/memory.swap.max", "0"));
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/pids.max", std::to_string(limits.pids_max)));
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/cpu.max", std::to_string(limits.cpu_quota_us) + " " +
                                                           std::to_string(limits.cpu_period_us)));
      inst->quota_file_ = dir + "/cpu.max";
    }
    inst->cpu_dir_ = inst->memory_dir_ = inst->pids_dir_ = inst->kill_dir_ = dir;
  } else {
    for (std::size_t i = 0; i < base_groups.size(); ++i) {
      const auto& [ctrl, parent_rel] = base_groups[i];
      std::string rel = parent_rel;
      rel.append("/").append(leaf);
      std::string dir = base_dirs[i];
      dir.append("/").append(leaf);
      std::vector<std::pair<std::string, std::string>> values;
      if (ctrl == "memory") {
        values = {{"memory.limit_in_bytes", std::to_string(limits.memory_bytes)},
                  {"memory.swappiness", "0"}};
        inst->memory_dir_ = dir;
      } else if (ctrl == "pids") {
        values = {{"pids.max", std::to_string(limits.pids_max)}};
        inst->pids_dir_ = dir;
        inst->kill_dir_ = dir;
      } else if (ctrl == "cpu") {
        values = {{"cpu.cfs_period_us", std::to_string(limits.cpu_period_us)},
                  {"cpu.cfs_quota_us", std::to_string(limits.cpu_quota_us)}};
        inst->quota_file_ = dir + "/cpu.cfs_quota_us";
      } else if (ctrl == "cpuacct") {
        inst->cpu_dir_ = dir;
      }
      Status made = CreateV1Group(rel, dir, ctrl, values);
      inst->dirs_.push_back(dir);  // removed by the destructor even when the create failed
      FAAS_RETURN_IF_ERROR(made);
      // Swap off: memsw exists only with swap accounting; it must be >= limit_in_bytes.
      std::string memsw = dir + "/memory.memsw.limit_in_bytes";
      if (ctrl == "memory" && ::access(memsw.c_str(), W_OK) == 0) {
        FAAS_RETURN_IF_ERROR(WriteFile(memsw, std::to_string(limits.memory_bytes)));
      }
    }
  }
  std::string cpu_file =
      inst->cpu_dir_ + (mode_ == CgroupMode::kV2 ? "/cpu.stat" : "/cpuacct.usage");
  inst->cpu_fd_.Reset(::open(cpu_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!inst->cpu_fd_.Valid()) {
    return ErrnoError(errno, "open", cpu_file);
  }
  if (!inst->memory_dir_.empty()) {
    std::string peak = inst->memory_dir_ +
                       (mode_ == CgroupMode::kV2 ? "/memory.peak" : "/memory.max_usage_in_bytes");
    inst->peak_fd_.Reset(::open(peak.c_str(), O_RDWR | O_CLOEXEC));  // may not exist: optional
  }
  for (const auto& dir : inst->dirs_) {
    std::string procs = dir + "/cgroup.procs";
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.Valid()) {
      return ErrnoError(errno, "open", procs);
    }
    inst->procs_.push_back(std::move(fd));
  }
  return inst;
}

InstanceCgroup::~InstanceCgroup() {
  Status s = KillAll();
  static auto log = log::Get("sandbox");
  if (!s.ok()) {
    FAAS_LOG(log, err, "cgroup.kill_failed", {"error", s.message()});
  }
  procs_.clear();
  cpu_fd_.Reset();
  peak_fd_.Reset();
  for (const auto& dir : dirs_) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      FAAS_LOG(log, err, "cgroup.remove_failed", {"dir", dir}, {"errno", errno});
    }
  }
}

std::vector<int> InstanceCgroup::ProcsFds() const {
  std::vector<int> out;
  for (const auto& fd : procs_) {
    out.push_back(fd.Get());
  }
  return out;
}

Status InstanceCgroup::Move(pid_t pid) {
  const std::string text = std::to_string(pid);
  for (std::size_t i = 0; i < procs_.size(); ++i) {
    ssize_t n = ::write(procs_[i].Get(), text.data(), text.size());
    if (n != static_cast<ssize_t>(text.size())) {
      return ErrnoError(errno, "write", dirs_[i] + "/cgroup.procs");
    }
  }
  return OkStatus();
}

Result<std::chrono::nanoseconds> InstanceCgroup::CpuUsage() const {
  FAAS_ASSIGN_OR_RETURN(std::string text, PreadAll(cpu_fd_.Get()));
  if (mode_ == CgroupMode::kV2) {
    return std::chrono::nanoseconds(
        std::chrono::microseconds(static_cast<int64_t>(KeyedValue(text, "usage_usec"))));
  }
  return std::chrono::nanoseconds(std::strtoll(text.c_str(), nullptr, 10));
}

uint64_t InstanceCgroup::OomKills() const {
  if (memory_dir_.empty()) {
    return 0;
  }
  return mode_ == CgroupMode::kV2
             ? KeyedValue(ReadSmall(memory_dir_ + "/memory.events"), "oom_kill")
             : KeyedValue(ReadSmall(memory_dir_ + "/memory.oom_control"), "oom_kill");
}

uint64_t InstanceCgroup::PeakMemory() const {
  if (!peak_fd_.Valid()) {
    return 0;
  }
  auto v = PreadAll(peak_fd_.Get());
  return v.ok() ? std::strtoull(v->c_str(), nullptr, 10) : 0;
}

void InstanceCgroup::ResetPeakMemory() {
  if (mode_ == CgroupMode::kV1 && peak_fd_.Valid()) {
    // Best effort: a failed reset only widens the peak window to the instance's lifetime.
    if (::pwrite(peak_fd_.Get(), "0", 1, 0) != 1) {
      return;
    }
  }
}

uint64_t InstanceCgroup::PidsLimitHits() const {
  return pids_dir_.empty() ? 0 : KeyedValue(ReadSmall(pids_dir_ + "/pids.events"), "max");
}

Status InstanceCgroup::KillAll() {
  return KillAllExcept({});
}

Status InstanceCgroup::KillAllExcept(std::span<const pid_t> keep) {
  if (kill_dir_.empty()) {
    return OkStatus();
  }
  if (keep.empty() && mode_ == CgroupMode::kV2 &&
      ::access((kill_dir_ + "/cgroup.kill").c_str(), W_OK) == 0) {
    FAAS_RETURN_IF_ERROR(WriteFile(kill_dir_ + "/cgroup.kill", "1"));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto pause = std::chrono::microseconds(20);
  bool quota_lifted = quota_file_.empty() || !keep.empty();  // the kept ones live on
  for (;;) {
    auto pids = Members(kill_dir_);
    std::erase_if(pids,
                  [&](pid_t p) { return std::find(keep.begin(), keep.end(), p) != keep.end(); });
    if (pids.empty()) {
      return OkStatus();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceededError(kill_dir_ + " still has " + std::to_string(pids.size()) +
                                   " processes after SIGKILL");
    }
    // A process can fork between our read and our kill; loop until the group stays empty.
    for (pid_t p : pids) {
      ::kill(p, SIGCONT);
      ::kill(p, SIGKILL);
    }
    if (!quota_lifted) {
      // A task that used up its CPU quota stays off the CPU until the next period (up to
      // 100 ms), and a killed task must run to exit. Every member has SIGKILL pending now, so
      // none returns to user space: the lifted quota buys only the kernel's exit path. Best
      // effort: a failed write only leaves the wait as long as the quota makes it.
      quota_lifted = true;
      (void)WriteFile(quota_file_, mode_ == CgroupMode::kV2 ? "max" : "-1");
    }
    // The kernel does not notify v1 cgroups of becoming empty. Poll with a growing pause: an
    // exit takes microseconds, a hundred dying threads take milliseconds, and a spinning waiter
    // would take the CPU the dying tasks need (measured: hello's p99 next to a killed
    // busy-threads function).
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

}  // namespace faas::sandbox
