/* faas-fork-baseline PAUSE_MS COUNT: the baseline of `faasctl bench cold-start`, a small separate
 * process (libc only) so the fork it times is of a small address space, not of faasctl with its
 * gRPC libraries and threads. COUNT times: sleep PAUSE_MS (the same idle pause the function had),
 * then time fork() + _exit(0) in the child + waitpid(); prints one line of milliseconds each.
 * COUNT 0: one timed fork per line read on stdin, until EOF (bench/e2e/cold_start.cc interleaves
 * them with its cold starts). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: faas-fork-baseline PAUSE_MS COUNT\n");
    return 2;
  }
  long pause_ms = strtol(argv[1], NULL, 10);
  long count = strtol(argv[2], NULL, 10);
  char line[64];
  for (long i = 0; count == 0 ? fgets(line, sizeof line, stdin) != NULL : i < count; ++i) {
    if (pause_ms > 0) {
      struct timespec p = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
      nanosleep(&p, NULL);
    }
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
      _exit(0);
    }
    if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
      perror("fork");
      return 1;
    }
    printf("%.4f\n", now_ms() - t0);
    fflush(stdout);
  }
  return 0;
}
