// Spawning workers with Boost.Process. This is the only translation unit that includes it
// (35 s to compile). Boost.Process 1.74 forks (not vfork), and its terminate() leaves a zombie:
// we never use bp::child::terminate/wait; the child is detached at once and owned by a pidfd.
#include "worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

namespace faas::scheduler {
namespace {

namespace bp = boost::process;

// Runs in the forked child before execve: moves the channel to fd 3 and the log memfd to
// stdout/stderr. Async-signal-safe calls only.
struct ChildFds : bp::extend::handler {
  int channel;
  int log;
  const std::vector<int>* cgroups;
  bool batch;
  ChildFds(int c, int l, const std::vector<int>* g, bool b)
      : channel(c), log(l), cgroups(g), batch(b) {}
  template <typename Executor>
  void on_exec_setup(Executor& exec) const {
    // Join the instance's cgroups first, so everything from exec on is charged there.
    for (int fd : *cgroups) {
      if (::write(fd, "0", 1) != 1) {
        exec.set_error(std::error_code(errno, std::system_category()), "join cgroup");
        return;
      }
    }
    // If the machine runs out of memory, a worker goes before faasd (which lowers its own
    // score where it may): +500, inherited by every instance a zygote forks. Raising it needs
    // no privilege. Where root has CAP_SYS_RESOURCE the kernel also makes 500 the worker's floor;
    // without it the floor is faasd's own score (so a worker never goes below faasd).
    int oom = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom < 0 || ::write(oom, "500", 3) != 3) {
      exec.set_error(std::error_code(errno, std::system_category()), "oom_score_adj");
      return;
    }
    ::close(oom);
    // SchedulerOptions::instance_sched_batch. Lowering the policy needs no privilege; the
    // worker's keeper and the function inherit it.
    sched_param none{};
    if (batch && ::sched_setscheduler(0, SCHED_BATCH, &none) != 0) {
      exec.set_error(std::error_code(errno, std::system_category()), "SCHED_BATCH");
      return;
    }
    // Dup to high numbers first, so a source that already sits on 1..3 is not clobbered.
    int c = ::fcntl(channel, F_DUPFD_CLOEXEC, 10);
    int l = ::fcntl(log, F_DUPFD_CLOEXEC, 10);
    // Not O_CLOEXEC: were 0 closed in faasd, `null` would be 0, dup2(0, 0) would keep the flag
    // and the worker would start without stdin. Any other copy is closed by the worker (> 3).
    int null = ::open("/dev/null", O_RDONLY);  // NOLINT(android-cloexec-open)
    if (c < 0 || l < 0 || null < 0 || ::dup2(null, 0) < 0 || ::dup2(l, 1) < 0 || ::dup2(l, 2) < 0 ||
        ::dup2(c, 3) < 0) {
      exec.set_error(std::error_code(errno, std::system_category()), "worker fd setup");
      return;
    }
    // dup2 leaves 0..3 without FD_CLOEXEC; the worker closes whatever else leaked past 3.
  }
};

// The worker asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), and "parent" there means
// the *thread* that forked it (prctl(2)): a worker forked on a connection thread would be killed
// when that connection closes. So every fork happens on this one thread, which lives as long as
// the process (leaked on purpose: it must outlive static destructors).
class SpawnerThread {
 public:
  static SpawnerThread& Get() {
    static SpawnerThread* t = new SpawnerThread();
    return *t;
  }
  // Runs `fn` on the spawner thread and waits for it.
  void Run(const std::function<void()>& fn) {
    std::packaged_task<void()> task(fn);
    auto done = task.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    done.get();
  }

 private:
  SpawnerThread() {
    std::thread([this] {
      for (;;) {
        std::packaged_task<void()> task;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return !queue_.empty(); });
          task = std::move(queue_.front());
          queue_.pop_front();
        }
        task();
      }
    }).detach();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> queue_;
};

}  // namespace

std::string ExitInfo::Describe() const {
  if (unknown) {
    return "ended (its zygote did not report how)";
  }
  if (!signaled) {
    return "exited with status " + std::to_string(value);
  }
  const char* abbrev = ::sigabbrev_np(value);
  return "killed by signal " + std::to_string(value) + " (SIG" + (abbrev ? abbrev : "?") + ")";
}

