/* Forges its own response frame on the channel (fd 3) before doing its real work: the daemon
 * takes the forged frame as this invocation's response, then the function burns 50 ms of CPU
 * "after" the invocation. It must not escape the bill: the CPU is read from the instance's
 * cgroup and billed as background use. */
#include <time.h>
#include <unistd.h>

#include <faas/function.h>

FAAS_FUNCTION_ABI

int faas_handle(const faas_request *req, faas_response *res) {
  (void)req;
  /* WorkerResponse{result{status: 200, body: "forged"}}, length-prefixed. */
  static const unsigned char kFrame[] = {13,   0,   0,   0,   0x12, 0x0b, 0x08, 0xc8, 0x01,
                                         0x1a, 0x06, 'f', 'o', 'r',  'g',  'e',  'd'};
  if (write(3, kFrame, sizeof kFrame) != (ssize_t)sizeof kFrame) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  do {
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 50000000L);
  return faas_response_write(res, "real", 4);
}
