// The seccomp policy: one reviewed allowlist (docs/sandbox.md).
//
// Default action: EPERM, so a function that probes for a feature gets an error it can handle.
// Kernel-surface calls kill the whole worker (SCMP_ACT_KILL_PROCESS): they have no business in a
// function and are where kernel exploits live. Only the native architecture is allowed; a call
// through another ABI (i386 `int 0x80`, x32) kills (the bad-arch action).
#include <errno.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <iterator>
#include <string_view>

#include <seccomp.h>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {
namespace {

struct Rule {
  const char* name;
  const char* who;  // who needs it: reviewers check every entry has a reason
};

// Allowed without argument checks.
constexpr Rule kAllowed[] = {
    // Memory
    {"brk", "malloc"},
    {"mmap", "malloc, dlopen, thread stacks"},
    {"munmap", "free, dlclose"},
    {"mremap", "realloc of large blocks"},
    {"mprotect", "dlopen relocation, thread guard pages"},
    {"madvise", "malloc trimming"},
    {"mlock", "crypto libraries (bounded by RLIMIT_MEMLOCK)"},
    {"munlock", "crypto libraries"},
    {"membarrier", "C++ runtimes, userspace RCU"},
    // Files (inside the jail's read-only view and /tmp)
    {"read", "channel, files"},
    {"write", "channel, stdout/stderr, files"},
    {"readv", "stdio"},
    {"writev", "stdio"},
    {"pread64", "dlopen, files"},
    {"pwrite64", "files"},
    {"preadv", "files"},
    {"pwritev", "files"},
    {"openat", "dlopen, files in /tmp"},
    {"open", "legacy libc paths"},
    {"close", "everything"},
    {"close_range", "daemonising libraries"},
    {"fstat", "stdio, dlopen"},
    {"newfstatat", "stat()"},
    {"stat", "legacy stat()"},
    {"lstat", "legacy lstat()"},
    {"statx", "std::filesystem"},
    {"lseek", "files"},
    {"access", "file checks"},
    {"faccessat", "file checks"},
    {"faccessat2", "file checks"},
    {"getdents64", "directory listing in /tmp"},
    {"getcwd", "path handling"},
    {"chdir", "path handling"},
    {"fchdir", "path handling"},
    {"readlink", "path handling"},
    {"readlinkat", "path handling"},
    {"mkdir", "/tmp"},
    {"mkdirat", "/tmp"},
    {"rmdir", "/tmp"},
    {"unlink", "/tmp"},
    {"unlinkat", "/tmp"},
    {"rename", "/tmp"},
    {"renameat", "/tmp"},
    {"renameat2", "/tmp"},
    {"ftruncate", "/tmp files"},
    {"truncate", "/tmp files"},
    {"fsync", "/tmp files"},
    {"fdatasync", "/tmp files"},
    {"fchmod", "/tmp files"},
    {"fchmodat", "/tmp files"},
    {"chmod", "/tmp files"},
    {"umask", "file creation"},
    {"utimensat", "/tmp files"},
    {"fadvise64", "file reading"},
    {"fallocate", "/tmp files"},
    {"flock", "/tmp files"},
    {"fcntl", "fd flags, locks"},
    {"dup", "fd handling"},
    {"dup2", "fd handling"},
    {"dup3", "fd handling"},
    {"pipe", "in-process pipes"},
    {"pipe2", "in-process pipes"},
    {"memfd_create", "anonymous files"},
    {"sendfile", "file copies"},
    {"copy_file_range", "file copies"},
    {"splice", "pipes"},
    {"tee", "pipes"},
    // Polling and events
    {"poll", "channel, sockets"},
    {"ppoll", "channel, sockets"},
    {"select", "legacy I/O loops"},
    {"pselect6", "legacy I/O loops"},
    {"epoll_create1", "event loops"},
    {"epoll_ctl", "event loops"},
    {"epoll_wait", "event loops"},
    {"epoll_pwait", "event loops"},
    {"epoll_pwait2", "event loops"},
    {"eventfd2", "event loops"},
    {"timerfd_create", "event loops"},
    {"timerfd_settime", "event loops"},
    {"timerfd_gettime", "event loops"},
    // Sockets: only AF_UNIX and AF_INET(6) (checked below); the net namespace decides reach
    {"socketpair", "in-process channels"},
    {"connect", "outbound network (empty namespace unless --network outbound)"},
    {"bind", "servers inside the instance"},
    {"listen", "servers inside the instance"},
    {"accept", "servers inside the instance"},
    {"accept4", "servers inside the instance"},
    {"sendto", "network"},
    {"recvfrom", "network, channel"},
    {"sendmsg", "network"},
    {"recvmsg", "network"},
    {"sendmmsg", "DNS resolver"},
    {"recvmmsg", "network"},
    {"shutdown", "network"},
    {"getsockname", "network"},
    {"getpeername", "network"},
    {"setsockopt", "network"},
    {"getsockopt", "network"},
    // Threads and synchronisation
    {"futex", "pthread, C++ std::mutex"},
    {"futex_waitv", "newer runtimes"},
    {"set_robust_list", "pthread"},
    {"get_robust_list", "pthread"},
    {"set_tid_address", "pthread"},
    {"rseq", "glibc restartable sequences"},
    {"sched_yield", "spin locks"},
    {"sched_getaffinity", "std::thread::hardware_concurrency"},
    {"sched_setaffinity", "thread pools (within the cgroup's cpuset)"},
    {"sched_getparam", "pthread"},
    {"sched_getscheduler", "pthread"},
    {"sched_get_priority_max", "pthread"},
    {"sched_get_priority_min", "pthread"},
    {"getpriority", "nice()"},
    {"setpriority", "nice() (can only lower priority unprivileged)"},
    {"arch_prctl", "TLS setup"},
    {"exit", "thread exit"},
    {"exit_group", "process exit"},
    {"wait4", "waiting for its own children"},
    {"waitid", "waiting for its own children"},
    {"fork", "subprocesses (bounded by the pids cgroup)"},
    {"vfork", "posix_spawn"},
    {"execve", "running programs inside the jail (the view has none)"},
    {"execveat", "running programs inside the jail (the view has none)"},
    // Signals and time
    {"rt_sigaction", "signal handlers"},
    {"rt_sigprocmask", "signal masks"},
    {"rt_sigreturn", "signal return"},
    {"rt_sigpending", "signals"},
    {"rt_sigtimedwait", "signals"},
    {"rt_sigsuspend", "signals"},
    {"rt_sigqueueinfo", "signals to itself (pid namespace bounds it)"},
    {"rt_tgsigqueueinfo", "signals to its threads"},
    {"sigaltstack", "stack overflow handlers"},
    {"kill", "signals within its own pid namespace"},
    {"tgkill", "pthread_kill, abort()"},
    {"tkill", "legacy pthread_kill"},
    {"pause", "sleeping"},
    {"alarm", "timers"},
    {"setitimer", "timers"},
    {"getitimer", "timers"},
    {"timer_create", "POSIX timers"},
    {"timer_settime", "POSIX timers"},
    {"timer_gettime", "POSIX timers"},
    {"timer_getoverrun", "POSIX timers"},
    {"timer_delete", "POSIX timers"},
    {"nanosleep", "sleeping"},
    {"clock_nanosleep", "sleeping"},
    {"clock_gettime", "time (usually vDSO)"},
    {"clock_getres", "time"},
    {"gettimeofday", "time (usually vDSO)"},
    {"time", "time"},
    // Identity and system information (all namespaced or harmless)
    {"getpid", "everything"},
    {"getppid", "libraries"},
    {"gettid", "logging, pthread"},
    {"getuid", "libraries"},
    {"geteuid", "libraries"},
    {"getgid", "libraries"},
    {"getegid", "libraries"},
    {"getresuid", "libraries"},
    {"getresgid", "libraries"},
    {"getgroups", "libraries"},
    {"getpgrp", "libraries"},
    {"getpgid", "libraries"},
    {"getsid", "libraries"},
    {"setsid", "daemonising libraries"},
    {"setpgid", "subprocess management"},
    {"getrusage", "self-measurement"},
    {"times", "self-measurement"},
    {"getrlimit", "libraries"},
    {"prlimit64", "getrlimit(); raising hard limits needs a capability we dropped"},
    {"setrlimit", "lowering its own limits"},
    {"getrandom", "randomness"},
    {"getcpu", "NUMA-aware allocators"},
    {"capget", "capability checks (all empty)"},
};

// Calls that kill the worker at once: the kernel attack surface no function needs.
constexpr Rule kKill[] = {
    {"ptrace", "debugging other processes"},
    {"process_vm_readv", "reading another process's memory"},
    {"process_vm_writev", "writing another process's memory"},
    {"process_madvise", "acting on another process's memory"},
    {"pidfd_getfd", "stealing another process's fds"},
    {"kcmp", "comparing kernel objects across processes"},
    {"bpf", "eBPF programs"},
    {"perf_event_open", "performance counters (side channels, kernel surface)"},
    {"keyctl", "kernel keyrings"},
    {"add_key", "kernel keyrings"},
    {"request_key", "kernel keyrings"},
    {"userfaultfd", "exploit primitive for racing the kernel"},
    {"io_uring_setup", "io_uring (large kernel surface)"},
    {"io_uring_enter", "io_uring"},
    {"io_uring_register", "io_uring"},
    {"mount", "filesystems"},
    {"umount2", "filesystems"},
    {"pivot_root", "filesystems"},
    {"chroot", "filesystems"},
    {"fsopen", "new mount API"},
    {"fsmount", "new mount API"},
    {"fsconfig", "new mount API"},
    {"fspick", "new mount API"},
    {"move_mount", "new mount API"},
    {"open_tree", "new mount API"},
    {"mount_setattr", "new mount API"},
    {"unshare", "new namespaces"},
    {"setns", "joining namespaces"},
    {"kexec_load", "replacing the kernel"},
    {"kexec_file_load", "replacing the kernel"},
    {"init_module", "kernel modules"},
    {"finit_module", "kernel modules"},
    {"delete_module", "kernel modules"},
    {"reboot", "the host"},
    {"swapon", "the host"},
    {"swapoff", "the host"},
    {"acct", "the host"},
    {"settimeofday", "the host clock"},
    {"clock_settime", "the host clock"},
    {"clock_adjtime", "the host clock"},
    {"adjtimex", "the host clock"},
    {"setuid", "identity changes"},
    {"setgid", "identity changes"},
    {"setreuid", "identity changes"},
    {"setregid", "identity changes"},
    {"setresuid", "identity changes"},
    {"setresgid", "identity changes"},
    {"setfsuid", "identity changes"},
    {"setfsgid", "identity changes"},
    {"setgroups", "identity changes"},
    {"capset", "capabilities"},
    {"personality", "ABI changes (READ_IMPLIES_EXEC etc.)"},
    {"modify_ldt", "legacy segments"},
    {"iopl", "port I/O"},
    {"ioperm", "port I/O"},
    {"quotactl", "filesystems"},
    {"name_to_handle_at", "file handles (container escapes)"},
    {"open_by_handle_at", "file handles (container escapes)"},
    {"lookup_dcookie", "kernel profiling"},
    {"syslog", "the kernel log"},
    {"vhangup", "terminals"},
    {"fanotify_init", "filesystem monitoring"},
    {"seccomp", "changing the filter"},
};

// ioctl(2) requests a runtime needs; every other request gets EPERM (device, filesystem and
// terminal ioctls are kernel surface no function needs: TIOCSTI, FS_IOC_*, block devices...).
struct ArgRule {
  unsigned long value;
  const char* who;
};
constexpr ArgRule kIoctls[] = {
    {TCGETS, "isatty(): stdio chooses its buffering"},
    {TIOCGWINSZ, "terminal size probes of logging libraries"},
    {FIONREAD, "bytes available on a socket or pipe"},
    {FIONBIO, "non-blocking sockets"},
    {FIOCLEX, "close-on-exec"},
    {FIONCLEX, "close-on-exec"},
    {SIOCATMARK, "TCP urgent data"},
    {SIOCOUTQ, "unsent bytes on a socket"},
};
// prctl(2) options a runtime needs (A0); everything else gets EPERM.
constexpr ArgRule kPrctls[] = {
    {PR_SET_NAME, "thread names"},
    {PR_GET_NAME, "thread names"},
    {PR_SET_PDEATHSIG, "subprocess libraries"},
    {PR_GET_PDEATHSIG, "subprocess libraries"},
    {PR_GET_DUMPABLE, "libraries"},
    {PR_SET_DUMPABLE,
     "an instance maps its uid (instance_jail.cc); core files are off (RLIMIT_CORE 0)"},
    {PR_SET_SECCOMP, "an instance stacks its final filter; a filter only ever restricts"},
    {PR_GET_SECCOMP, "libraries"},
    {PR_SET_NO_NEW_PRIVS, "already set; libraries set it again"},
    {PR_GET_NO_NEW_PRIVS, "libraries"},
    {PR_CAPBSET_READ, "capability probes (all empty)"},
    {PR_GET_KEEPCAPS, "capability probes"},
    {PR_SET_TIMERSLACK, "event loops"},
    {PR_GET_TIMERSLACK, "event loops"},
    {PR_SET_THP_DISABLE, "allocators"},
    {PR_GET_THP_DISABLE, "allocators"},
    {PR_GET_SPECULATION_CTRL, "hardening libraries"},
    {PR_SET_SPECULATION_CTRL, "hardening libraries (can only restrict itself)"},
    {PR_GET_TID_ADDRESS, "libraries"},
};

constexpr unsigned kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

class Filter {
 public:
  Filter() : ctx_(seccomp_init(SCMP_ACT_ERRNO(EPERM))) {}
  ~Filter() {
    if (ctx_ != nullptr) {
      seccomp_release(ctx_);
    }
  }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  scmp_filter_ctx Get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

// libseccomp returns -errno.
Status Check(int rc, const std::string& what) {
  return rc == 0 ? OkStatus() : ErrnoError(-rc, "seccomp", what);
}

Status AddByName(scmp_filter_ctx ctx, uint32_t action, const char* name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) {
    return OkStatus();  // not a syscall on this architecture (e.g. "open" on aarch64)
  }
  return Check(seccomp_rule_add(ctx, action, nr, 0), name);
}

}  // namespace

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (name == nullptr) {
    return "syscall " + std::to_string(nr);
  }
  std::string out(name);
  free(name);  // NOLINT: libseccomp allocates with malloc
  return out;
}

