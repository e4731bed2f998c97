#include "faas/base/thread.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace faas {
namespace {

// struct sched_attr, first version (SCHED_ATTR_SIZE_VER0, Linux 3.14). <linux/sched/types.h>
// cannot be included beside glibc's <sched.h> (both define sched_param), and glibc before 2.41
// has no wrapper.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};
static_assert(sizeof(SchedAttr) == 48);

}  // namespace

void NameThisThread(std::string_view name) {
  char buf[16] = {};
  name.copy(buf, std::min<std::size_t>(name.size(), sizeof buf - 1));
  ::pthread_setname_np(::pthread_self(), buf);
}

void UseShortSlices(std::chrono::microseconds slice) {
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = static_cast<int32_t>(::getpriority(PRIO_PROCESS, 0));  // keep its nice value
  attr.sched_runtime = static_cast<uint64_t>(std::chrono::nanoseconds(slice).count());
  (void)::syscall(SYS_sched_setattr, 0, &attr, 0);
}

}  // namespace faas
