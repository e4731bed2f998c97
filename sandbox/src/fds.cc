// Only stdio (0-2, the instance log) and the channel (3) survive into the function.
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {

Status CloseInheritedFds() {
  if (::syscall(SYS_close_range, 4, ~0U, 0) != 0) {
    return ErrnoError(errno, "close_range", "4..");
  }
  return OkStatus();
}

}  // namespace faas::sandbox
