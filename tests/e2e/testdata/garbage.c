/* Writes a bogus frame header claiming 2 GiB to the channel: the worker breaks protocol. */
#include <faas/function.h>
#include <unistd.h>
FAAS_FUNCTION_ABI
int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  (void)res;
  static const unsigned char kBogus[] = {0xff, 0xff, 0xff, 0x7f, 'x', 'y'};
  if (write(3, kBogus, sizeof kBogus) < 0)
    return 1;
  pause();
  return 0;
}
