// The daemon's cgroup: CgroupRoot finds its own group (v1 or v2), delegates the controllers and
// makes the platform level and the function levels below it, and removes what a crashed daemon
// left. The spare pool is in cgroup_spares.cc, an instance's group in cgroup_instance.cc.
#include "faas/sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include <libcgroup.h>

#include "faas/base/log.h"

#include "cgroup_internal.h"

namespace faas::sandbox {
namespace {

constexpr long kCgroup2SuperMagic = 0x63677270;  // linux/magic.h CGROUP2_SUPER_MAGIC
const char* const kV1Controllers[] = {"memory", "pids", "cpu", "cpuacct"};

// libcgroup returns ECG* codes; ECGOTHER means "see cgroup_get_last_errno()".
Status CgError(int rc, const std::string& what) {
  std::string msg = what + ": " + cgroup_strerror(rc);
  if (rc == ECGOTHER) {
    msg += std::string(" (") + std::strerror(cgroup_get_last_errno()) + ")";
  }
  return FailedPreconditionError(msg);
}

}  // namespace

namespace cgroup_internal {

// Creates the v1 group `rel` (libcgroup's name; directory `dir`) of controller `ctrl`, with
// `values` written in this order when it is created. A failed create may still have made the
// directory (libcgroup 2.0.2 can leave it behind): callers record `dir` for removal either way.
Status CreateV1Group(const std::string& rel, const std::string& dir, const std::string& ctrl,
                     const std::vector<std::pair<std::string, std::string>>& values) {
  cgroup* cg = cgroup_new_cgroup(rel.c_str());
  cgroup_controller* c = cg == nullptr ? nullptr : cgroup_add_controller(cg, ctrl.c_str());
  if (c == nullptr) {
    cgroup_free(&cg);
    return InternalError("libcgroup: cannot build group " + rel);
  }
  for (const auto& [name, value] : values) {
    cgroup_add_value_string(c, name.c_str(), value.c_str());
  }
  int rc = cgroup_create_cgroup(cg, 0);
  cgroup_free(&cg);
  return rc == 0 ? OkStatus() : CgError(rc, "create " + dir);
}

Status WriteFile(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open", path);
  }
  if (::write(fd.Get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoError(errno, "write", path + " <- " + value);
  }
  return OkStatus();
}

std::string ReadSmall(const std::string& path) {
  auto r = ReadFile(path, 1u << 20);
  return r.ok() ? *r : std::string();
}

Status SetV1Memory(const std::string& dir, uint64_t bytes, bool grows) {
  const std::string limit = dir + "/memory.limit_in_bytes";
  const std::string memsw = dir + "/memory.memsw.limit_in_bytes";
  const bool has_memsw = ::access(memsw.c_str(), W_OK) == 0;
  const std::string value = std::to_string(bytes);
  if (has_memsw && grows) {
    FAAS_RETURN_IF_ERROR(WriteFile(memsw, value));
  }
  FAAS_RETURN_IF_ERROR(WriteFile(limit, value));
  if (has_memsw && !grows) {
    FAAS_RETURN_IF_ERROR(WriteFile(memsw, value));
  }
  return OkStatus();
}

// Value of "key N" in a flat keyed file (memory.events, cpu.stat, pids.events, oom_control).
uint64_t KeyedValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
  }
  return 0;
}

std::vector<pid_t> Members(const std::string& dir) {
  std::vector<pid_t> out;
  std::istringstream in(ReadSmall(dir + "/cgroup.procs"));
  pid_t p;
  while (in >> p) {
    out.push_back(p);
  }
  return out;
}

}  // namespace cgroup_internal

