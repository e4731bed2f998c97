// Per-instance cgroups on this host's cgroup v1 hierarchies and on a cgroup v2 mount (the
// `unified` mount here; a pure v2 host at /sys/fs/cgroup), with real processes.
#include "faas/sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "faas/base/unique_fd.h"

namespace faas::sandbox {
namespace {

using std::chrono::milliseconds;

struct ModeCase {
  const char* name;
  CgroupMode mode;
  const char* v2_mount;
};

class Cgroup : public ::testing::TestWithParam<ModeCase> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "creating cgroups needs root";
    }
    const ModeCase& c = GetParam();
    if (c.mode == CgroupMode::kV2 &&
        ::access((std::string(c.v2_mount) + "/cgroup.procs").c_str(), F_OK) != 0) {
      GTEST_SKIP() << "no cgroup2 mount at " << c.v2_mount;
    }
    auto root = CgroupRoot::Create({.mode = c.mode, .v2_mount = c.v2_mount});
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = std::move(*root);
  }

  // Forks a child that joins `cg` (as the spawner does), then runs `body` and exits.
  template <typename F>
  pid_t SpawnInto(const InstanceCgroup& cg, F body) {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (int fd : cg.ProcsFds()) {
        if (::write(fd, "0", 1) != 1) {
          ::_exit(90);
        }
      }
      body();
      ::_exit(0);
    }
    return pid;
  }

  std::unique_ptr<CgroupRoot> root_;
};

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

TEST_P(Cgroup, NestsUnderOurOwnCgroupAndCleansUp) {
  std::vector<std::string> dirs = root_->Dirs();
  ASSERT_FALSE(dirs.empty());
  for (const auto& d : dirs) {
    EXPECT_TRUE(Exists(d)) << d;
    EXPECT_NE(d.find("/faas-" + std::to_string(::getpid())), std::string::npos) << d;
  }
  std::vector<std::string> inst_dirs;
  {
    auto inst = root_->CreateInstance("t-clean", {});
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    inst_dirs = (*inst)->Dirs();
    for (const auto& d : inst_dirs) {
      EXPECT_TRUE(Exists(d)) << d;
    }
  }
  for (const auto& d : inst_dirs) {
    EXPECT_FALSE(Exists(d)) << d << " outlived its instance";
  }
  root_.reset();
  for (const auto& d : dirs) {
    EXPECT_FALSE(Exists(d)) << d << " outlived the root";
  }
}

TEST_P(Cgroup, SparesAreMadeAheadAndTakeTheirLimitsWhenTaken) {
  CgroupLimits base;
  base.memory_bytes = 128u << 20;
  base.pids_max = 64;
  root_->KeepSpares(2, base);
  auto wait_for = [&](std::size_t n) {
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline && root_->SpareCount() != n;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return root_->SpareCount();
  };
  ASSERT_EQ(wait_for(2), 2u);
  CgroupLimits want = base;
  want.memory_bytes = 48u << 20;
  want.pids_max = 17;
  std::vector<std::string> dirs;
  {
    auto inst = root_->TakeInstance(want);
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    dirs = (*inst)->Dirs();
    if (GetParam().mode == CgroupMode::kV1 || root_->EnforcesLimits()) {
      bool v2 = GetParam().mode == CgroupMode::kV2;
      for (const auto& d : dirs) {
        if (Exists(d + (v2 ? "/memory.max" : "/memory.limit_in_bytes"))) {
          std::ifstream f(d + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
          uint64_t v = 0;
          f >> v;
          EXPECT_EQ(v, want.memory_bytes) << d;
        }
        if (Exists(d + "/pids.max")) {
          std::ifstream f(d + "/pids.max");
          uint64_t v = 0;
          f >> v;
          EXPECT_EQ(v, 17u) << d;
        }
      }
    }
    // A child joins the spare like any group, and the pool refills behind it.
    pid_t pid = SpawnInto(**inst, [] {});
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(wait_for(2), 2u);
  }
  for (const auto& d : dirs) {
    EXPECT_FALSE(Exists(d)) << d << " outlived its instance";
  }
  root_->KeepSpares(0, {});
  EXPECT_EQ(root_->SpareCount(), 0u);
}

TEST_P(Cgroup, CountsTheCpuOfEveryMember) {
  auto inst = root_->CreateInstance("t-cpu", {});
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  pid_t pid = SpawnInto(**inst, [] {
    timespec start{}, now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    do {
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
             100000000L);
  });
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto cpu = (*inst)->CpuUsage();
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_GE(*cpu, milliseconds(100));
  EXPECT_LT(*cpu, milliseconds(1000));
}

TEST_P(Cgroup, KillAllEmptiesTheGroupIncludingGrandchildren) {
  auto inst = root_->CreateInstance("t-kill", {});
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = SpawnInto(**inst, [&] {
    if (::fork() == 0) {
      ::setsid();
      if (::fork() == 0) {
        for (;;) {
          ::pause();
        }
      }
      for (;;) {
        ::pause();
      }
    }
    if (::write(ready[1], "x", 1) != 1) {
      ::_exit(91);
    }
    for (;;) {
      ::pause();
    }
  });
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  Status s = (*inst)->KillAll();
  EXPECT_TRUE(s.ok()) << s.ToString();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  std::string procs = (*inst)->Dirs().front() + "/cgroup.procs";
  auto left = ReadFile(procs);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, "");
}

