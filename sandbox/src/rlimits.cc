// Hard resource limits (soft = hard, so the function cannot raise them back).
#include <sys/resource.h>

#include <cerrno>
#include <string>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {
namespace {

Status Set(int resource, const char* name, uint64_t value) {
  rlimit lim{value, value};
  if (::setrlimit(resource, &lim) != 0) {
    return ErrnoError(errno, "setrlimit", name);
  }
  return OkStatus();
}

}  // namespace

Status SetHardLimits(const JailSpec& spec) {
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_CORE, "RLIMIT_CORE", 0));  // no core files of function memory
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_NOFILE, "RLIMIT_NOFILE", spec.nofile));
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_FSIZE, "RLIMIT_FSIZE", spec.tmp_bytes));
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_STACK, "RLIMIT_STACK", spec.stack_bytes));
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 64u << 10));
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0));
  // Tasks of the function's uid on the whole host (every instance, zygote and keeper of the
  // function shares it), checked by the kernel at each fork and clone once we are that uid: a
  // backstop above the pids cgroups, which are the limit (scheduler: NprocFor). Root ignores
  // it, so it binds from DropPrivileges on; the clone into an instance's own user namespace
  // does not escape it (the count is kept per uid up the chain of user namespaces, and the
  // capabilities that lift it are those of the initial namespace).
  FAAS_RETURN_IF_ERROR(Set(RLIMIT_NPROC, "RLIMIT_NPROC", spec.nproc));
  // Address space: the function's memory plus 1 GiB for code, thread stacks and allocator
  // reservations. The memory cgroup enforces resident memory; this stops absurd mappings.
  return Set(RLIMIT_AS, "RLIMIT_AS", spec.memory_bytes + (1ull << 30));
}

}  // namespace faas::sandbox
