// The jail's filesystem has no system libraries, so the few a function may need (the DT_NEEDED
// allowlist of the deploy check) are loaded first, from the host, by trusted code. Most are
// already mapped by the worker itself; RTLD_NOLOAD makes those free.
#include <dlfcn.h>

#include "faas/sandbox/jail.h"

namespace faas::sandbox {

Status PreloadAllowedLibraries() {
  static constexpr const char* kAllowed[] = {"libc.so.6",     "libm.so.6",  "libstdc++.so.6",
                                             "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0",
                                             "librt.so.1"};
  for (const char* soname : kAllowed) {
    if (::dlopen(soname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr &&
        ::dlopen(soname, RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char* err = ::dlerror();
      return FailedPreconditionError(std::string("preload ") + soname + ": " +
                                     (err ? err : "unknown error"));
    }
  }
  return OkStatus();
}

}  // namespace faas::sandbox
