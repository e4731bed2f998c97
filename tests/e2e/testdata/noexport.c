/* A library with the ABI marker but no faas_handle: deploy must answer invalid_artifact. */
#include <faas/function.h>
FAAS_FUNCTION_ABI
__attribute__((visibility("default"))) int not_a_handler(void) {
  return 0;
}
