/* fail: logs to stderr and returns non-zero. The platform answers 500 function_error. */
#include <faas/function.h>
#include <stdio.h>

FAAS_FUNCTION_ABI

int faas_handle(const faas_request* req, faas_response* res) {
  (void)res;
  fprintf(stderr, "fail: refusing invocation %.*s on purpose\n", (int)req->invocation_id.len,
          req->invocation_id.data);
  return 3;
}
