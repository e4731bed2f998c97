// CPU time of another process, read from the kernel (never reported by the worker).
//
//   FAAS_ASSIGN_OR_RETURN(auto before, faas::metering::ProcessCpuTime(pid));
//   ... invocation ...
//   FAAS_ASSIGN_OR_RETURN(auto after, faas::metering::ProcessCpuTime(pid));
//
// Uses the process CPU clock (clock_getcpuclockid(3)): user + system time of all threads, in ns.
// It still works for a zombie (dead, not yet reaped), so a crashed invocation is measured too.
// The per-instance cgroup counter replaces this when the sandbox issue lands (it also covers
// children of the instance).
#pragma once

#include <sys/types.h>

#include <chrono>

#include "faas/base/status.h"

namespace faas::metering {

// NotFound when the process no longer exists (already reaped).
Result<std::chrono::nanoseconds> ProcessCpuTime(pid_t pid);

// Billed milliseconds: ceil(cpu_ns / 1 ms) (docs/metering.md).
inline int64_t BilledMillis(std::chrono::nanoseconds cpu) {
  int64_t ns = cpu.count();
  return ns <= 0 ? 0 : (ns + 999'999) / 1'000'000;
}

}  // namespace faas::metering