namespace {

using cgroup_internal::CreateV1Group;
using cgroup_internal::Members;
using cgroup_internal::ReadSmall;
using cgroup_internal::SetV1Memory;
using cgroup_internal::WriteFile;

// Memory and pids caps of a level (the platform's or a function's) in the group of `ctrl` at
// `dir` (v1: one controller per hierarchy; v2: ctrl "" and every file in one directory).
// 0 = no cap: the file is left as it is.
Status SetLevelCaps(const std::string& ctrl, const std::string& dir, uint64_t memory_bytes,
                    uint64_t pids_max) {
  if (memory_bytes != 0) {
    if (ctrl == "memory") {
      // A new group starts unlimited, so setting a limit shrinks it.
      const bool grows =
          memory_bytes >
          std::strtoull(ReadSmall(dir + "/memory.limit_in_bytes").c_str(), nullptr, 10);
      FAAS_RETURN_IF_ERROR(SetV1Memory(dir, memory_bytes, grows));
    } else if (ctrl.empty()) {
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/memory.max", std::to_string(memory_bytes)));
      if (::access((dir + "/memory.swap.max").c_str(), W_OK) == 0) {
        FAAS_RETURN_IF_ERROR(WriteFile(dir + "/memory.swap.max", "0"));
      }
    }
  }
  if (pids_max != 0 && (ctrl == "pids" || ctrl.empty())) {
    FAAS_RETURN_IF_ERROR(WriteFile(dir + "/pids.max", std::to_string(pids_max)));
  }
  return OkStatus();
}

// The larger of two caps, where 0 means none (the largest).
uint64_t Looser(uint64_t a, uint64_t b) {
  return a == 0 || b == 0 ? 0 : std::max(a, b);
}

// A number from a /proc file ("key: N kB" lines when `key` is given), 0 when unreadable.
uint64_t ProcNumber(const std::string& path, const std::string& key = "") {
  std::istringstream in(ReadSmall(path));
  if (key.empty()) {
    uint64_t v = 0;
    return in >> v ? v : 0;
  }
  std::string k;
  uint64_t v = 0;
  std::string unit;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
    std::getline(in, unit);
  }
  return 0;
}

// Kills everything under `dir` (recursively) and removes the directories bottom-up.
void RemoveTree(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') {
        RemoveTree(dir + "/" + e->d_name);
      }
    }
    ::closedir(d);
  }
  for (int i = 0; i < 500; ++i) {
    auto pids = Members(dir);
    if (pids.empty()) {
      break;
    }
    for (pid_t p : pids) {
      ::kill(p, SIGCONT);
      ::kill(p, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // bounded: 5 s in all
  }
  ::rmdir(dir.c_str());
}

// Removes faas-<pid> trees of daemons that are gone (a crashed daemon's leftovers).
void RemoveLeftovers(const std::string& parent_dir) {
  DIR* d = ::opendir(parent_dir.c_str());
  if (d == nullptr) {
    return;
  }
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("faas-", 0) != 0 ||
        name.find_first_not_of("0123456789", 5) != std::string::npos) {
      continue;
    }
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + 5));
    if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) {
      stale.push_back(parent_dir);
      stale.back().append("/").append(name);
    }
  }
  ::closedir(d);
  static auto log = log::Get("sandbox");
  for (const auto& dir : stale) {
    FAAS_LOG(log, warn, "cgroup.leftover_removed", {"dir", dir});
    RemoveTree(dir);
  }
}

std::once_flag g_cgroup_init;
int g_cgroup_init_rc = 0;

}  // namespace

uint64_t DefaultMaxMemoryBytes() {
  return ProcNumber("/proc/meminfo", "MemTotal:") * 1024 / 4 * 3;
}

uint64_t DefaultMaxPids() {
  const uint64_t pid_max = ProcNumber("/proc/sys/kernel/pid_max");
  const uint64_t threads_max = ProcNumber("/proc/sys/kernel/threads-max");
  return std::min(pid_max, threads_max) / 2;
}

