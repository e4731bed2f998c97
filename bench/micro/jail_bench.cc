// Cost of each jail step per instance, each measured as fork + step + _exit + waitpid in a
// fresh child, next to the bare fork + _exit + waitpid baseline in the same run
// (docs/benchmarks.md).
//   build/bench/faas_jail_bench --benchmark_repetitions=10
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
//   (one command line)
// Needs root (namespaces, mounts, cgroups, setresuid).
#include <dlfcn.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>

#include "faas/sandbox/cgroup.h"
#include "faas/sandbox/jail.h"
#include "faas/scheduler/scheduler.h"

namespace {

using faas::sandbox::JailSpec;

const std::string kLib = std::string(FAAS_BENCH_FUNCTIONS_DIR) + "/libhello.so";

JailSpec Spec() {
  JailSpec s;
  s.uid = s.gid = faas::sandbox::FunctionUid("bench");
  s.library = kLib;
  return s;
}

// Forks; the child runs `step` and exits 0 if it succeeded. Fails the benchmark otherwise.
template <typename F>
void ForkRun(benchmark::State& state, F step) {
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::_exit(step() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("step failed in the child (not root?)");
      return;
    }
  }
}

void BM_Fork(benchmark::State& state) {
  ForkRun(state, [] { return true; });
}
BENCHMARK(BM_Fork)->UseRealTime();

// This daemon-like process's cgroup root, or nullptr after marking the benchmark skipped.
std::unique_ptr<faas::sandbox::CgroupRoot> RootOrSkip(benchmark::State& state) {
  auto root = faas::sandbox::CgroupRoot::Create({});
  if (!root.ok()) {
    state.SkipWithError(root.status().message().c_str());
    return nullptr;
  }
  return std::move(*root);
}

void BM_Cgroup(benchmark::State& state) {
  auto root = RootOrSkip(state);
  if (root == nullptr) {
    return;
  }
  int n = 0;
  for (auto _ : state) {
    // Create the instance group, fork a child that joins it, wait, remove the group.
    auto cg = root->CreateInstance("bench-" + std::to_string(n++), {});
    if (!cg.ok()) {
      state.SkipWithError(cg.status().message().c_str());
      return;
    }
    auto fds = (*cg)->ProcsFds();
    pid_t pid = ::fork();
    if (pid == 0) {
      for (int fd : fds) {
        if (::write(fd, "0", 1) != 1) {
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    ::waitpid(pid, nullptr, 0);
  }
}
BENCHMARK(BM_Cgroup)->UseRealTime();

// Creating an instance group on demand vs taking a spare made ahead (with a different memory
// limit written into it), without the join: what CgroupRoot::KeepSpares moves off a cold start.
void BM_CgroupCreate(benchmark::State& state) {
  auto root = RootOrSkip(state);
  if (root == nullptr) {
    return;
  }
  int n = 0;
  for (auto _ : state) {
    auto cg = root->CreateInstance("create-" + std::to_string(n++), {});
    state.PauseTiming();  // removal happens off the request path too
    cg->reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_CgroupCreate)->UseRealTime();

void BM_CgroupTakeSpare(benchmark::State& state) {
  auto root = RootOrSkip(state);
  if (root == nullptr) {
    return;
  }
  faas::sandbox::CgroupLimits base;
  root->KeepSpares(4, base);
  faas::sandbox::CgroupLimits other = base;
  other.memory_bytes = 64u << 20;
  for (auto _ : state) {
    state.PauseTiming();  // the refill thread runs between cold starts
    while (root->SpareCount() < 4) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    state.ResumeTiming();
    auto cg = root->TakeInstance(other);
    state.PauseTiming();
    cg->reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_CgroupTakeSpare)->UseRealTime();

void BM_Namespaces(benchmark::State& state) {
  ForkRun(state, [] {
    return faas::sandbox::UnshareNamespaces(true).ok() && faas::sandbox::BringUpLoopback().ok();
  });
}
BENCHMARK(BM_Namespaces)->UseRealTime();

void BM_PidNamespace(benchmark::State& state) {
  ForkRun(state, [] {
    if (::unshare(CLONE_NEWPID) != 0) {
      return false;
    }
    pid_t child = ::fork();
    if (child == 0) {
      ::_exit(0);
    }
    return ::waitpid(child, nullptr, 0) == child;
  });
}
BENCHMARK(BM_PidNamespace)->UseRealTime();

void BM_Filesystem(benchmark::State& state) {
  ForkRun(state, [] {
    return ::unshare(CLONE_NEWNS) == 0 && faas::sandbox::BuildRootFilesystem(kLib, 16u << 20).ok();
  });
}
BENCHMARK(BM_Filesystem)->UseRealTime();

void BM_RlimitsFdsPrivileges(benchmark::State& state) {
  ForkRun(state, [] {
    JailSpec s = Spec();
    return faas::sandbox::SetHardLimits(s).ok() && faas::sandbox::CloseInheritedFds().ok() &&
           faas::sandbox::DropPrivileges(s.uid, s.gid).ok();
  });
}
BENCHMARK(BM_RlimitsFdsPrivileges)->UseRealTime();

void BM_Seccomp(benchmark::State& state) {
  ForkRun(state, [] { return faas::sandbox::InstallSeccomp().ok(); });
}
BENCHMARK(BM_Seccomp)->UseRealTime();

void BM_Load(benchmark::State& state) {
  ForkRun(state, [] {
    void* h = ::dlopen(kLib.c_str(), RTLD_NOW | RTLD_LOCAL);
    return h != nullptr && ::dlsym(h, "faas_handle") != nullptr;
  });
}
BENCHMARK(BM_Load)->UseRealTime();

// Everything the worker does before serving: the whole jail (including the pid namespace fork)
// and the load, in one child.
void BM_FullJailAndLoad(benchmark::State& state) {
  ForkRun(state, [] {
    auto lib = faas::sandbox::EnterJail(Spec());
    return lib.ok() && ::dlopen(lib->c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr;
  });
}
BENCHMARK(BM_FullJailAndLoad)->UseRealTime();

// A complete instance start as the scheduler does it: cgroup, Boost.Process spawn of
// faas-worker, jail, load, init, ready frame, then stop.
void BM_InstanceStart(benchmark::State& state) {
  auto root = RootOrSkip(state);
  if (root == nullptr) {
    return;
  }
  faas::scheduler::SchedulerOptions opts;
  opts.worker_path = std::string(FAAS_BENCH_BIN_DIR) + "/faas-worker";
  opts.cgroups = root.get();
  faas::scheduler::Scheduler sched(opts);
  faas::scheduler::FunctionSpec spec{"bench", 1, kLib, {}};
  for (auto _ : state) {
    faas::Status s = sched.Probe(spec);
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
}
BENCHMARK(BM_InstanceStart)->UseRealTime();

}  // namespace
