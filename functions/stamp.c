/* stamp: for latency benchmarks. Writes "<body> <now>" to stderr, where now is CLOCK_REALTIME in
 * ns when the handler started, and answers the same line. A producer that sends its own clock
 * as the body gets the delivery latency from the function's log. */
#include <faas/function.h>
#include <stdio.h>
#include <time.h>

FAAS_FUNCTION_ABI

int faas_handle(const faas_request* req, faas_response* res) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  char line[128];
  int n = snprintf(line, sizeof line, "%.*s %lld\n", (int)(req->body.len < 64 ? req->body.len : 64),
                   req->body.data, now);
  fputs(line, stderr);
  return faas_response_write(res, line, (size_t)n);
}
