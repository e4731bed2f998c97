// uname(2) and sysinfo(2) answered with a sanitised view instead of the host's.
//
// Both are harmless calls that many libraries make (sysconf(_SC_PHYS_PAGES) is sysinfo), but
// their answers describe the host: the kernel release (what exploit to try), total and free RAM,
// load and the number of processes (what the neighbours are doing). The seccomp filter traps them
// (SCMP_ACT_TRAP): the kernel never runs them and sends SIGSYS instead, whose handler here fills
// in fixed values and sets the return value. The real call never happens, so a function that
// replaces this handler gains nothing: it only loses the emulation (and dies of SIGSYS).
#include <signal.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <ucontext.h>

#include <cerrno>
#include <cstring>

#include "faas/sandbox/jail.h"

#if !defined(__x86_64__)
#error "the SIGSYS handler reads x86-64 registers; port OnTrappedSyscall first"
#endif

namespace faas::sandbox {
namespace {

constexpr int kSiSysSeccomp = 1;  // si_code of a seccomp SIGSYS (SYS_SECCOMP, siginfo.h)
uint64_t g_memory_bytes = 0;      // the function's memory limit, reported as total RAM

void CopyField(char* dst, const char* src) {
  std::strncpy(dst, src, _UTSNAME_LENGTH - 1);
  dst[_UTSNAME_LENGTH - 1] = '\0';
}

// Runs on the thread that made the call. Async-signal-safe only.
void OnTrappedSyscall(int, siginfo_t* info, void* context) {
  auto* uc = static_cast<ucontext_t*>(context);
  greg_t* regs = uc->uc_mcontext.gregs;
  long result = -ENOSYS;
  if (info->si_code == kSiSysSeccomp && info->si_syscall == SYS_uname) {
    auto* u = reinterpret_cast<utsname*>(regs[REG_RDI]);
    if (u == nullptr) {
      result = -EFAULT;
    } else {
      std::memset(u, 0, sizeof *u);
      CopyField(u->sysname, "Linux");
      CopyField(u->nodename, "faas");  // also the UTS namespace's hostname
      CopyField(u->release, kSandboxKernelRelease);
      CopyField(u->version, "#1 SMP faas");
      CopyField(u->machine, "x86_64");
      result = 0;
    }
  } else if (info->si_code == kSiSysSeccomp && info->si_syscall == SYS_sysinfo) {
    auto* si = reinterpret_cast<struct sysinfo*>(regs[REG_RDI]);
    if (si == nullptr) {
      result = -EFAULT;
    } else {
      // The instance's own world: its memory limit, nothing used by anyone else, one process.
      std::memset(si, 0, sizeof *si);
      si->totalram = g_memory_bytes;
      si->freeram = g_memory_bytes;
      si->procs = 1;
      si->mem_unit = 1;
      result = 0;
    }
  }
  regs[REG_RAX] = result;  // the trapped call returns this (glibc turns -errno into errno)
}

}  // namespace

Status InstallSyscallEmulation(uint64_t memory_bytes) {
  g_memory_bytes = memory_bytes;
  struct sigaction sa {};
  sa.sa_sigaction = OnTrappedSyscall;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;  // a trapped call inside a handler still works
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGSYS, &sa, nullptr) != 0) {
    return ErrnoError(errno, "sigaction", "SIGSYS");
  }
  return OkStatus();
}

}  // namespace faas::sandbox
