#include "faas/sandbox/jail.h"

namespace faas::sandbox {
namespace {

Status Step(const char* name, Status s) {
  if (s.ok()) {
    return s;
  }
  return Status(s.code(), std::string("sandbox step ") + name + ": " + s.message());
}

}  // namespace

uid_t FunctionUid(std::string_view function_name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : function_name) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return static_cast<uid_t>(1'000'000 + h % 1'000'000);
}

// The order, and why (also in docs/sandbox.md):
//  0. cgroup: joined by the scheduler before exec, so every byte and cycle is charged.
//  1. preload system libraries: needs the host filesystem, which step 3 removes.
//  2. namespaces: pid (a fork: the function runs as PID 1 of its own namespace, the parent
//     stays outside as a keeper), then mount/ipc/uts/net; needs root, which step 6 drops.
//  2b. outbound network: faasd attaches slirp4netns, the worker installs reject routes; needs
//     root (routes), and must precede any function code (network.cc).
//  3. filesystem view: needs the mount namespace (2) and root (6). A zygote also keeps a
//     procfs of its pid namespace by fd, outside the view, for its instances' uid maps.
//  4. rlimits: lowering needs no privilege; before anything the function controls.
//  5. fds: only stdio and the channel remain.
//  6. privileges: unprivileged uid/gid, no capabilities, NO_NEW_PRIVS.
//  7. seccomp, last: the earlier steps need calls it forbids (mount, setresuid, unshare).
// Only then does the worker dlopen the library, whose constructors are untrusted code.
Result<std::string> EnterJail(const JailSpec& spec) {
  FAAS_RETURN_IF_ERROR(Step("libraries", PreloadAllowedLibraries()));
  FAAS_RETURN_IF_ERROR(Step("pid namespace", EnterPidNamespace(spec.uid, spec.gid)));
  // A network namespace of its own in every case; outbound adds a filtered path out (2b).
  FAAS_RETURN_IF_ERROR(Step("namespaces", UnshareNamespaces(/*new_network=*/true)));
  FAAS_RETURN_IF_ERROR(Step("loopback", BringUpLoopback()));
  if (spec.network_outbound) {
    FAAS_RETURN_IF_ERROR(Step("outbound network", AttachOutboundNetwork(spec)));
  }
  FAAS_RETURN_IF_ERROR(Step("filesystem", BuildRootFilesystem(spec.library, spec.tmp_bytes)));
  if (spec.zygote) {
    FAAS_RETURN_IF_ERROR(Step("instance proc", MountInstanceProc()));
  }
  FAAS_RETURN_IF_ERROR(Step("rlimits", SetHardLimits(spec)));
  FAAS_RETURN_IF_ERROR(Step("fds", CloseInheritedFds(spec.zygote ? kInstanceProcFd : 3)));
  FAAS_RETURN_IF_ERROR(Step("privileges", DropPrivileges(spec.uid, spec.gid)));
  FAAS_RETURN_IF_ERROR(Step("emulation", InstallSyscallEmulation(spec.memory_bytes)));
  FAAS_RETURN_IF_ERROR(Step("seccomp", InstallSeccomp(spec.zygote)));
  return std::string(kLibraryInJail);
}

}  // namespace faas::sandbox