Result<std::vector<std::pair<std::string, std::string>>> ReadSelfCgroups() {
  FAAS_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/cgroup"));
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // "4:memory:/process_api/abc", "1:cpu,cpuacct:/", "0::/user.slice"
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) {
      continue;
    }
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    if (controllers.empty()) {
      out.emplace_back("", path);
      continue;
    }
    std::istringstream cs(controllers);
    std::string c;
    while (std::getline(cs, c, ',')) {
      out.emplace_back(c, path);
    }
  }
  return out;
}

Result<std::unique_ptr<CgroupRoot>> CgroupRoot::Create(const CgroupOptions& options) {
  std::unique_ptr<CgroupRoot> root(new CgroupRoot());
  CgroupMode mode = CgroupMode::kV1;
  if (options.mode) {
    mode = *options.mode;
  } else {
    struct statfs fs {};
    if (::statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == kCgroup2SuperMagic) {
      mode = CgroupMode::kV2;
    }
  }
  root->mode_ = mode;
  FAAS_ASSIGN_OR_RETURN(auto self, ReadSelfCgroups());
  std::string leaf = "faas-" + std::to_string(::getpid());

  if (mode == CgroupMode::kV2) {
    std::string own;
    for (const auto& [c, p] : self) {
      if (c.empty()) {
        own = p;
      }
    }
    std::string own_dir = options.v2_mount + (own == "/" ? "" : own);
    RemoveLeftovers(own_dir);
    std::string dir = own_dir + "/" + leaf;
    // Limits need memory, pids and cpu delegated to our subtree.
    std::string avail = ReadSmall(own_dir + "/cgroup.controllers");
    std::istringstream listed(avail);
    std::vector<std::string> have;
    for (std::string c; listed >> c;) {
      have.push_back(c);
    }
    std::vector<std::string> missing;
    for (const char* c : {"memory", "pids", "cpu"}) {
      if (std::find(have.begin(), have.end(), c) == have.end()) {
        missing.emplace_back(c);
      }
    }
    const bool have_all = missing.empty();
    if (!have_all) {
      std::string names;
      for (std::size_t i = 0; i < missing.size(); ++i) {
        names += (i == 0 ? "" : i + 1 == missing.size() ? " and " : ", ") + missing[i];
      }
      // The controllers a cgroup has are those its parent enables in its subtree_control.
      const std::string parent_dir =
          own == "/" ? options.v2_mount : own_dir.substr(0, own_dir.rfind('/'));
      avail.erase(avail.find_last_not_of(" \n") + 1);
      root->limits_problem_ =
          "cgroup v2 at " + options.v2_mount + " cannot limit memory and pids: the " + names +
          " controller" + (missing.size() == 1 ? " is" : "s are") + " not available to " + own_dir +
          " (its cgroup.controllers lists: " + (avail.empty() ? "nothing" : avail) +
          "). To fix: enable memory, pids and cpu in " + parent_dir +
          "/cgroup.subtree_control (echo '+memory +pids +cpu' > " + parent_dir +
          "/cgroup.subtree_control), or run faasd under systemd with Delegate=yes; where "
          "they are bound to cgroup v1 hierarchies (a v1/v2 hybrid host), use --cgroup-mode v1";
    }
    if (have_all && !WriteFile(own_dir + "/cgroup.subtree_control", "+memory +pids +cpu").ok()) {
      // "No internal processes": move ourselves into a leaf first, then delegate.
      std::string sup = own_dir + "/" + leaf + "-daemon";
      if (::mkdir(sup.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "mkdir", sup);
      }
      FAAS_RETURN_IF_ERROR(WriteFile(sup + "/cgroup.procs", "0"));
      FAAS_RETURN_IF_ERROR(WriteFile(own_dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir", dir);
    }
    root->parents_.emplace_back("", dir);
    root->dirs_.push_back(dir);  // from here on the destructor removes it
    if (have_all) {
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
      FAAS_RETURN_IF_ERROR(SetLevelCaps("", dir, options.max_memory_bytes, options.max_pids));
    }
    root->enforces_limits_ = have_all;
    return root;
  }

  std::call_once(g_cgroup_init, [] { g_cgroup_init_rc = cgroup_init(); });
  if (g_cgroup_init_rc != 0) {
    return CgError(g_cgroup_init_rc, "cgroup_init (are the v1 controllers mounted?)");
  }
  std::map<std::string, std::string> dir_of;  // mount dir -> first controller using it
  for (const char* ctrl : kV1Controllers) {
    char* mnt = nullptr;
    int rc = cgroup_get_subsys_mount_point(ctrl, &mnt);
    if (rc != 0) {
      return CgError(rc, std::string("controller ") + ctrl + " is not mounted");
    }
    std::string mount(mnt);
    std::free(mnt);
    std::string own = "/";
    for (const auto& [c, p] : self) {
      if (c == ctrl) {
        own = p;
      }
    }
    std::string rel = (own == "/" ? "" : own) + "/" + leaf;
    std::string dir = mount + rel;
    if (dir_of.count(dir) != 0) {
      continue;  // co-mounted with an earlier controller (e.g. cpu,cpuacct)
    }
    dir_of[dir] = ctrl;
    RemoveLeftovers(mount + (own == "/" ? "" : own));
    cgroup* cg = cgroup_new_cgroup(rel.c_str());
    if (cg == nullptr || cgroup_add_controller(cg, ctrl) == nullptr) {
      return InternalError("libcgroup: cannot build group " + rel);
    }
    int crc = cgroup_create_cgroup(cg, 0);
    cgroup_free(&cg);
    if (crc != 0) {
      return CgError(crc, "create " + dir);
    }
    root->parents_.emplace_back(ctrl, rel);
    root->dirs_.push_back(dir);  // from here on the destructor removes it
    if (std::string(ctrl) == "memory") {
      // On v1 a parent's memory limit counts its children only with use_hierarchy (always on
      // since Linux 5.x, where the file reads 1; older kernels inherit the parent's setting).
      // It can be set while the group has no children: now.
      const std::string file = dir + "/memory.use_hierarchy";
      if (std::atoi(ReadSmall(file).c_str()) != 1) {
        (void)WriteFile(file, "1");  // checked below
        if (std::atoi(ReadSmall(file).c_str()) != 1) {
          return FailedPreconditionError(
              file +
              " is not 1 and cannot be set: memory limits of the platform and function "
              "levels would not count what runs below them");
        }
      }
    }
    FAAS_RETURN_IF_ERROR(SetLevelCaps(ctrl, dir, options.max_memory_bytes, options.max_pids));
  }
  root->enforces_limits_ = true;
  return root;
}

CgroupRoot::~CgroupRoot() {
  KeepSpares(0, {});
  for (const auto& dir : dirs_) {
    RemoveTree(dir);
  }
}

namespace {
// A directory name for a function: its name when it is plainly safe (deploy already allows only
// [a-z0-9_-]), else a hash of it.
std::string FunctionLeaf(const std::string& name) {
  bool plain =
      !name.empty() && name.size() <= 100 && name[0] != '.' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
      });
  if (plain) {
    return "f-" + name;
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : name) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "f-x%016llx", static_cast<unsigned long long>(h));
  return buf;
}
}  // namespace

