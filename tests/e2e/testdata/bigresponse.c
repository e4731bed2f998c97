/* Writes 7 MiB, past the 6 MiB response limit: the platform answers 502 response_too_large. */
#include <faas/function.h>
#include <stdlib.h>
#include <string.h>
FAAS_FUNCTION_ABI
int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  size_t n = 1u << 20;
  char* buf = malloc(n);
  memset(buf, 'a', n);
  for (int i = 0; i < 7; ++i)
    faas_response_write(res, buf, n);
  free(buf);
  return 0;
}
