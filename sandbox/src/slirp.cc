// One slirp4netns process per outbound worker (docs/design/0007-outbound-network.md): it runs as
// root in the host's namespaces, joins the worker's network namespace only to create and
// configure tap0, then sandboxes itself (--enable-sandbox: own mount namespace, capabilities
// dropped; --enable-seccomp) and relays the namespace's connections through host sockets.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "faas/sandbox/network.h"

namespace faas::sandbox {
namespace {

// A copy of `fd` at 10 or above (close-on-exec), so the child's dup2s onto 0..5 never clobber a
// source that happened to sit there.
Result<UniqueFd> High(int fd) {
  UniqueFd out(::fcntl(fd, F_DUPFD_CLOEXEC, 10));
  if (!out.Valid()) {
    return ErrnoError(errno, "fcntl(F_DUPFD_CLOEXEC)");
  }
  return out;
}

std::string ReadAll(int fd) {
  std::string out(2048, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

bool Exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

Result<Slirp> Slirp::Start(const std::string& slirp_path, pid_t pid, Clock::time_point deadline) {
  if (slirp_path.empty()) {
    return FailedPreconditionError(
        "network outbound needs slirp4netns, which is not installed (apt-get install "
        "slirp4netns); the function is refused rather than run without its egress filter");
  }
  // Pin the target and open its namespace; the pidfd proves the pid still named that process
  // after the open (a recycled pid could otherwise hand slirp someone else's namespace).
  UniqueFd target(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!target.Valid()) {
    return ErrnoError(errno, "pidfd_open", "outbound worker " + std::to_string(pid));
  }
  UniqueFd netns(
      ::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns.Valid() || Exited(target.Get())) {
    return UnavailableError("the outbound worker " + std::to_string(pid) + " is gone");
  }
  struct stat theirs {
  }, ours{};
  if (::fstat(netns.Get(), &theirs) != 0 || ::stat("/proc/self/ns/net", &ours) != 0 ||
      (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)) {
    // Never give slirp (which would add tap0 and a default route) the host's own namespace.
    return FailedPreconditionError("the outbound worker is not in a network namespace of its own");
  }

  int ready[2], quit[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2");
  }
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(quit, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2");
  }
  UniqueFd quit_r(quit[0]), quit_w(quit[1]);
  UniqueFd log(::memfd_create("slirp4netns-log", MFD_CLOEXEC));
  if (!log.Valid()) {
    return ErrnoError(errno, "memfd_create");
  }
  FAAS_ASSIGN_OR_RETURN(UniqueFd c_ready, High(ready_w.Get()));
  FAAS_ASSIGN_OR_RETURN(UniqueFd c_quit, High(quit_r.Get()));
  FAAS_ASSIGN_OR_RETURN(UniqueFd c_netns, High(netns.Get()));
  FAAS_ASSIGN_OR_RETURN(UniqueFd c_log, High(log.Get()));

  // The child gets exactly: stdin /dev/null, stdout+stderr the log, 3 ready, 4 exit, 5 netns.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, c_log.Get(), 1);
  posix_spawn_file_actions_adddup2(&fa, c_log.Get(), 2);
  posix_spawn_file_actions_adddup2(&fa, c_ready.Get(), 3);
  posix_spawn_file_actions_adddup2(&fa, c_quit.Get(), 4);
  posix_spawn_file_actions_adddup2(&fa, c_netns.Get(), 5);
  posix_spawn_file_actions_addclosefrom_np(&fa, 6);
  std::vector<std::string> args = {
      slirp_path,
      "--configure",  // address 10.0.2.100/24, default route via 10.0.2.2, link up
      "--mtu=65520",
      "--disable-host-loopback",  // 10.0.2.2 must not lead to the host's 127.0.0.1
      "--disable-dns",            // no forwarder to the host's resolver at 10.0.2.3
      "--enable-sandbox",         // after setup: own mount namespace, capabilities dropped
      "--enable-seccomp",
      "--ready-fd=3",
      "--exit-fd=4",
      "--netns-type=path",
      "/proc/self/fd/5",
      kSlirpTap};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t child = -1;
  int err = ::posix_spawn(&child, slirp_path.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    return ErrnoError(err, "posix_spawn", slirp_path);
  }
  Slirp s;
  s.pid_ = child;
  s.exit_fd_ = std::move(quit_w);
  s.pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  if (!s.pidfd_.Valid()) {
    int e = errno;
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return ErrnoError(e, "pidfd_open", "slirp4netns " + std::to_string(child));
  }
  // Only slirp holds the write end of `ready` and the read end of `quit` now.
  ready_w.Reset();
  c_ready.Reset();
  quit_r.Reset();
  c_quit.Reset();

  // Ready: slirp writes "1" once tap0 is configured. EOF: it exited; its stderr says why.
  char byte = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{ready_r.Get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return DeadlineExceededError("slirp4netns did not configure the network in time: " +
                                   ReadAll(log.Get()));
    }
    ssize_t r = ::read(ready_r.Get(), &byte, 1);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r != 1 || byte != '1') {
      { Slirp dead = std::move(s); }  // kill and reap it before reading its last words
      return UnavailableError("slirp4netns failed: " + ReadAll(log.Get()));
    }
    return s;
  }
}

Slirp::~Slirp() {
  if (!pidfd_.Valid()) {
    return;
  }
  exit_fd_.Reset();  // its --exit-fd: slirp exits on its own; the kill makes sure at once
  ::syscall(SYS_pidfd_send_signal, pidfd_.Get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.Get()), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  pidfd_.Reset();
}

}  // namespace faas::sandbox
