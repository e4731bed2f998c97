/* faas_init starts a thread: a fork would not copy it, so this version must run without a
 * zygote (every instance spawned) and still work. */
#include <faas/function.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
FAAS_FUNCTION_ABI

static volatile int ticks;

static void* tick(void* arg) {
  (void)arg;
  for (;;) {
    ++ticks;
    usleep(1000);
  }
  return NULL;
}

int faas_init(void) {
  pthread_t t;
  return pthread_create(&t, NULL, tick, NULL);
}

int faas_handle(const faas_request* req, faas_response* res) {
  (void)req;
  int before = ticks;
  usleep(20000);
  const char* msg = ticks > before ? "thread alive\n" : "thread missing\n";
  return faas_response_write(res, msg, strlen(msg));
}
