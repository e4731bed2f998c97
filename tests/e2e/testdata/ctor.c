/* A library whose constructor misbehaves in the way CTOR_MODE says (compiled once per mode).
 * dlopen runs constructors, so all of this happens during the deploy-time probe, inside the
 * sandbox; each must fail the deploy with init_failed or init_timeout. */
#include <errno.h>
#include <faas/function.h>
#include <stdlib.h>
#include <unistd.h>

FAAS_FUNCTION_ABI

__attribute__((constructor)) static void misbehave(void) {
#if CTOR_MODE == 1 /* spin */
  for (volatile unsigned long i = 0;; ++i) {
  }
#elif CTOR_MODE == 2 /* fork bomb, then give up */
  while (fork() >= 0) {
  }
  _exit(3);
#elif CTOR_MODE == 3 /* exit */
  exit(0);
#elif CTOR_MODE == 4 /* crash */
  volatile int* volatile p = NULL; /* volatile both ways: the compiler may not drop the fault */
  *p = 1;
#elif CTOR_MODE == 5 /* garbage on the channel */
  static const char kGarbage[] = "\x10\x00\x00\x00not a protobuf!!";
  if (write(3, kGarbage, sizeof kGarbage - 1) < 0)
    _exit(9);
#endif
}

int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  return 0;
}
