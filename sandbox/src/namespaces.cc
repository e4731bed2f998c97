// New mount, IPC, UTS and (unless --network outbound) network namespaces for the worker.
// The pid namespace needs a fork and is the scheduler's business (see docs/sandbox.md).
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

// A new network namespace has only `lo`, and it is down (BUILD-NOTES §4); bring it up so a
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

}  // namespace faas::sandbox
