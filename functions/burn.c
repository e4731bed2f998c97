/* burn: spins on the CPU for ?ms=N milliseconds of its own CPU time (default 10). */
#include <faas/function.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

FAAS_FUNCTION_ABI

static long query_ms(const faas_request* req) {
  const char* q = req->query.data;
  size_t len = req->query.len;
  for (size_t i = 0; i + 3 <= len; ++i) {
    if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, "ms=", 3) == 0) {
      long v = 0;
      for (size_t j = i + 3; j < len && q[j] >= '0' && q[j] <= '9' && v < 100000000; ++j) {
        v = v * 10 + (q[j] - '0');
      }
      return v;
    }
  }
  return 10;
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int faas_handle(const faas_request* req, faas_response* res) {
  long ms = query_ms(req);
  double start = cpu_ms();
  volatile unsigned long x = 0;
  while (cpu_ms() - start < (double)ms) {
    for (int i = 0; i < 1000; ++i) {
      x += (unsigned long)i;
    }
  }
  char body[64];
  int n = snprintf(body, sizeof body, "burned %ld ms\n", ms);
  return faas_response_write(res, body, (size_t)n);
}