Status InstallSeccomp(bool zygote_stage) {
  Filter f;
  if (f.Get() == nullptr) {
    return InternalError("seccomp_init failed");
  }
  scmp_filter_ctx ctx = f.Get();
  // Another architecture's syscall table (i386 int 0x80, x32) kills the process.
  FAAS_RETURN_IF_ERROR(
      Check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch"));
  FAAS_RETURN_IF_ERROR(Check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1), "nnp"));
  for (const Rule& r : kAllowed) {
    FAAS_RETURN_IF_ERROR(AddByName(ctx, SCMP_ACT_ALLOW, r.name));
  }
  for (const Rule& r : kKill) {
    // A zygote clones each instance into namespaces of its own (instance_jail.cc): it needs
    // mount (a fresh /tmp) and capset (dropping what the new user namespace gave). Only it: the
    // instance stacks BuildInstanceFilter, which kills both again.
    const std::string_view name = r.name;
    if (zygote_stage && (name == "mount" || name == "capset")) {
      FAAS_RETURN_IF_ERROR(AddByName(ctx, SCMP_ACT_ALLOW, r.name));
      continue;
    }
    FAAS_RETURN_IF_ERROR(AddByName(ctx, SCMP_ACT_KILL_PROCESS, r.name));
  }
  // uname and sysinfo describe the host: trapped, and answered by InstallSyscallEmulation.
  for (int nr : {SCMP_SYS(uname), SCMP_SYS(sysinfo)}) {
    FAAS_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 0), "trap"));
  }
  for (const ArgRule& r : kIoctls) {
    FAAS_RETURN_IF_ERROR(Check(
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, r.value)),
        "ioctl"));
  }
  for (const ArgRule& r : kPrctls) {
    FAAS_RETURN_IF_ERROR(Check(
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, r.value)),
        "prctl"));
  }
  // socket(): only local and IP families; AF_NETLINK, AF_PACKET (raw frames) etc. get EPERM.
  // SOCK_RAW on AF_INET needs CAP_NET_RAW, which we dropped.
  for (int family : {AF_UNIX, AF_INET, AF_INET6}) {
    FAAS_RETURN_IF_ERROR(
        Check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                               SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))),
              "socket"));
  }
  // clone(): threads and plain forks only; any namespace flag kills.
  FAAS_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                              SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)),
                             "clone"));
  if (zygote_stage) {
    // Exactly the instance clone; any other use of its flags gets EPERM (the default).
    FAAS_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                                SCMP_A0(SCMP_CMP_EQ, kInstanceCloneFlags)),
                               "clone(instance)"));
  }
  for (unsigned flag = 1; flag != 0; flag <<= 1) {
    if ((kNamespaceFlags & flag) != 0 && !(zygote_stage && (kInstanceCloneFlags & flag) != 0)) {
      FAAS_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                                                  SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
                                 "clone(namespace)"));
    }
  }
  // clone3() passes its flags in memory, which seccomp cannot inspect. ENOSYS makes glibc fall
  // back to clone(), whose flags we can check (the same rule Docker's default profile uses).
  FAAS_RETURN_IF_ERROR(
      Check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3"));
  return Check(seccomp_load(ctx), "load");
}

}  // namespace faas::sandbox
