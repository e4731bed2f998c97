/* faas_init fails: deploy must answer init_failed and keep the previous version. */
#include <faas/function.h>
#include <stdio.h>
FAAS_FUNCTION_ABI
int faas_init(void) {
  fprintf(stderr, "initfail: cannot open my model file\n");
  return 7;
}
int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  return 0;
}
