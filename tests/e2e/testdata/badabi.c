/* A library built for a future ABI: deploy must answer invalid_artifact. */
#include <faas/function.h>
__attribute__((visibility("default"), used)) const uint32_t faas_abi_version = 999;
int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  return 0;
}
