// New mount, IPC, UTS and (unless --network outbound) network namespaces for the worker.
// The pid namespace needs a fork: see EnterPidNamespace.
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/jail.h"

namespace faas::sandbox {

Status UnshareNamespaces(bool new_network) {
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (new_network ? CLONE_NEWNET : 0);
  if (::unshare(flags) != 0) {
    return ErrnoError(errno, "unshare", "mount|ipc|uts|net namespaces");
  }
  static constexpr char kHostname[] = "faas";
  if (::sethostname(kHostname, sizeof kHostname - 1) != 0) {
    return ErrnoError(errno, "sethostname");
  }
  return OkStatus();
}

// A new network namespace has only `lo`, and it is down; bring it up so a
// function can talk to itself over 127.0.0.1.
Status BringUpLoopback() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.Valid()) {
    return ErrnoError(errno, "socket", "loopback setup");
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.Get(), SIOCGIFFLAGS, &ifr) != 0) {
    return ErrnoError(errno, "ioctl(SIOCGIFFLAGS)", "lo");
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.Get(), SIOCSIFFLAGS, &ifr) != 0) {
    return ErrnoError(errno, "ioctl(SIOCSIFFLAGS)", "lo");
  }
  return OkStatus();
}

Status EnterPidNamespace(uid_t uid, gid_t gid) {
  if (::unshare(CLONE_NEWPID) != 0) {
    return ErrnoError(errno, "unshare", "pid namespace");
  }
  pid_t child = ::fork();  // the child is PID 1 of the new namespace
  if (child < 0) {
    return ErrnoError(errno, "fork", "pid namespace init");
  }
  if (child == 0) {
    // Die with the keeper. (If the keeper is killed before this line, the cgroup kill that
    // follows every instance's end still catches us.)
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
      return ErrnoError(errno, "prctl(PR_SET_PDEATHSIG)");
    }
    return OkStatus();
  }
  // The keeper: outside the namespace, it only waits for the function's process and exits the
  // same way, so the daemon sees the function's own exit status or signal. It holds nothing
  // (no fds), runs as the function's uid under the same seccomp filter, and cannot be seen
  // from inside the namespace.
  ::syscall(SYS_close_range, 0, ~0U, 0);
  const rlimit no_core{0, 0};  // it holds nothing worth a core file, and must not write one
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0 || !DropPrivileges(uid, gid).ok() ||
      !InstallSeccomp().ok()) {
    ::kill(child, SIGKILL);
    ::_exit(kKeeperSetupFailed);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      ::_exit(kKeeperSetupFailed);
    }
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(sig);
    ::_exit(128 + sig);
  }
  ::_exit(WEXITSTATUS(status));
}

}  // namespace faas::sandbox
