#include "faas/metering/cpu_clock.h"

#include <time.h>

#include <cerrno>
#include <string>

namespace faas::metering {

Result<std::chrono::nanoseconds> ProcessCpuTime(pid_t pid) {
  clockid_t clock{};
  int rc = ::clock_getcpuclockid(pid, &clock);
  if (rc != 0) {
    return rc == ESRCH ? NotFoundError("process " + std::to_string(pid) + " is gone")
                       : ErrnoError(rc, "clock_getcpuclockid", std::to_string(pid));
  }
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) {
    int err = errno;
    return err == EINVAL || err == ESRCH
               ? NotFoundError("process " + std::to_string(pid) + " is gone")
               : ErrnoError(err, "clock_gettime", std::to_string(pid));
  }
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace faas::metering
