/* hostile: one function library that attacks its sandbox in the way ?do=NAME says, and reports
 * what happened in its response body ("ok" when the attack was stopped with an error it could
 * see, or the errno it got). Attacks that the sandbox answers by killing the worker never
 * return. Used only by tests/hostile/hostile_test.cc, inside the jail.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <faas/function.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

FAAS_FUNCTION_ABI

extern char** environ;

static char g_reply[4096];

static int reply(faas_response* res, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply(faas_response* res, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g_reply, sizeof g_reply, fmt, ap);
  va_end(ap);
  return faas_response_write(res, g_reply, (size_t)n);
}

static int is(const faas_request* req, const char* what) {
  char want[128];
  snprintf(want, sizeof want, "do=%s", what);
  size_t n = strlen(want);
  return req->query.len >= n && memcmp(req->query.data, want, n) == 0 &&
         (req->query.len == n || req->query.data[n] == '&');
}

static void* nap(void* arg) {
  (void)arg;
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return NULL;
}

static void* spin(void* arg) {
  (void)arg;
  for (volatile unsigned long i = 0;; ++i) {
  }
  return NULL;
}

static int recurse(int depth) {
  volatile char pad[4096];
  pad[0] = (char)depth;
  return recurse(depth + 1) + pad[0];
}

static int try_open(faas_response* res, const char* path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd >= 0)
    return reply(res, "opened %s", path);
  return reply(res, "errno=%s", strerrorname_np(errno));
}

static int try_connect(faas_response* res, const char* ip, int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return reply(res, "socket errno=%s", strerrorname_np(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  int rc = connect(s, (struct sockaddr*)&a, sizeof a);
  int err = errno;
  close(s);
  return rc == 0 ? reply(res, "connected") : reply(res, "errno=%s", strerrorname_np(err));
}

/* Loaded as LD_PRELOAD into the worker by a deploy's env (the attack of issue #13): if this ever
 * runs before the jail, it runs as root on the host and leaves a mark there. */
__attribute__((constructor)) static void mark_host(void) {
  const char* path = getenv("HOSTILE_MARK");
  if (path != NULL) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
      close(fd);
  }
}

/* Set in a forked child by a pthread_atfork handler faas_init registered (HOSTILE_ATFORK), and
 * counted by a SIGALRM handler faas_init armed (HOSTILE_ALARM): neither may ever run in, or on
 * the way to, an instance the zygote makes. */
static volatile sig_atomic_t g_atfork_ran = 0;
static volatile sig_atomic_t g_alarm_ticks = 0;
static void on_fork_child(void) {
  g_atfork_ran = 1;
}
static void on_alarm(int sig) {
  (void)sig;
  g_alarm_ticks = g_alarm_ticks + 1;
}

/* With HOSTILE_MARK set, faas_init keeps its value in a global and writes it to /tmp/init-mark (the
 * zygote's /tmp): `do=state` shows what an instance starts with. Every instance of a version,
 * parked ahead or forked on demand, must show that version's mark, a call count from 0, and neither
 * the zygote's file nor what an earlier invocation left (docs/design/0010, "Parked"). */
static char g_mark[64];
static unsigned g_calls;

/* With HOSTILE_STRAY set, faas_init leaves a process behind in the zygote that keeps signalling
 * everything it can see: the instances forked later must not be among them. */