TEST_P(Cgroup, EnforcesMemoryAndPidsLimitsWhereControllersAreAvailable) {
  if (!root_->EnforcesLimits()) {
    GTEST_SKIP() << "memory/pids controllers are not available on this cgroup2 mount "
                    "(they are bound to v1 hierarchies on this host)";
  }
  CgroupLimits limits;
  limits.memory_bytes = 32u << 20;
  limits.pids_max = 4;
  auto inst = root_->CreateInstance("t-limits", limits);
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  // pids: 3 more forks fit beside the child itself, the rest fail.
  pid_t pid = SpawnInto(**inst, [] {
    int ok = 0;
    for (int i = 0; i < 10; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
      }
      ok += p > 0 ? 1 : 0;
    }
    ::_exit(ok);
  });
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_GT((*inst)->PidsLimitHits(), 0u);
  ASSERT_TRUE((*inst)->KillAll().ok());
  // memory: touching 256 MiB in a 32 MiB group is OOM-killed.
  pid_t hog = SpawnInto(**inst, [] {
    for (int i = 0; i < 256; ++i) {
      volatile char* p = static_cast<volatile char*>(::malloc(1 << 20));
      for (int j = 0; j < (1 << 20); j += 4096) {
        p[j] = 1;
      }
    }
  });
  ASSERT_EQ(::waitpid(hog, &status, 0), hog);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_GT((*inst)->OomKills(), 0u);
}

// The first line of the CPU quota file in one of `dirs` ("" when none has one): v1
// cpu.cfs_quota_us, v2 cpu.max.
std::string CpuQuota(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    for (const char* file : {"/cpu.cfs_quota_us", "/cpu.max"}) {
      if (Exists(d + file)) {
        std::ifstream f(d + file);
        std::string line;
        std::getline(f, line);
        return line;
      }
    }
  }
  return "";
}

bool Below(const std::vector<std::string>& children, const std::vector<std::string>& parents) {
  for (const auto& c : children) {
    bool found = false;
    for (const auto& p : parents) {
      found = found || c.rfind(p + "/", 0) == 0;
    }
    if (!found) {
      return false;
    }
  }
  return !children.empty();
}

