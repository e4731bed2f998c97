/* hello: the smallest function, in plain C. */
#include <faas/function.h>

FAAS_FUNCTION_ABI

int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  static const char kBody[] = "Hello from faas!\n";
  faas_response_set_header(res, "content-type", "text/plain; charset=utf-8");
  return faas_response_write(res, kBody, sizeof kBody - 1);
}
