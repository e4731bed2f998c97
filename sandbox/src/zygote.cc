// The zygote's loop (docs/design/0003-zygote.md). A worker started with --zygote runs this after
// it has entered the whole jail, loaded the library and run faas_init. Each fork request is one
// byte with two fds attached: the new instance's channel and its log. The zygote clones a child
// into namespaces of its own (instance_jail.cc, docs/design/0008); the child takes the fds as fd 3
// and stdout/stderr, enters its instance jail and returns from ServeForks into the ordinary serve
// loop, already sandboxed and initialised. The zygote never returns: it reaps its children (it
// is PID 1 of the pid namespace, so orphans of instances come to it too) and reports each exit
// on its channel. Nothing here is trusted by the daemon: the child's host pid comes from the
// kernel (SCM_CREDENTIALS on the child's first frame), exit reports only word error messages.
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "faas/sandbox/channel.h"
#include "faas/sandbox/jail.h"
#include "faas/sandbox/worker.h"
#include "faas/v1/worker.pb.h"

namespace faas::sandbox {
namespace {

void OnChild(int) {}  // only interrupts ppoll; the loop reaps

// A whole frame (length + payload) for one send(2).
std::string Frame(const v1::WorkerResponse& msg) {
  std::string frame(kFrameHeaderBytes, '\0');
  msg.AppendToString(&frame);
  FillFrameHeader(&frame);  // a few bytes: always fits
  return frame;
}

// Exit reports are hints: when the daemon is not reading, drop them rather than block reaping.
void Report(int fd, const v1::WorkerResponse& msg, bool may_drop) {
  std::string frame = Frame(msg);
  if (may_drop) {
    // One send: a frame is either queued whole or not at all (unix stream sockets queue a
    // small write atomically or return EAGAIN).
    (void)::send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return;
  }
  if (!WriteFramed(fd, &frame).ok()) {
    std::_Exit(kExitChannelError);
  }
}

void ReapChildren(int fd) {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    v1::WorkerResponse msg;
    auto* exited = msg.mutable_exited();
    exited->set_pid(static_cast<uint32_t>(pid));
    exited->set_signaled(WIFSIGNALED(status));
    exited->set_value(WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    Report(fd, msg, /*may_drop=*/true);
  }
}

}  // namespace

void ServeForks(int channel_fd, const InstanceJail* jail) {
  // Every signal stays blocked here, and SIGCHLD is let in only inside ppoll, so an exit can
  // never slip in between reaping and waiting. Blocking the rest means no handler faas_init
  // installed (an alarm, a timer) ever runs function code in the zygote again; the children get
  // the mask faas_init left back.
  struct sigaction sa {};
  sa.sa_handler = OnChild;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NOCLDSTOP;
  sigset_t before;
  sigset_t all;
  sigfillset(&all);
  if (::sigaction(SIGCHLD, &sa, nullptr) != 0 || ::sigprocmask(SIG_BLOCK, &all, &before) != 0) {
    std::_Exit(kExitJail);
  }
  sigset_t waiting = all;
  sigdelset(&waiting, SIGCHLD);
  // Every child's first frame, built once: after fork each page written costs a copy-on-write
  // fault (expensive under virtualisation), so the child only reads this and sends it.
  v1::WorkerResponse ready_msg;
  ready_msg.mutable_ready()->set_ok(true);
  const std::string ready = Frame(ready_msg);
  for (;;) {
    ReapChildren(channel_fd);
    pollfd p{channel_fd, POLLIN, 0};
    if (::ppoll(&p, 1, nullptr, &waiting) <= 0) {
      continue;  // EINTR: a child ended
    }
    auto request = ReceiveWithFds(channel_fd, 2);
    if (!request.ok()) {
      // The daemon closed the channel: retire. As PID 1 of the namespace, our exit makes the
      // kernel kill whatever is left in it (the daemon only closes once no instance remains).
      std::_Exit(request.status().code() == StatusCode::kUnavailable ? 0 : kExitBadFrame);
    }
    auto& [op, fds] = *request;
    if (op != 'F') {
      std::_Exit(kExitBadFrame);
    }
    std::fflush(nullptr);  // nothing buffered may be written twice
    pid_t child = jail != nullptr ? CloneInstance() : ::fork();
    const int clone_error = child < 0 ? errno : 0;
    if (child == 0) {
      // The new instance: its channel on fd 3 (replacing the zygote's), its log on 1 and 2.
      if (::dup2(fds[0].Get(), channel_fd) < 0 || ::dup2(fds[1].Get(), 1) < 0 ||
          ::dup2(fds[1].Get(), 2) < 0) {
        std::_Exit(kExitNoChannel);
      }
      if (const char* failed = jail != nullptr ? EnterInstanceJail(*jail) : nullptr) {
        // The daemon sees no first frame, reports this from the log and retires the zygote.
        std::fprintf(stderr, "faas-worker: instance jail: %s: %s\n", failed,
                     strerrorname_np(errno));
        std::fflush(stderr);
        std::_Exit(kExitJail);
      }
      ::signal(SIGCHLD, SIG_DFL);
      ::sigprocmask(SIG_SETMASK, &before, nullptr);
      // The kernel stamps this frame with our pid (SCM_CREDENTIALS): the daemon learns who we
      // are from it, and moves us into our own cgroup before the first request.
      if (::send(channel_fd, ready.data(), ready.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(ready.size())) {
        std::_Exit(kExitChannelError);
      }
      return;  // fds close as the request goes out of scope
    }
    v1::WorkerResponse msg;
    msg.mutable_forked()->set_pid(child > 0 ? static_cast<uint32_t>(child) : 0);
    msg.mutable_forked()->set_error(clone_error);
    Report(channel_fd, msg, /*may_drop=*/false);
  }
}

}  // namespace faas::sandbox