int faas_init(void) {
  /* With HOSTILE_MIN_UID set, refuse to start below that uid: the deploy probe must already run as
   * the function's own registry uid, not a stand-in. */
  const char* min_uid = getenv("HOSTILE_MIN_UID");
  if (min_uid != NULL && (long)getuid() < atol(min_uid))
    return 1;
  const char* mark = getenv("HOSTILE_MARK");
  if (mark != NULL) {
    snprintf(g_mark, sizeof g_mark, "%s", mark);
    int fd = open("/tmp/init-mark", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, mark, strlen(mark)) < 0)
      return 2;
    close(fd);
  }
  if (getenv("HOSTILE_ATFORK") != NULL)
    pthread_atfork(NULL, NULL, on_fork_child);
  if (getenv("HOSTILE_ALARM") != NULL) {
    signal(SIGALRM, on_alarm);
    struct itimerval every = {{0, 5000}, {0, 50000}}; /* first after 50 ms, then every 5 ms */
    setitimer(ITIMER_REAL, &every, NULL);
  }
  if (getenv("HOSTILE_STRAY") != NULL && fork() == 0) {
    for (;;) {
      kill(-1, SIGKILL);
      struct timespec ts = {0, 2 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}

/* Attacks on the other instances of the same version. */
static int instance_attack(const faas_request* req, faas_response* res) {
  if (is(req, "tmp-plant")) {
    /* Leave a caller's secret in /tmp: the next caller of a `fresh` function must not see it. */
    int fd = open("/tmp/spy", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
      return reply(res, "errno=%s", strerrorname_np(errno));
    ssize_t n = write(fd, req->body.data, req->body.len);
    close(fd);
    return reply(res, "planted %zd", n);
  }
  if (is(req, "state")) {
    int init_file = access("/tmp/init-mark", F_OK) == 0;
    int prev_call = access("/tmp/prev-call", F_OK) == 0;
    int fd = open("/tmp/prev-call", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
      close(fd);
    return reply(res, "mark=%s calls=%u init-file=%d prev-call=%d", g_mark, g_calls++, init_file,
                 prev_call);
  }
  if (is(req, "tmp-peek")) {
    char buf[256] = {0};
    int fd = open("/tmp/spy", O_RDONLY);
    if (fd < 0)
      return reply(res, "errno=%s", strerrorname_np(errno));
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return reply(res, "read %zd: %s", n, buf);
  }
  if (is(req, "host-info")) {
    /* What the kernel would tell about the host: its release and its memory and load. */
    struct utsname u;
    struct sysinfo si;
    int urc = uname(&u);
    int serr = sysinfo(&si) == 0 ? 0 : errno;
    return reply(res, "uname=%s release=%s nodename=%s sysinfo=%s totalram=%llu procs=%u load=%lu",
                 urc == 0 ? "ok" : strerrorname_np(errno), urc == 0 ? u.release : "-",
                 urc == 0 ? u.nodename : "-", serr == 0 ? "ok" : strerrorname_np(serr),
                 serr == 0 ? (unsigned long long)si.totalram * si.mem_unit : 0ull,
                 serr == 0 ? (unsigned)si.procs : 0u, serr == 0 ? si.loads[0] : 0ul);
  }
  if (is(req, "ioctl-prctl")) {
    /* Kernel surface no function needs, and what runtimes do need. */
    int fd = open("/dev/zero", O_RDONLY);
    int bsz = 0;
    int r1 = ioctl(fd, FIGETBSZ, &bsz);
    int e1 = errno;
    int p[2], avail = -1;
    int r2 = pipe(p) == 0 ? ioctl(p[0], FIONREAD, &avail) : -1;
    int e2 = errno;
    int r3 = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    int e3 = errno;
    int r4 = prctl(PR_SET_NAME, "renamed", 0, 0, 0);
    int e4 = errno;
    return reply(res, "figetbsz=%s fionread=%s subreaper=%s set_name=%s",
                 r1 == 0 ? "ok" : strerrorname_np(e1), r2 == 0 ? "ok" : strerrorname_np(e2),
                 r3 == 0 ? "ok" : strerrorname_np(e3), r4 == 0 ? "ok" : strerrorname_np(e4));
  }
  if (is(req, "zygote-code")) {
    return reply(res, "atfork=%d ticks=%d", (int)g_atfork_ran, (int)g_alarm_ticks);
  }
  if (is(req, "kill-all")) {
    /* Everything this instance may signal: siblings serving other callers must not be in it. */
    int rc = kill(-1, SIGKILL);
    return reply(res, "kill(-1)=%s", rc == 0 ? "SENT" : strerrorname_np(errno));
  }
  return -1;
}

/* Raw WorkerResponse frames, encoded by hand (proto/faas/v1/worker.proto), for the attacks that
 * talk to the daemon on fd 3 behind the worker's back. */
typedef struct {
  unsigned char data[2048];
  size_t len;
} pb;

static void pb_varint(pb* b, unsigned long v) {
  while (v >= 0x80 && b->len < sizeof b->data) {
    b->data[b->len++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  if (b->len < sizeof b->data)
    b->data[b->len++] = (unsigned char)v;
}

static void pb_bytes(pb* b, unsigned field, const void* data, size_t len) {
  pb_varint(b, (field << 3) | 2);
  pb_varint(b, len);
  if (len <= sizeof b->data - b->len) {
    memcpy(b->data + b->len, data, len);
    b->len += len;
  }
}

static void pb_header(pb* b, const char* name, const char* value) {
  pb h = {.len = 0};
  pb_bytes(&h, 1, name, strlen(name));
  pb_bytes(&h, 2, value, strlen(value));
  pb_bytes(b, 2, h.data, h.len); /* WorkerResult.headers */
}

/* WorkerResult{status, headers (name, value pairs, NULL-terminated), body, invocation_id = the
 * request's}, wrapped in WorkerResponse.result and length-prefixed, written to fd 3 at once. */
/* A WorkerResult frame for this invocation, written on fd 3 behind the worker's back; with
 * `copies` 2, twice in one write (one recv on the daemon's side reads both). */
static int write_result_frames(const faas_request* req, int status, const char* const* headers,
                               const char* body, int copies) {
  pb r = {.len = 0};
  pb_varint(&r, (1 << 3) | 0);
  pb_varint(&r, (unsigned long)status);
  for (const char* const* h = headers; h != NULL && h[0] != NULL; h += 2)
    pb_header(&r, h[0], h[1]);
  pb_bytes(&r, 3, body, strlen(body));
  pb_bytes(&r, 6, req->invocation_id.data, req->invocation_id.len);
  pb msg = {.len = 4};
  pb_bytes(&msg, 2, r.data, r.len); /* WorkerResponse.result */
  size_t n = msg.len - 4;
  msg.data[0] = (unsigned char)n;
  msg.data[1] = (unsigned char)(n >> 8);
  msg.data[2] = (unsigned char)(n >> 16);
  msg.data[3] = (unsigned char)(n >> 24);
  if (copies > 1) { /* the same frame again, in the same write */
    if (msg.len * 2 > sizeof msg.data)
      return -1;
    memcpy(msg.data + msg.len, msg.data, msg.len);
    msg.len *= 2;
  }
  return write(3, msg.data, msg.len) == (ssize_t)msg.len ? 0 : -1;
}

static int write_result_frame(const faas_request* req, int status, const char* const* headers,
                              const char* body) {
  return write_result_frames(req, status, headers, body, 1);
}

/* A WorkerResult frame answering `id` (status 200, `body`), with WorkerResult.log_end when
 * `log_end` >= 0, written on fd 3 behind the worker's back. */
static int write_frame_for(const char* id, size_t id_len, const char* body, long long log_end) {
  pb r = {.len = 0};
  pb_varint(&r, (1 << 3) | 0);
  pb_varint(&r, 200);
  pb_bytes(&r, 3, body, strlen(body));
  pb_bytes(&r, 6, id, id_len);
  if (log_end >= 0) {
    pb_varint(&r, (7 << 3) | 0);
    pb_varint(&r, (unsigned long)log_end);
  }
  pb msg = {.len = 4};
  pb_bytes(&msg, 2, r.data, r.len); /* WorkerResponse.result */
  size_t n = msg.len - 4;
  msg.data[0] = (unsigned char)n;
  msg.data[1] = (unsigned char)(n >> 8);
  msg.data[2] = (unsigned char)(n >> 16);
  msg.data[3] = (unsigned char)(n >> 24);
  return write(3, msg.data, msg.len) == (ssize_t)msg.len ? 0 : -1;
}

/* Pipelining (faasd --pipeline-depth K): waits until the daemon has written the next request
 * behind this one (fd 3 readable: the worker has read this call's frame already), at most
 * `ms`; 0 when it did. */
static int await_behind(int ms) {
  struct pollfd p = {.fd = 3, .events = POLLIN};
  return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* Reads the request frame written behind this call off fd 3 (the worker never sees it) and
 * copies its invocation id (WorkerRequest field 1, serialised first) into `id`. */
static int steal_behind(char* id, size_t cap) {
  static unsigned char buf[65536];
  ssize_t n = read(3, buf, sizeof buf);
  if (n < 6 || buf[4] != 0x0a || buf[5] >= cap || 6 + (ssize_t)buf[5] > n)
    return -1;
  memcpy(id, buf + 6, buf[5]);
  id[buf[5]] = '\0';
  return buf[5];
}

/* Complete request frames waiting on fd 3 behind this call (a peek: they stay there). */
static int frames_behind(void) {
  static unsigned char buf[65536];
  ssize_t n = recv(3, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  int count = 0;
  size_t at = 0;
  while (n > 0 && at + 4 <= (size_t)n) {
    size_t len = (size_t)buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 |
                 (size_t)buf[at + 3] << 24;
    if (at + 4 + len > (size_t)n)
      break;
    ++count;
    at += 4 + len;
  }
  return count;
}

/* Pipelining deeper than one (faasd --pipeline-depth K): waits until `want` requests are
 * queued behind this call, at most `ms`; 0 when they are. */
static int await_frames_behind(int want, int ms) {
  for (int i = 0; i < ms; ++i) {
    if (frames_behind() >= want)
      return 0;
    struct timespec t = {.tv_sec = 0, .tv_nsec = 1000000};
    nanosleep(&t, NULL);
  }
  return -1;
}

/* Reads exactly one request frame off fd 3 and copies its invocation id into `id`. */
static int steal_one(char* id, size_t cap) {
  unsigned char hdr[4];
  static unsigned char body[65536];
  if (read(3, hdr, 4) != 4)
    return -1;
  size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
  if (len < 2 || len > sizeof body)
    return -1;
  for (size_t got = 0; got < len;) {
    ssize_t n = read(3, body + got, len - got);
    if (n <= 0)
      return -1;
    got += (size_t)n;
  }
  if (body[0] != 0x0a || body[1] >= cap || 2 + (size_t)body[1] > len)
    return -1;
  memcpy(id, body + 2, body[1]);
  id[body[1]] = '\0';
  return body[1];
}

static void burn_cpu_ms(long ms) {
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  do {
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ms * 1000000L);
}

/* connect-to: TCP to X-Addr:X-Port with 3 s timeouts; on success reads what the peer sends. */
static int try_connect_to(const faas_request* req, faas_response* res) {
  const faas_str* a = faas_request_header(req, "x-addr");
  const faas_str* p = faas_request_header(req, "x-port");
  char ip[64];
  snprintf(ip, sizeof ip, "%.*s", a ? (int)a->len : 0, a ? a->data : "");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return reply(res, "socket errno=%s", strerrorname_np(errno));
  struct timeval tv = {.tv_sec = 3};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() */
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)(p ? atoi(p->data) : 80))};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
    return reply(res, "bad address %s", ip);
  if (connect(s, (struct sockaddr*)&sa, sizeof sa) != 0) {
    int err = errno;
    close(s);
    return reply(res, "errno=%s", strerrorname_np(err));
  }
  char buf[16];
  ssize_t n = recv(s, buf, sizeof buf - 1, 0);
  int err = errno;
  close(s);
  if (n < 0)
    return reply(res, "connected read errno=%s", strerrorname_np(err));
  buf[n] = 0;
  return reply(res, "connected read=%s", buf);
}

int faas_handle(const faas_request* req, faas_response* res) {
  int handled = instance_attack(req, res);
  if (handled != -1)
    return handled;
  if (is(req, "connect-to"))
    return try_connect_to(req, res);
  if (is(req, "identity")) {
    return reply(res, "uid=%d gid=%d pid=%d", (int)getuid(), (int)getgid(), (int)getpid());
  }
  if (is(req, "env")) {
    int n = 0;
    for (char** e = environ; *e; ++e)
      ++n;
    const char* v = getenv("GREETING");
    return reply(res, "count=%d GREETING=%s", n, v ? v : "(unset)");
  }
  if (is(req, "shadow"))
    return try_open(res, "/etc/shadow", O_RDONLY);
  if (is(req, "datadir")) {
    const faas_str* dir = faas_request_header(req, "x-target");
    char path[512];
    snprintf(path, sizeof path, "%.*s", dir ? (int)dir->len : 0, dir ? dir->data : "");
    return try_open(res, path, O_RDONLY);
  }
  if (is(req, "write-root"))
    return try_open(res, "/evil", O_WRONLY | O_CREAT);
  if (is(req, "write-lib"))
    return try_open(res, "/function/lib.so", O_WRONLY);
  if (is(req, "write-tmp")) {
    int fd = open("/tmp/ok", O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
      return reply(res, "errno=%s", strerrorname_np(errno));
    ssize_t n = write(fd, "hello", 5);
    close(fd);
    return reply(res, "wrote %zd", n);
  }
  if (is(req, "exec-tmp")) {
    /* Drop a binary copy of /function/lib.so in /tmp and try to map it executable: noexec. */
    int fd = open("/tmp/x", O_RDWR | O_CREAT, 0755);
    if (fd < 0 || write(fd,
                        "\x7f"
                        "ELF",
                        4) != 4)
      return reply(res, "setup failed");
    void* p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? reply(res, "errno=%s", strerrorname_np(errno)) : reply(res, "mapped");
  }
  if (is(req, "fill-tmp")) {
    int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static char buf[1 << 16];
    long total = 0;
    ssize_t n;
    signal(SIGXFSZ, SIG_IGN);
    while ((n = write(fd, buf, sizeof buf)) > 0)
      total += n;
    int err = errno;
    close(fd);
    unlink("/tmp/fill");
    return reply(res, "wrote=%ld errno=%s", total, strerrorname_np(err));
  }
  if (is(req, "fds")) {
    int n = 0;
    while (n < 10000 && open("/dev/null", O_RDONLY) >= 0)
      ++n;
    int err = errno;
    for (int fd = 4; fd < 4 + n + 8; ++fd)
      close(fd);
    return reply(res, "opened=%d errno=%s", n, strerrorname_np(err));
  }
  if (is(req, "mmap-huge")) {
    void* p = mmap(NULL, 100ul << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? reply(res, "errno=%s", strerrorname_np(errno)) : reply(res, "mapped");
  }
  if (is(req, "exec-sh")) {
    char* argv[] = {"/bin/sh", "-c", "id", NULL};
    execve("/bin/sh", argv, environ);
    return reply(res, "errno=%s", strerrorname_np(errno));
  }
  if (is(req, "connect-local")) {
    const faas_str* p = faas_request_header(req, "x-port");
    return try_connect(res, "127.0.0.1", p ? atoi(p->data) : 80);
  }
  if (is(req, "connect-public"))
    return try_connect(res, "1.1.1.1", 80);
  if (is(req, "raw-socket")) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    int e1 = errno;
    int p = socket(AF_PACKET, SOCK_RAW, 0);
    int e2 = errno;
    int nl = socket(AF_NETLINK, SOCK_RAW, 0);
    int e3 = errno;
    return reply(res, "raw=%s packet=%s netlink=%s", s < 0 ? strerrorname_np(e1) : "OPEN",
                 p < 0 ? strerrorname_np(e2) : "OPEN", nl < 0 ? strerrorname_np(e3) : "OPEN");
  }
  if (is(req, "hostname")) {
    char h[64] = {0};
    gethostname(h, sizeof h - 1);
    int rc = sethostname("pwned", 5);
    return reply(res, "hostname=%s set=%s", h, rc == 0 ? "OK" : strerrorname_np(errno));
  }
  if (is(req, "listdir")) {
    /* What can it see? The jail's root holds only dev, function, tmp. */
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    char buf[4096];
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    char out[1024] = "";
    for (long off = 0; off < n;) {
      unsigned short reclen = *(unsigned short*)(buf + off + 16);
      const char* name = buf + off + 19;
      if (name[0] != '.') {
        strncat(out, name, sizeof out - strlen(out) - 2);
        strncat(out, " ", sizeof out - strlen(out) - 1);
      }
      off += reclen;
    }
    return reply(res, "%s", out);
  }
  if (is(req, "sleep")) {
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return reply(res, "slept");
  }
  if (is(req, "fork-bomb")) {
    int n = 0;
    pid_t p;
    while (n < 100000 && (p = fork()) >= 0) {
      if (p == 0) {
        for (;;)
          pause();
      }
      ++n;
    }
    int err = errno;
    /* PID 1 of its own namespace: kill(-1) reaches every other process in it, and only those. */
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0) {
    }
    return reply(res, "forked=%d errno=%s", n, strerrorname_np(err));
  }
  if (is(req, "thread-bomb")) {
    static pthread_t threads[100000];
    int n = 0;
    int err = 0;
    while (n < 100000 && (err = pthread_create(&threads[n], NULL, nap, NULL)) == 0)
      ++n;
    for (int i = 0; i < n; ++i)
      pthread_join(threads[i], NULL);
    return reply(res, "threads=%d errno=%s", n, strerrorname_np(err));
  }
  if (is(req, "balloon")) {
    /* Touch memory 1 MiB at a time up to 4 GiB; the memory cgroup must stop it. */
    for (size_t mb = 0; mb < 4096; ++mb) {
      volatile char* p = malloc(1 << 20);
      if (p == NULL)
        return reply(res, "malloc failed at %zu MiB", mb);
      for (size_t i = 0; i < (1 << 20); i += 4096)
        p[i] = 1;
    }
    return reply(res, "ballooned 4 GiB");
  }
  if (is(req, "double-fork-hang")) {
    /* A grandchild in its own session, spinning: it must not outlive the instance's kill. */
    pid_t p = fork();
    if (p == 0) {
      setsid();
      if (fork() == 0) {
        for (volatile unsigned long i = 0;; ++i) {
        }
      }
      _exit(0);
    }
    waitpid(p, NULL, 0);
    for (;;)
      pause();
  }
  if (is(req, "busy-threads")) {
    /* Four spinning threads and a hang: bounded by the CPU quota, killed at the timeout. */
    pthread_t t;
    for (int i = 0; i < 4; ++i)
      pthread_create(&t, NULL, spin, NULL);
    for (;;)
      pause();
  }
  if (is(req, "background-thread")) {
    /* Answer at once, keep a thread spinning after the response. */
    static int started = 0;
    pthread_t t;
    if (!started && pthread_create(&t, NULL, spin, NULL) == 0)
      started = 1;
    return reply(res, "answered");
  }
  if (is(req, "kill-daemon")) {
    /* The daemon's pid (from the host) is not in this pid namespace: nothing to signal. */
    const faas_str* p = faas_request_header(req, "x-pid");
    int rc = kill(p ? atoi(p->data) : 1, SIGKILL);
    int e1 = errno;
    int rc1 = kill(1, SIGKILL); /* PID 1 is the function itself: the kernel ignores it */
    return reply(res, "daemon=%s self=%s", rc == 0 ? "SENT" : strerrorname_np(e1),
                 rc1 == 0 ? "ok" : strerrorname_np(errno));
  }
  if (is(req, "kill-zygote")) {
    /* PID 1 of this namespace is the zygote every instance is forked from. From inside the
     * namespace the kernel drops signals to its init that init does not handle: SIGKILL and
     * SIGSTOP included. */
    static const int kSignals[] = {SIGKILL, SIGSTOP, SIGTERM, SIGSEGV, SIGINT, SIGHUP, SIGUSR1};
    int sent = 0;
    for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i) {
      sent += kill(1, kSignals[i]) == 0;
    }
    return reply(res, "sent=%d pid=%d", sent, (int)getpid());
  }
  if (is(req, "half-frame")) {
    /* A frame header promising 100 bytes, 10 of them, then exit: a protocol violation. */
    static const unsigned char kHalf[] = {100, 0,   0,   0,   'a', 'b', 'c',
                                          'd', 'e', 'f', 'g', 'h', 'i', 'j'};
    if (write(3, kHalf, sizeof kHalf) < 0)
      return 1;
    _exit(0);
  }
  /* Raw frames (run in a `fresh` deployment: one frame, then _exit, so nothing is left over). */
  if (is(req, "frame-twice")) {
    /* A well-formed answer twice in one write: the second could answer nobody's request. */
    if (write_result_frames(req, 200, NULL, "twice-answer", 2) != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "frame-oversize")) {
    /* A header announcing one byte more than any frame may have (6 MiB + 256 KiB + 1), then
     * nothing: refused from the header alone, before any buffer is sized for it. */
    static const unsigned char kHeader[] = {0x01, 0x00, 0x64, 0x00};
    if (write(3, kHeader, sizeof kHeader) < 0)
      return 1;
    for (;;)
      pause();
  }
  if (is(req, "frame-1xx")) {
    /* 101 Switching Protocols with a body: the client would take the connection as upgraded. */
    static const char* const kHeaders[] = {"upgrade", "websocket", "connection", "upgrade", NULL};
    if (write_result_frame(req, 101, kHeaders, "smuggled") != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "frame-status-0")) {
    if (write_result_frame(req, 0, NULL, "no status") != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "frame-reserved-headers")) {
    /* Platform and hop-by-hop headers in any case: none may reach the client. */
    static const char* const kHeaders[] = {"X-Invocation-Id",
                                           "forged",
                                           "X-FAAS-Cold-Start",
                                           "forged",
                                           "x-Faas-Trace-Id",
                                           "forged",
                                           "Server-Timing",
                                           "forged",
                                           "Upgrade",
                                           "forged",
                                           "CONNECTION",
                                           "forged",
                                           "Keep-Alive",
                                           "forged",
                                           "Transfer-Encoding",
                                           "forged",
                                           "Content-Length",
                                           "999",
                                           "Proxy-Authenticate",
                                           "forged",
                                           "Proxy-Connection",
                                           "forged",
                                           "TE",
                                           "forged",
                                           "Trailer",
                                           "forged",
                                           "X-Kept",
                                           "yes",
                                           NULL};
    if (write_result_frame(req, 200, kHeaders, "body") != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "frame-bad-header")) {
    /* What the SDK refuses (a name that is no token, a value with CR LF) only a raw frame sends. */
    static const char* const kHeaders[] = {"x-a", "1\r\nSet-Cookie: forged=1", NULL};
    if (write_result_frame(req, 200, kHeaders, "body") != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "frame-garbage")) {
    /* A frame whose payload is no protobuf (an unterminated varint), then it hangs on. With
     * &mb=N it first touches N MiB, so killing and reaping the instance takes the kernel a while
     * (what the daemon must not wait for on a loop thread that serves other connections). One
     * process: its exit keeps one CPU busy, and the loop can run on another. */
    long mb = 0;
    const char* at = memmem(req->query.data, req->query.len, "&mb=", 4);
    if (at != NULL)
      mb = strtol(at + 4, NULL, 10);
    if (mb > 0) {
      size_t bytes = (size_t)mb << 20;
      char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED)
        return reply(res, "mmap errno=%s", strerrorname_np(errno));
      for (size_t i = 0; i < bytes; i += 4096)
        p[i] = 1;
    }
    static const unsigned char kGarbage[] = {8,    0,    0,    0,    0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if (write(3, kGarbage, sizeof kGarbage) < 0)
      return 1;
    for (;;)
      pause();
  }
  if (is(req, "frame-stall")) {
    /* Announces a 6 MiB answer, sends nothing more, and hangs until the timeout kills it. */
    static const unsigned char kHeader[] = {0, 0, 0x60, 0}; /* 6 << 20, little-endian */
    if (write(3, kHeader, sizeof kHeader) < 0)
      return 1;
    for (;;)
      pause();
  }
  /* Pipelining attacks: "none" when no request came behind this one in time (the test retries:
   * the worker may have read both frames at once). */
  if (is(req, "pipe-behind")) {
    /* Honest: logs its own id, and says whether a request was queued behind it meanwhile. */
    int behind = await_behind(1) == 0;
    fprintf(stderr, "log of %.*s\n", (int)req->invocation_id.len, req->invocation_id.data);
    return reply(res, "behind=%d", behind);
  }
  if (is(req, "pipe-swap")) {
    /* Answers the request behind this one before this one: the daemon reads it as this call's
     * answer (the wrong id), which it must refuse; the call behind never gets the forgery. */
    char id[128];
    int len;
    if (await_behind(1500) != 0 || (len = steal_behind(id, sizeof id)) < 0)
      return reply(res, "none");
    if (write_frame_for(id, (size_t)len, "stolen", -1) != 0)
      return 1;
    return reply(res, "front");
  }
  if (is(req, "pipe-crash")) {
    /* Crashes with a request queued behind it. */
    if (await_behind(1500) != 0)
      return reply(res, "none");
    fprintf(stderr, "crashing with a request behind\n");
    fflush(stderr);
    _exit(3);
  }
  if (is(req, "pipe-crash-deep")) {
    /* Crashes with two or more requests queued behind it. */
    if (await_behind(1500) != 0 || await_frames_behind(2, 1500) != 0)
      return reply(res, "none");
    fprintf(stderr, "crashing with %d requests behind\n", frames_behind());
    fflush(stderr);
    _exit(3);
  }
  if (is(req, "pipe-hang-deep")) {
    /* Hangs past its time limit with two or more requests queued behind it. */
    if (await_behind(1500) != 0 || await_frames_behind(2, 1500) != 0)
      return reply(res, "none");
    for (;;)
      pause();
  }
  if (is(req, "pipe-swap-deep")) {
    /* Takes the two requests queued behind it off the channel, answers itself, then forges
     * answers for both in the wrong order (the second's first): the daemon passes the bytes
     * past this call's answer down the line, and the first call behind must refuse the second's
     * answer by its id; neither caller sees the forgery. */
    char id1[128], id2[128];
    int len1, len2;
    if (await_behind(1500) != 0 || await_frames_behind(2, 1500) != 0 ||
        (len1 = steal_one(id1, sizeof id1)) < 0 || (len2 = steal_one(id2, sizeof id2)) < 0)
      return reply(res, "none");
    if (write_frame_for(req->invocation_id.data, req->invocation_id.len, "front", -1) != 0 ||
        write_frame_for(id2, (size_t)len2, "stolen", -1) != 0 ||
        write_frame_for(id1, (size_t)len1, "stolen", -1) != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "pipe-log-lie")) {
    /* Serves the request behind itself and lies about where its own logs end (log_end), then
     * exits: a lie about log_end can only move lines between this function's own invocations. */
    char id[128];
    int len;
    if (await_behind(1500) != 0 || (len = steal_behind(id, sizeof id)) < 0)
      return reply(res, "none");
    fprintf(stderr, "front-log\n");
    fflush(stderr);
    const char* lie = getenv("HOSTILE_LOG_END");
    if (write_frame_for(req->invocation_id.data, req->invocation_id.len, "front",
                        lie != NULL ? atoll(lie) : 0) != 0)
      return 1;
    fprintf(stderr, "behind-log\n");
    fflush(stderr);
    if (write_frame_for(id, (size_t)len, "behind", -1) != 0)
      return 1;
    _exit(0);
  }
  if (is(req, "leftover")) {
    /* Answers this call early with its own frame, then burns CPU and returns, so the worker's
     * real answer ("real") is left on the channel for whoever comes next. */
    if (write_result_frame(req, 200, NULL, "forged") != 0)
      return 1;
    burn_cpu_ms(50);
    return reply(res, "real");
  }
  /* Attacks the sandbox answers by killing the worker (SIGSYS): these never return. */
  if (is(req, "ptrace"))
    return (int)ptrace(PTRACE_ATTACH, getppid(), 0, 0);
  if (is(req, "setuid"))
    return setuid(0);
  if (is(req, "mount"))
    return (int)syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
  if (is(req, "unshare"))
    return unshare(CLONE_NEWUSER);
  if (is(req, "bpf"))
    return (int)syscall(SYS_bpf, 0, 0, 0);
  if (is(req, "perf"))
    return (int)syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
  if (is(req, "keyctl"))
    return (int)syscall(SYS_keyctl, 0, 0, 0);
  if (is(req, "userfaultfd"))
    return (int)syscall(SYS_userfaultfd, 0);
  if (is(req, "io_uring"))
    return (int)syscall(SYS_io_uring_setup, 1, 0);
  if (is(req, "kexec"))
    return (int)syscall(SYS_kexec_load, 0, 0, 0, 0);
  if (is(req, "module"))
    return (int)syscall(SYS_init_module, 0, 0, "");
  if (is(req, "process_vm"))
    return (int)syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0);
  if (is(req, "clone-ns"))
    return (int)syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
  if (is(req, "setns"))
    return (int)syscall(SYS_setns, 0, 0);
  if (is(req, "int80")) {
    /* getpid through the i386 ABI: a bad architecture for the filter. */
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
    return reply(res, "int80 returned %ld", ret);
  }
  /* Crashes the platform must contain. */
  if (is(req, "stack-overflow"))
    return recurse(0);
  if (is(req, "exit"))
    exit(0);
  if (is(req, "stderr-flood")) {
    static char line[1024];
    memset(line, 'e', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 8192; ++i)
      fwrite(line, 1, sizeof line, stderr);
    return reply(res, "flooded");
  }
  if (is(req, "block-signals-sleep")) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;)
      pause();
  }
  if (is(req, "spin")) {
    for (volatile unsigned long i = 0;; ++i) {
    }
  }
  return reply(res, "unknown attack");
}
