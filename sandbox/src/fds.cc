// Only stdio (0-2, the instance log) and the channel (3) survive into the function (and, in a
// zygote, its private procfs at 4: instance_jail.cc).
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {

Status CloseInheritedFds(int last_kept) {
  const unsigned first = static_cast<unsigned>(last_kept) + 1;
  if (::syscall(SYS_close_range, first, ~0U, 0) != 0) {
    return ErrnoError(errno, "close_range", std::to_string(first) + "..");
  }
  return OkStatus();
}

}  // namespace faas::sandbox
