// The worker's filesystem view: a fresh read-only tmpfs root that holds only the function's
// library (bind-mounted read-only), /dev/{null,zero,urandom}, and a private size-limited /tmp
// (nosuid, nodev, noexec). The host filesystem is detached; there is no /proc, no /etc, no
// daemon data dir, no other function's library.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/jail.h"

namespace faas::sandbox {
namespace {

// The new root is built on a mount point every host has. Our mount namespace is private, so
// the host's /tmp is untouched.
constexpr const char* kRoot = "/tmp";

Status Mount(const char* src, const std::string& dst, const char* type, unsigned long flags,
             const char* data = nullptr) {
  if (::mount(src, dst.c_str(), type, flags, data) != 0) {
    return ErrnoError(errno, "mount", dst);
  }
  return OkStatus();
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir", path);
  }
  return OkStatus();
}

Status MakeFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444));
  return fd.Valid() ? OkStatus() : ErrnoError(errno, "create", path);
}

// Bind-mounts a single file read-only (a bind mount ignores MS_RDONLY until remounted).
Status BindReadOnly(const std::string& src, const std::string& dst) {
  FAAS_RETURN_IF_ERROR(MakeFile(dst));
  FAAS_RETURN_IF_ERROR(Mount(src.c_str(), dst, nullptr, MS_BIND));
  return Mount(nullptr, dst, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID);
}

}  // namespace

Status BuildRootFilesystem(const std::string& library, uint64_t tmp_bytes) {
  // Hold the library by fd first: the new root is mounted over /tmp, which may contain it.
  UniqueFd lib(::open(library.c_str(), O_PATH | O_CLOEXEC));
  if (!lib.Valid()) {
    return ErrnoError(errno, "open", library);
  }
  std::string lib_path = "/proc/self/fd/" + std::to_string(lib.Get());
  // Stop mount events from propagating back to the host.
  FAAS_RETURN_IF_ERROR(Mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE));
  const std::string root = kRoot;
  FAAS_RETURN_IF_ERROR(
      Mount("faas-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755"));
  FAAS_RETURN_IF_ERROR(MakeDir(root + "/function", 0755));
  FAAS_RETURN_IF_ERROR(BindReadOnly(lib_path, root + kLibraryInJail));
  FAAS_RETURN_IF_ERROR(MakeDir(root + "/dev", 0755));
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/urandom"}) {
    FAAS_RETURN_IF_ERROR(MakeFile(root + dev));
    FAAS_RETURN_IF_ERROR(Mount(dev, root + dev, nullptr, MS_BIND));
    FAAS_RETURN_IF_ERROR(
        Mount(nullptr, root + dev, nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC));
  }
  FAAS_RETURN_IF_ERROR(MakeDir(root + "/tmp", 01777));
  std::string tmp_opts = "size=" + std::to_string(tmp_bytes) + ",mode=1777,nr_inodes=4096";
  FAAS_RETURN_IF_ERROR(Mount("faas-tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             tmp_opts.c_str()));
  FAAS_RETURN_IF_ERROR(MakeDir(root + "/.old", 0700));
  // pivot_root(2) has no glibc wrapper.
  if (::syscall(SYS_pivot_root, root.c_str(), (root + "/.old").c_str()) != 0) {
    return ErrnoError(errno, "pivot_root", root);
  }
  if (::chdir("/") != 0) {
    return ErrnoError(errno, "chdir", "/");
  }
  if (::umount2("/.old", MNT_DETACH) != 0) {
    return ErrnoError(errno, "umount2", "/.old");
  }
  if (::rmdir("/.old") != 0) {
    return ErrnoError(errno, "rmdir", "/.old");
  }
  // Last, the root itself becomes read-only: only /tmp stays writable.
  return Mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV);
}

}  // namespace faas::sandbox
