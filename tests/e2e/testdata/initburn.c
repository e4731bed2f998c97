/* faas_init burns ~30 ms of CPU (INITBURN_MS in its environment says how many); faas_handle
 * does nothing. What a cold start bills: the init on its own "init" row, the invocation like a
 * warm one (docs/metering.md). A long burn also keeps a deploy's probe busy. */
#include <faas/function.h>
#include <stdlib.h>
#include <time.h>
FAAS_FUNCTION_ABI

static volatile unsigned long sink;

int faas_init(void) {
  const char* env = getenv("INITBURN_MS");
  long burn_ns = (env != NULL ? atol(env) : 30) * 1000000L;
  struct timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  do {
    for (int i = 0; i < 10000; ++i) {
      sink += (unsigned long)i;
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < burn_ns);
  return 0;
}

int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  return faas_response_write(res, "ok\n", 3);
}