Result<std::shared_ptr<FunctionCgroup>> CgroupRoot::Function(const std::string& name,
                                                             const FunctionLimits& limits) {
  const uint64_t cpu_cap_us = limits.cpu_cap_us;
  const uint64_t cpu_period_us = limits.cpu_period_us;
  const std::string leaf = FunctionLeaf(name);
  std::lock_guard lock(functions_mu_);
  if (auto it = functions_.find(leaf); it != functions_.end()) {
    if (auto live = it->second.lock()) {
      // A redeploy: raise the caps now; lower ones wait for a new level (see the header).
      FunctionLimits& have = live->limits_;
      const uint64_t memory = Looser(have.memory_bytes, limits.memory_bytes);
      const uint64_t pids = Looser(have.pids_max, limits.pids_max);
      if (memory != have.memory_bytes || pids != have.pids_max) {
        const bool v2 = mode_ == CgroupMode::kV2;
        for (std::size_t i = 0; i < live->dirs_.size() && (!v2 || enforces_limits_); ++i) {
          const std::string ctrl = v2 ? std::string() : live->groups_[i].first;
          // 0 (no cap) where the old cap was a number: "max" is what the kernel takes.
          if (memory == 0 && have.memory_bytes != 0) {
            FAAS_RETURN_IF_ERROR(SetLevelCaps(ctrl, live->dirs_[i], UINT64_MAX >> 1, 0));
          }
          if (pids == 0 && have.pids_max != 0 && (v2 || ctrl == "pids")) {
            FAAS_RETURN_IF_ERROR(WriteFile(live->dirs_[i] + "/pids.max", "max"));
          }
          FAAS_RETURN_IF_ERROR(SetLevelCaps(ctrl, live->dirs_[i],
                                            memory != have.memory_bytes ? memory : 0,
                                            pids != have.pids_max ? pids : 0));
        }
        have.memory_bytes = memory;
        have.pids_max = pids;
      }
      return live;
    }
  }
  std::shared_ptr<FunctionCgroup> f(new FunctionCgroup());
  f->root_ = this;
  f->leaf_ = leaf;
  f->limits_ = limits;
  const std::string quota = cpu_cap_us == 0 ? std::string("-1") : std::to_string(cpu_cap_us);
  if (mode_ == CgroupMode::kV2) {
    std::string dir = dirs_[0] + "/" + leaf;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir", dir);
    }
    f->dirs_.push_back(dir);  // from here on the destructor removes it
    if (enforces_limits_) {
      FAAS_RETURN_IF_ERROR(WriteFile(
          dir + "/cpu.max",
          (cpu_cap_us == 0 ? std::string("max") : quota) + " " + std::to_string(cpu_period_us)));
      FAAS_RETURN_IF_ERROR(SetLevelCaps("", dir, limits.memory_bytes, limits.pids_max));
      // Instances below get their own limits: delegate the controllers one level further.
      FAAS_RETURN_IF_ERROR(WriteFile(dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
    }
  } else {
    for (std::size_t i = 0; i < parents_.size(); ++i) {
      const auto& [ctrl, parent_rel] = parents_[i];
      std::string rel = parent_rel;
      rel.append("/").append(leaf);
      std::string dir = dirs_[i];
      dir.append("/").append(leaf);
      std::vector<std::pair<std::string, std::string>> values;
      if (ctrl == "cpu") {
        values = {{"cpu.cfs_period_us", std::to_string(cpu_period_us)},
                  {"cpu.cfs_quota_us", quota}};
      }
      Status made = CreateV1Group(rel, dir, ctrl, values);
      f->groups_.emplace_back(ctrl, rel);
      f->dirs_.push_back(dir);
      FAAS_RETURN_IF_ERROR(made);
      FAAS_RETURN_IF_ERROR(SetLevelCaps(ctrl, dir, limits.memory_bytes, limits.pids_max));
    }
  }
  functions_[leaf] = f;
  return f;
}

FunctionCgroup::~FunctionCgroup() {
  root_->DropSpares(this);
  static auto log = log::Get("sandbox");
  std::lock_guard lock(root_->functions_mu_);
  auto it = root_->functions_.find(leaf_);
  if (it != root_->functions_.end() && !it->second.expired()) {
    return;  // a new level of the same name took over the directories before we got here
  }
  if (it != root_->functions_.end()) {
    root_->functions_.erase(it);
  }
  for (const auto& dir : dirs_) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      FAAS_LOG(log, err, "cgroup.remove_failed", {"dir", dir}, {"errno", errno});
    }
  }
}

}  // namespace faas::sandbox