Result<WorkerProcess> WorkerProcess::Spawn(const SpawnSpec& spec) {
  // Exec'd with an empty environment and from /: the worker runs as root until it has entered
  // its jail, so nothing the function supplies (env) and nothing of the daemon's (cwd in the
  // data dir) may reach it. The function's env arrives on the channel (WorkerEnv).
  bp::environment env;
  std::error_code ec;
  pid_t pid = -1;
  std::vector<std::string> args = {"--library", spec.library_path, "--parent-pid",
                                   std::to_string(::getpid())};
  args.insert(args.end(), spec.jail_args.begin(), spec.jail_args.end());
  SpawnerThread::Get().Run([&] {
    bp::child child(
        bp::exe = spec.worker_path, bp::args = args, bp::env = env, bp::start_dir = "/",
        ChildFds(spec.channel_fd, spec.log_fd, &spec.cgroup_procs_fds, spec.sched_batch), ec);
    if (!ec) {
      pid = child.id();
      child.detach();  // we own the process through its pidfd from here on
    }
  });
  if (ec) {
    return UnavailableError("spawn " + spec.worker_path + ": " + ec.message());
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.Valid()) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return ErrnoError(err, "pidfd_open", std::to_string(pid));
  }
  return WorkerProcess(pid, std::move(pidfd));
}

WorkerProcess WorkerProcess::Adopt(pid_t pid, UniqueFd pidfd, ExitLookup exit_lookup) {
  WorkerProcess p(pid, std::move(pidfd));
  p.exit_lookup_ = std::move(exit_lookup);
  return p;
}

bool WorkerProcess::WaitAdopted(int timeout_ms) {
  pollfd p{pidfd_.Get(), POLLIN, 0};  // readable once the process has exited
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    return false;
  }
  reaped_ = true;
  // The zygote reaps its child at once; give its report a moment to arrive.
  auto report = exit_lookup_(Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : 50));
  exit_ = report ? *report : ExitInfo{.unknown = true};
  return true;
}

WorkerProcess::~WorkerProcess() {
  if (pidfd_.Valid() && !reaped_) {
    Kill();
    Wait();
  }
}

void WorkerProcess::Kill() {
  if (pidfd_.Valid() && !reaped_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.Get(), SIGKILL, nullptr, 0);
  }
}

ExitInfo WorkerProcess::Wait() {
  if (exit_lookup_ && pidfd_.Valid()) {
    while (!reaped_) {
      WaitAdopted(-1);
    }
    return exit_;
  }
  while (!reaped_) {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.Get()), &info, WEXITED) != 0) {
      if (errno == EINTR) {
        continue;
      }
      reaped_ = true;  // ECHILD: somebody else reaped it; nothing more to learn
      break;
    }
    reaped_ = true;
    exit_.signaled = info.si_code != CLD_EXITED;
    exit_.value = info.si_status;
  }
  return exit_;
}

bool WorkerProcess::Gone() const {
  if (reaped_ || !pidfd_.Valid()) {
    return true;
  }
  pollfd p{pidfd_.Get(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

bool WorkerProcess::WaitFor(std::chrono::milliseconds timeout, ExitInfo* out) {
  if (!reaped_ && exit_lookup_) {
    if (!WaitAdopted(static_cast<int>(timeout.count()))) {
      return false;
    }
  } else if (!reaped_) {
    pollfd p{pidfd_.Get(), POLLIN, 0};  // a pidfd polls readable once the process has exited
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0) {
      return false;
    }
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.Get()), &info, WEXITED | WNOHANG) != 0) {
      if (errno == EINTR) {
        return false;
      }
      reaped_ = true;
    } else if (info.si_pid == 0) {
      return false;  // still running
    } else {
      reaped_ = true;
      exit_.signaled = info.si_code != CLD_EXITED;
      exit_.value = info.si_status;
    }
  }
  *out = exit_;
  return true;
}

}  // namespace faas::scheduler
