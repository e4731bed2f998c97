/* Forges its own response frame on the channel (fd 3) before doing its real work, with its own
 * invocation id, so the daemon takes it as this invocation's answer. The function then burns
 * 50 ms of CPU "after" the invocation, and the worker writes the real answer ("real"), which is
 * left on the channel. Neither may pay off: the CPU is read from the instance's cgroup and
 * billed, and the leftover frame never answers the next caller (it is a protocol violation).
 * Only an instance's first call forges; later calls answer "later" after 200 ms, so the leftover
 * frame is on the channel well before the next call's own answer. */
#include <faas/function.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

FAAS_FUNCTION_ABI

static int g_calls;

int faas_handle(const faas_request* req, faas_response* res) {
  if (g_calls++ > 0) {
    struct timespec nap = {0, 200 * 1000 * 1000};
    nanosleep(&nap, NULL);
    return faas_response_write(res, "later", 5);
  }
  /* WorkerResponse{result{status: 200, body: "forged", invocation_id: <this call's>}}. */
  const size_t id_len = req->invocation_id.len < 100 ? req->invocation_id.len : 100;
  const unsigned char result_len = (unsigned char)(3 + 8 + 2 + id_len);
  unsigned char frame[4 + 2 + 3 + 8 + 2 + 100];
  size_t n = 0;
  frame[n++] = (unsigned char)(2 + result_len);
  frame[n++] = 0;
  frame[n++] = 0;
  frame[n++] = 0;
  frame[n++] = 0x12; /* WorkerResponse.result, length-delimited */
  frame[n++] = result_len;
  frame[n++] = 0x08; /* status = 200 */
  frame[n++] = 0xc8;
  frame[n++] = 0x01;
  frame[n++] = 0x1a; /* body = "forged" */
  frame[n++] = 6;
  memcpy(frame + n, "forged", 6);
  n += 6;
  frame[n++] = 0x32; /* invocation_id (field 6) */
  frame[n++] = (unsigned char)id_len;
  memcpy(frame + n, req->invocation_id.data, id_len);
  n += id_len;
  if (write(3, frame, n) != (ssize_t)n)
    return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  do {
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 50000000L);
  return faas_response_write(res, "real", 4);
}
