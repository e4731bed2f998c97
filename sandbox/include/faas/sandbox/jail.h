// The jail a worker enters before it loads a function library (docs/sandbox.md).
//
//   JailSpec spec{.uid = 1234567, .gid = 1234567, .library = "/data/artifacts/ab….so"};
//   FAAS_ASSIGN_OR_RETURN(std::string lib_in_jail, EnterJail(spec));
//   dlopen(lib_in_jail.c_str(), RTLD_NOW);
//
// EnterJail must run single-threaded, as root, in a process that will never leave the jail. It
// applies the steps in one fixed order (see EnterJail in jail.cc for why this order) and returns
// the library's path inside the new root. Any error leaves the process half-confined: the
// caller must report it and exit.
#pragma once

#include <linux/filter.h>
#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::sandbox {

struct JailSpec {
  uid_t uid = 0;  // unprivileged, distinct per function; never 0
  gid_t gid = 0;
  std::string library;            // host path of the function library (read-only inside)
  bool network_outbound = false;  // false: a private net namespace with only `lo`
  // With network_outbound: networks the namespace refuses (prohibit routes) and opens through
  // slirp's gateway (network.h, docs/design/0007-outbound-network.md).
  std::vector<std::string> egress_deny;
  std::vector<std::string> egress_allow;
  uint64_t memory_bytes = 128u << 20;  // sizes RLIMIT_AS (the cgroup enforces the real limit)
  uint64_t tmp_bytes = 16u << 20;      // size of the private writable /tmp
  uint64_t nofile = 1024;              // RLIMIT_NOFILE
  uint64_t stack_bytes = 8u << 20;     // RLIMIT_STACK
  uint64_t nproc = 1216;  // RLIMIT_NPROC: a backstop to the pids cgroups (faasd sets it)
  bool zygote = false;    // forks instances: keeps kInstanceProcFd, zygote filter
};

// Where the library appears inside the jail.
inline constexpr const char* kLibraryInJail = "/function/lib.so";

// Applies every step; returns kLibraryInJail. Errors name the step and the errno.
Result<std::string> EnterJail(const JailSpec& spec);

// The individual steps, in the order EnterJail applies them (one file each in sandbox/src/).
Status PreloadAllowedLibraries();            // libraries.cc
Status UnshareNamespaces(bool new_network);  // namespaces.cc
// Enters a new pid namespace: forks; returns in the child (PID 1 there). The parent becomes the
// keeper, which never returns: it waits for the child and exits exactly as it did.
Status EnterPidNamespace(uid_t uid, gid_t gid);  // namespaces.cc
inline constexpr int kKeeperSetupFailed = 105;
Status BringUpLoopback();  // namespaces.cc
// Outbound only: waits for faasd to attach slirp4netns, then installs the routes.
Status AttachOutboundNetwork(const JailSpec& spec);                          // network.cc
Status BuildRootFilesystem(const std::string& library, uint64_t tmp_bytes);  // filesystem.cc
Status SetHardLimits(const JailSpec& spec);                                  // rlimits.cc
Status MountInstanceProc();                   // instance_jail.cc (zygote)
Status CloseInheritedFds(int last_kept = 3);  // fds.cc: keeps 0..last_kept
Status DropPrivileges(uid_t uid, gid_t gid);  // privileges.cc
// uname(2) and sysinfo(2) are trapped by the filter and answered here with a fixed kernel release
// and the function's own memory (emulated_syscalls.cc). Installed before the filter.
inline constexpr const char* kSandboxKernelRelease = "6.0.0-faas";
Status InstallSyscallEmulation(uint64_t memory_bytes);  // emulated_syscalls.cc
// The allowlist. With zygote_stage it also allows what cloning an instance needs: exactly
// kInstanceCloneFlags for clone, mount and capset (each instance takes them back).
Status InstallSeccomp(bool zygote_stage = false);  // seccomp_policy.cc

// ---- Instances forked from a zygote (instance_jail.cc, docs/design/0008) ----
// Each instance gets its own user, mount, pid and IPC namespaces: its own /tmp, PID 1 of a
// namespace where no sibling is visible or signallable.
inline constexpr unsigned long kInstanceCloneFlags =
    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | SIGCHLD;
// In a zygote: a procfs of its pid namespace, outside the jail's tree (MountInstanceProc).
inline constexpr int kInstanceProcFd = 4;
// The filter an instance stacks last: kills mount, capset, unshare, setns and namespace clones.
Result<std::vector<sock_filter>> BuildInstanceFilter();
// clone(kInstanceCloneFlags) without glibc's fork handlers: 0 in the child, like fork().
pid_t CloneInstance();
struct InstanceJail {
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t tmp_bytes = 0;
  const std::vector<sock_filter>* filter = nullptr;
};
// In the cloned child: maps its uid/gid, mounts its /tmp, drops every capability, installs the
// filter. Async-signal-safe calls only. Null on success, else the step that failed (errno set);
// the child must then _exit.
const char* EnterInstanceJail(const InstanceJail& jail);

// The unprivileged uid (= gid) a function runs as: stable across restarts, distinct per function
// name (collisions across 1,000,000 values are possible but only ever share a uid, never root).
uid_t FunctionUid(std::string_view function_name);

// Name of a syscall number on this architecture, or "syscall N" (for error messages).
std::string SyscallName(int nr);

}  // namespace faas::sandbox