TEST_P(Cgroup, AFunctionLevelHoldsAndCapsItsInstancesAndGoesWithTheLastOne) {
  const bool limits = GetParam().mode == CgroupMode::kV1 || root_->EnforcesLimits();
  auto level = root_->Function("fn-a", 150'000);
  ASSERT_TRUE(level.ok()) << level.status().ToString();
  const std::vector<std::string> level_dirs = (*level)->Dirs();
  ASSERT_TRUE(Below(level_dirs, root_->Dirs()));
  for (const auto& d : level_dirs) {
    EXPECT_EQ(d.substr(d.rfind('/') + 1), "f-fn-a");
  }
  if (limits) {  // the function's instances together: 1.5 CPUs
    std::string quota = CpuQuota(level_dirs);
    EXPECT_EQ(quota.substr(0, quota.find(' ')), "150000");
  }
  auto again = root_->Function("fn-a", 150'000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), level->get()) << "one level per function while it lives";

  auto inst = root_->CreateInstance("t-level", {}, *level);
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  EXPECT_TRUE(Below((*inst)->Dirs(), level_dirs));
  level->reset();
  again->reset();
  for (const auto& d : level_dirs) {
    EXPECT_TRUE(Exists(d)) << d << " went while an instance was in it";
  }
  inst->reset();
  for (const auto& d : level_dirs) {
    EXPECT_FALSE(Exists(d)) << d << " outlived its last instance";
  }

  // A name that is not plainly a directory name gets a hashed one, still inside our tree.
  auto odd = root_->Function("../../evil", 0);
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  EXPECT_TRUE(Below((*odd)->Dirs(), root_->Dirs()));
  EXPECT_EQ((*odd)->Leaf().rfind("f-x", 0), 0u) << (*odd)->Leaf();
  if (limits) {
    std::string quota = CpuQuota((*odd)->Dirs());  // 0: no cap
    EXPECT_TRUE(quota == "-1" || quota.rfind("max", 0) == 0) << quota;
  }
}

TEST_P(Cgroup, EachFunctionLevelKeepsItsOwnSpares) {
  CgroupLimits base;
  base.memory_bytes = 128u << 20;
  base.pids_max = 64;
  root_->KeepSpares(1, base);
  auto level = root_->Function("fn-b", 0);
  ASSERT_TRUE(level.ok()) << level.status().ToString();
  auto wait_for = [&](const FunctionCgroup* f, std::size_t n) {
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline && root_->SpareCount(f) != n;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return root_->SpareCount(f);
  };
  ASSERT_EQ(wait_for(nullptr, 1), 1u);
  // A level gets spares once it has started an instance: deployed functions that are never
  // invoked cost no groups.
  EXPECT_EQ(root_->SpareCount(level->get()), 0u);
  {
    auto first = root_->TakeInstance(base, *level);  // made on demand
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_TRUE(Below((*first)->Dirs(), (*level)->Dirs()));
    ASSERT_EQ(wait_for(level->get(), 1), 1u) << "the level's pool fills after its first use";
    auto inst = root_->TakeInstance(base, *level);  // a spare
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    EXPECT_TRUE(Below((*inst)->Dirs(), (*level)->Dirs()));
    EXPECT_EQ(wait_for(level->get(), 1), 1u) << "the level's pool refills";
  }
  std::vector<std::string> level_dirs = (*level)->Dirs();
  level->reset();  // its spares go with it
  for (const auto& d : level_dirs) {
    EXPECT_FALSE(Exists(d)) << d;
  }
  EXPECT_EQ(root_->SpareCount(), 1u);
  root_->KeepSpares(0, {});
}

// A file's first line ("" when missing).
std::string FirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The directory of `dirs` that holds `file` ("" when none does).
std::string DirWith(const std::vector<std::string>& dirs, const std::string& file) {
  for (const auto& d : dirs) {
    if (Exists(d + "/" + file)) {
      return d;
    }
  }
  return "";
}

// Forks in a child of `cg` until 10 forks were tried; returns how many succeeded.
template <typename Spawn>
int ForksThatFit(Spawn spawn, const InstanceCgroup& cg) {
  pid_t pid = spawn(cg, [] {
    int ok = 0;
    pid_t kids[10];
    for (int i = 0; i < 10; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
      }
      if (p > 0) {
        kids[ok++] = p;
      }
    }
    // Reaped here: a task counts against pids.max until it is reaped, not only until it exits.
    for (int i = 0; i < ok; ++i) {
      ::kill(kids[i], SIGKILL);
      ::waitpid(kids[i], nullptr, 0);
    }
    ::_exit(ok);
  });
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

// The whole platform (faas-<pid>, from faasd's --max-pids/--max-memory) and each function's
// level (f-<name>) cap the pids and memory of everything below them, not only the CPU; and the
// caps are real: forks below a level fail at its pids.max even when the instance allows more.
TEST_P(Cgroup, PlatformAndFunctionLevelsCapPidsAndMemory) {
  if (GetParam().mode == CgroupMode::kV2 && !root_->EnforcesLimits()) {
    GTEST_SKIP() << "memory/pids controllers are not available on this cgroup2 mount "
                    "(they are bound to v1 hierarchies on this host)";
  }
  const bool v2 = GetParam().mode == CgroupMode::kV2;
  const std::string mem_file = v2 ? "memory.max" : "memory.limit_in_bytes";
  root_.reset();  // one root per daemon pid
  auto made = CgroupRoot::Create({.mode = GetParam().mode,
                                  .v2_mount = GetParam().v2_mount,
                                  .max_memory_bytes = 512u << 20,
                                  .max_pids = 6});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  root_ = std::move(*made);
  const std::string top_pids = DirWith(root_->Dirs(), "pids.max");
  const std::string top_mem = DirWith(root_->Dirs(), mem_file);
  ASSERT_FALSE(top_pids.empty());
  ASSERT_FALSE(top_mem.empty());
  EXPECT_EQ(FirstLine(top_pids + "/pids.max"), "6");
  EXPECT_EQ(FirstLine(top_mem + "/" + mem_file), std::to_string(512u << 20));
  if (!v2) {
    EXPECT_EQ(FirstLine(top_mem + "/memory.use_hierarchy"), "1");
  }

  auto level =
      root_->Function("fn-caps", {.cpu_cap_us = 0, .memory_bytes = 200u << 20, .pids_max = 4});
  ASSERT_TRUE(level.ok()) << level.status().ToString();
  const std::string f_pids = DirWith((*level)->Dirs(), "pids.max");
  const std::string f_mem = DirWith((*level)->Dirs(), mem_file);
  EXPECT_EQ(FirstLine(f_pids + "/pids.max"), "4");
  EXPECT_EQ(FirstLine(f_mem + "/" + mem_file), std::to_string(200u << 20));

  auto spawn = [this](const InstanceCgroup& cg, auto body) { return SpawnInto(cg, body); };
  {
    auto inst = root_->CreateInstance("t-flevel", {}, *level);  // pids_max 64 of its own
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    EXPECT_EQ(ForksThatFit(spawn, **inst), 3) << "the function level's 4 tasks bind";
    ASSERT_TRUE((*inst)->KillAll().ok());
  }
  {
    auto inst = root_->CreateInstance("t-platform", {});  // at the top level
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    EXPECT_EQ(ForksThatFit(spawn, **inst), 5) << "the platform's 6 tasks bind";
    ASSERT_TRUE((*inst)->KillAll().ok());
  }
  // A redeploy may raise a live level's caps; they never drop below what its instances, still
  // running with the old limits, were promised.
  auto raised =
      root_->Function("fn-caps", {.cpu_cap_us = 0, .memory_bytes = 300u << 20, .pids_max = 5});
  ASSERT_TRUE(raised.ok());
  EXPECT_EQ(FirstLine(f_pids + "/pids.max"), "5");
  EXPECT_EQ(FirstLine(f_mem + "/" + mem_file), std::to_string(300u << 20));
  auto lowered =
      root_->Function("fn-caps", {.cpu_cap_us = 0, .memory_bytes = 100u << 20, .pids_max = 2});
  ASSERT_TRUE(lowered.ok());
  EXPECT_EQ(FirstLine(f_pids + "/pids.max"), "5");
  EXPECT_EQ(FirstLine(f_mem + "/" + mem_file), std::to_string(300u << 20));
}

// Where memory and pids cannot be limited (a cgroup2 mount without those controllers, like this
// hybrid host's `unified`), the root says which controller is missing where, and the fix.
TEST_P(Cgroup, SaysWhyLimitsAreNotEnforced) {
  if (root_->EnforcesLimits()) {
    EXPECT_EQ(root_->LimitsProblem(), "");
    return;
  }
  const std::string why = root_->LimitsProblem();
  EXPECT_NE(why.find("memory"), std::string::npos) << why;
  EXPECT_NE(why.find("pids"), std::string::npos) << why;
  EXPECT_NE(why.find(std::string(GetParam().v2_mount) + "/cgroup.subtree_control"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("Delegate=yes"), std::string::npos) << why;
}

TEST(CgroupDefaults, PlatformCapsAreAFractionOfTheMachine) {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t total_kib = 0;
  meminfo >> key >> total_kib;
  ASSERT_EQ(key, "MemTotal:");
  const uint64_t mem = DefaultMaxMemoryBytes();
  EXPECT_EQ(mem, total_kib * 1024 / 4 * 3);
  const uint64_t pid_max = std::stoull(FirstLine("/proc/sys/kernel/pid_max"));
  const uint64_t threads_max = std::stoull(FirstLine("/proc/sys/kernel/threads-max"));
  EXPECT_EQ(DefaultMaxPids(), std::min(pid_max, threads_max) / 2);
}

TEST_P(Cgroup, RemovesLeftoversOfADeadDaemon) {
  // A faas-<pid> tree whose daemon is gone (pid 999999 is above the default pid_max... or dead).
  std::string parent = root_->Dirs().front();
  parent = parent.substr(0, parent.rfind('/'));
  std::string stale = parent + "/faas-999999";
  ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0) << stale;
  ASSERT_EQ(::mkdir((stale + "/i-0").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((stale + "/f-fn").c_str(), 0755), 0);  // a function level, with an instance
  ASSERT_EQ(::mkdir((stale + "/f-fn/i-1").c_str(), 0755), 0);
  root_.reset();
  const ModeCase& c = GetParam();
  auto again = CgroupRoot::Create({.mode = c.mode, .v2_mount = c.v2_mount});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(Exists(stale)) << stale << " was not cleaned up";
}

INSTANTIATE_TEST_SUITE_P(Modes, Cgroup,
                         ::testing::Values(ModeCase{"v1", CgroupMode::kV1, "/sys/fs/cgroup"},
                                           ModeCase{"v2", CgroupMode::kV2,
                                                    "/sys/fs/cgroup/unified"}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace faas::sandbox
