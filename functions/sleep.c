/* sleep: sleeps ?ms=N milliseconds (default 100), then answers. Waits without using CPU. */
#include <faas/function.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

FAAS_FUNCTION_ABI

/* Returns the integer value of `key` in the query string, or `def`. */
static long query_long(const faas_request* req, const char* key, long def) {
  size_t klen = strlen(key);
  const char *q = req->query.data, *end = q + req->query.len;
  while (q < end) {
    const char* amp = memchr(q, '&', (size_t)(end - q));
    const char* item_end = amp ? amp : end;
    if ((size_t)(item_end - q) > klen && memcmp(q, key, klen) == 0 && q[klen] == '=') {
      char buf[32];
      size_t n = (size_t)(item_end - q) - klen - 1;
      if (n >= sizeof buf) {
        n = sizeof buf - 1;
      }
      memcpy(buf, q + klen + 1, n);
      buf[n] = '\0';
      return strtol(buf, NULL, 10);
    }
    q = item_end + 1;
  }
  return def;
}

int faas_handle(const faas_request* req, faas_response* res) {
  long ms = query_long(req, "ms", 100);
  if (ms < 0) {
    ms = 0;
  }
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
  char body[64];
  int n = snprintf(body, sizeof body, "slept %ld ms\n", ms);
  return faas_response_write(res, body, (size_t)n);
}
