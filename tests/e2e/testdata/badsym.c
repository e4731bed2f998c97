/* Needs a symbol no library defines, named with bytes that are not UTF-8: dlopen fails and
 * dlerror() names it. The deployer must see that error, not a protocol violation. */
#include <faas/function.h>
FAAS_FUNCTION_ABI
extern int faas_missing_symbol __asm__("missing_\xff\xfe");
int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  return faas_missing_symbol;
}
