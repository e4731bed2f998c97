// Drop to the function's own unprivileged uid/gid. Changing every uid away from 0 clears all
// capabilities (capabilities(7), "Effect of user ID changes"); NO_NEW_PRIVS stops setuid binaries
// and file capabilities from giving any back.
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {

Status DropPrivileges(uid_t uid, gid_t gid) {
  if (uid == 0 || gid == 0) {
    return InvalidArgumentError("refusing to run a function as root");
  }
  if (::setgroups(0, nullptr) != 0) {
    return ErrnoError(errno, "setgroups");
  }
  if (::setresgid(gid, gid, gid) != 0) {
    return ErrnoError(errno, "setresgid", std::to_string(gid));
  }
  if (::setresuid(uid, uid, uid) != 0) {
    return ErrnoError(errno, "setresuid", std::to_string(uid));
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoError(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  // Paranoia: prove it stuck.
  if (::setresuid(0, 0, 0) == 0) {
    return InternalError("privileges were not dropped: setresuid(0) succeeded");
  }
  return OkStatus();
}

}  // namespace faas::sandbox
