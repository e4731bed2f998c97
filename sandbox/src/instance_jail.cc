// Per-instance isolation inside a version (docs/design/0008-instance-isolation.md).
//
// A zygote forks every instance of its version. Without more, those instances share the
// zygote's pid namespace, uid and /tmp: one could signal a sibling serving another caller, and
// the next caller of an `isolation: fresh` function could read what the previous one left in
// /tmp. So each instance is cloned into namespaces of its own:
//
//   zygote (function uid, no capabilities anywhere)
//     └─ clone(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC)   [no privilege needed]
//          instance: PID 1 of its own pid namespace, its own mount and IPC namespaces, owned by a
//          user namespace of its own in which it briefly holds capabilities. It maps its one uid
//          and gid, mounts a fresh /tmp, drops every capability and stacks the final seccomp
//          filter, which kills every call that setup needed. Only then does it talk to the daemon.
//
// Creating a user namespace needs no privilege (user_namespaces(7)), so nothing here runs as
// root and the zygote keeps none. The zygote's own filter (InstallSeccomp with zygote_stage)
// allows just this clone flag combination, mount and capset; the instance's stacked filter
// (BuildInstanceFilter) kills them again, so function code in an instance never has them.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>

#include <seccomp.h>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/jail.h"

namespace faas::sandbox {
namespace {

// Writes `text` to /proc/self/<file> through the zygote's private procfs (kInstanceProcFd).
// No allocation, no libc buffering: this runs in a freshly cloned child.
bool WriteProcSelf(const char* file, const char* text, std::size_t len) {
  char path[64];
  std::snprintf(path, sizeof path, "self/%s", file);
  int fd = ::openat(kInstanceProcFd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool ok = ::write(fd, text, len) == static_cast<ssize_t>(len);
  ::close(fd);
  return ok;
}

}  // namespace

Status MountInstanceProc() {
  // A procfs of the zygote's pid namespace, showing only process directories (subset=pid: no
  // /proc/sys, no kcore). Mounted on /tmp for a moment, held by an fd, then detached: nothing in
  // the jail's tree shows it. Instances use it to write their own uid_map (they see "self").
  if (::mount("proc", "/tmp", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "subset=pid") != 0) {
    return ErrnoError(errno, "mount", "proc (subset=pid)");
  }
  UniqueFd fd(::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
  int err = errno;
  if (::umount2("/tmp", MNT_DETACH) != 0) {
    return ErrnoError(errno, "umount2", "proc on /tmp");
  }
  if (!fd.Valid()) {
    return ErrnoError(err, "open", "proc");
  }
  if (fd.Get() == kInstanceProcFd) {
    (void)fd.Release();  // already in place (the lowest free number): keep it open
  } else if (::dup2(fd.Get(), kInstanceProcFd) < 0) {  // clears FD_CLOEXEC: fine, no exec follows
    return ErrnoError(errno, "dup2", "proc fd");
  }
  return OkStatus();
}

Result<std::vector<sock_filter>> BuildInstanceFilter() {
  // Stacked on the zygote's filter (filters combine: the strictest answer wins), this one only
  // takes back what instance setup needed.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    return InternalError("seccomp_init failed");
  }
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  auto check = [](int rc, const char* what) {
    return rc == 0 ? OkStatus() : ErrnoError(-rc, "seccomp", what);
  };
  FAAS_RETURN_IF_ERROR(
      check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch"));
  for (int nr :
       {SCMP_SYS(mount), SCMP_SYS(capset), SCMP_SYS(umount2), SCMP_SYS(unshare), SCMP_SYS(setns)}) {
    FAAS_RETURN_IF_ERROR(check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0), "rule"));
  }
  constexpr unsigned kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                       CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
  for (unsigned flag = 1; flag != 0; flag <<= 1) {
    if ((kNamespaceFlags & flag) != 0) {
      FAAS_RETURN_IF_ERROR(check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                                                  SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
                                 "clone"));
    }
  }
  // libseccomp 2.5 exports BPF only to an fd.
  UniqueFd mem(::memfd_create("faas-instance-filter", MFD_CLOEXEC));
  if (!mem.Valid()) {
    return ErrnoError(errno, "memfd_create", "instance filter");
  }
  FAAS_RETURN_IF_ERROR(check(seccomp_export_bpf(ctx, mem.Get()), "export"));
  off_t size = ::lseek(mem.Get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return InternalError("exported seccomp filter has a bad size");
  }
  std::vector<sock_filter> prog(static_cast<std::size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.Get(), prog.data(), static_cast<std::size_t>(size), 0) != size) {
    return ErrnoError(errno, "pread", "instance filter");
  }
  return prog;
}

pid_t CloneInstance() {
  // A raw clone: glibc's fork() would run the function's pthread_atfork handlers in the child
  // before it is jailed and moved into its cgroup. The zygote is single-threaded (checked by the
  // daemon), so no lock is held across this.
  return static_cast<pid_t>(
      ::syscall(SYS_clone, kInstanceCloneFlags, nullptr, nullptr, nullptr, nullptr));
}

const char* EnterInstanceJail(const InstanceJail& jail) {
  // 1. Map our one uid and gid (the zygote's) into the new user namespace. Only the process
  //    itself may write a single-line map of its own ids, after denying setgroups, and only while
  //    it is dumpable (else /proc/self belongs to root of the parent namespace).
  char map[64];
  if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 || !WriteProcSelf("setgroups", "deny", 4)) {
    return "setgroups deny";
  }
  int n = std::snprintf(map, sizeof map, "%u %u 1\n", jail.uid, jail.uid);
  if (!WriteProcSelf("uid_map", map, static_cast<std::size_t>(n))) {
    return "uid_map";
  }
  n = std::snprintf(map, sizeof map, "%u %u 1\n", jail.gid, jail.gid);
  if (!WriteProcSelf("gid_map", map, static_cast<std::size_t>(n)) ||
      ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || ::close(kInstanceProcFd) != 0) {
    return "gid_map";
  }
  // 2. A /tmp of our own, over the zygote's (which stays as faas_init left it, for the zygote).
  char opts[96];
  std::snprintf(opts, sizeof opts, "size=%llu,mode=1777,nr_inodes=4096",
                static_cast<unsigned long long>(jail.tmp_bytes));
  if (::mount("faas-tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0) {
    return "mount /tmp";
  }
  // 3. No capabilities, in any set, from here on (no exec follows, so no way back).
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, none) != 0) {
    return "capset";
  }
  // 4. The final filter. seccomp(2) itself is killed by the zygote's filter; prctl is the way in.
  sock_fprog prog{static_cast<unsigned short>(jail.filter->size()),
                  const_cast<sock_filter*>(jail.filter->data())};
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? nullptr : "seccomp";
}

}  // namespace faas::sandbox
