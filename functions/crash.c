/* crash: dereferences NULL (SIGSEGV). The platform answers 502 function_crashed. */
#include <faas/function.h>

FAAS_FUNCTION_ABI

int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  volatile int* p = 0;
  *p = 42;
  return 0;
}
