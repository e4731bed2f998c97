// What batching would buy the warm path (docs/design/0015-warm-path-batching.md), measured on the
// exchange alone, without HTTP:
//   * BM_WorkerWindow/K: a real faas-worker (no jail) serving `hello` over a socketpair, with K
//     request frames kept in flight (K = 1 is today's protocol: one frame, then wait). The
//     worker reads every frame that has arrived in one recv and answers them in order, so with
//     K > 1 it finds its next request without sleeping, and the writer wakes nobody.
//   * BM_WorkerBatch/K: the same worker sent K requests in one write, then their K answers read.
//   * BM_SocketPingPong vs BM_ShmRing/SPIN_US: a forked child answering a 300-byte message with a
//     no-op, over a socket (poll, recv, send: the worker loop's syscalls) or over a shared-memory
//     slot with a futex, after spinning SPIN_US µs on both sides before sleeping.
// FAAS_BENCH_WORKER=/other/build/bin/faas-worker runs BM_WorkerWindow against another worker.
// Counters per request: each side's context switches (a sleep that someone's wake-up ended) and
// CPU time. Here each side has a CPU of its own; on a loaded 2-CPU host a spin takes CPU that
// faasd, the load generator or another worker needed.
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "faas/base/time.h"
#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"
#include "faas/v1/worker.pb.h"

namespace {

// Context switches of `pid` so far: voluntary (it slept) and involuntary (it was preempted).
std::pair<uint64_t, uint64_t> ContextSwitches(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::pair<uint64_t, uint64_t> cs{0, 0};
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("voluntary_ctxt_switches:")) {
      cs.first = std::stoull(line.substr(line.find(':') + 1));
    } else if (line.starts_with("nonvoluntary_ctxt_switches:")) {
      cs.second = std::stoull(line.substr(line.find(':') + 1));
    }
  }
  return cs;
}

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::pair<uint64_t, uint64_t> SelfContextSwitches() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return {static_cast<uint64_t>(ru.ru_nvcsw), static_cast<uint64_t>(ru.ru_nivcsw)};
}

// Per-request context switches and CPU of both sides over the measured loop.
class SideCounters {
 public:
  explicit SideCounters(pid_t child) : child_(child) {
    ::clock_getcpuclockid(child, &child_clock_);
    child_cs_ = ContextSwitches(child);
    child_cpu_ = CpuSeconds(child_clock_);
    self_cs_ = SelfContextSwitches();
    self_cpu_ = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
  }
  void Report(benchmark::State& state) const {
    const auto n = static_cast<double>(state.iterations());
    const auto [worker_sleeps, worker_preempted] = ContextSwitches(child_);
    const auto [self_sleeps, self_preempted] = SelfContextSwitches();
    state.counters["worker_sleeps"] = static_cast<double>(worker_sleeps - child_cs_.first) / n;
    state.counters["worker_preempted"] =
        static_cast<double>(worker_preempted - child_cs_.second) / n;
    state.counters["worker_cpu_us"] = (CpuSeconds(child_clock_) - child_cpu_) * 1e6 / n;
    state.counters["daemon_sleeps"] = static_cast<double>(self_sleeps - self_cs_.first) / n;
    state.counters["daemon_preempted"] = static_cast<double>(self_preempted - self_cs_.second) / n;
    state.counters["daemon_cpu_us"] = (CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - self_cpu_) * 1e6 / n;
    state.SetItemsProcessed(state.iterations());
  }

 private:
  pid_t child_;
  clockid_t child_clock_{};
  std::pair<uint64_t, uint64_t> child_cs_;
  std::pair<uint64_t, uint64_t> self_cs_;
  double child_cpu_ = 0;
  double self_cpu_ = 0;
};

std::string Framed(const google::protobuf::MessageLite& msg) {
  std::string frame(faas::sandbox::kFrameHeaderBytes, '\0');
  msg.AppendToString(&frame);
  faas::sandbox::FillFrameHeader(&frame);
  return frame;
}

// A request like the gateway's for `GET /function/hello` from wrk (about 300 bytes framed).
std::string HelloRequest() {
  faas::v1::WorkerRequest req;
  req.set_invocation_id("01jaaaaaaaaaaaaaaaaaaaaaaa");
  req.set_method("GET");
  req.set_path("/function/hello");
  for (const char* name : {"host", "user-agent", "accept", "x-forwarded-for", "traceparent"}) {
    auto* h = req.add_headers();
    h->set_name(name);
    h->set_value("0123456789abcdef0123456789abcdef0123456789");
  }
  req.set_trigger("http");
  req.set_attempt(1);
  req.set_deadline_unix_ms(faas::UnixMillisNow() + 30000);
  return Framed(req);
}

// A faas-worker without its jail serving `hello` on the other end of `*ours`, past its handshake.
pid_t SpawnWorker(faas::UniqueFd* ours) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  *ours = faas::UniqueFd(sv[0]);
  faas::UniqueFd theirs(sv[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, theirs.Get(), 3);
  // FAAS_BENCH_WORKER: another build's worker (e.g. a baseline), same function library.
  const char* other = std::getenv("FAAS_BENCH_WORKER");
  std::string worker = other != nullptr ? other : std::string(FAAS_BENCH_BIN_DIR) + "/faas-worker";
  std::string library = std::string(FAAS_BENCH_FUNCTIONS_DIR) + "/libhello.so";
  std::string parent = std::to_string(::getpid());
  std::string no_jail = "--no-jail", lib_flag = "--library", parent_flag = "--parent-pid";
  char* argv[] = {worker.data(),      no_jail.data(), lib_flag.data(), library.data(),
                  parent_flag.data(), parent.data(),  nullptr};
  pid_t pid = 0;
  if (::posix_spawn(&pid, worker.c_str(), &actions, nullptr, argv, environ) != 0) {
    return 0;
  }
  posix_spawn_file_actions_destroy(&actions);
  auto deadline = faas::Clock::now() + std::chrono::seconds(10);
  auto jailed = faas::sandbox::ReadFrame(ours->Get(), faas::sandbox::kMaxFrameBytes, deadline);
  std::string env = Framed(faas::v1::WorkerEnv());
  if (!jailed.ok() || ::send(ours->Get(), env.data(), env.size(), 0) < 0 ||
      !faas::sandbox::ReadFrame(ours->Get(), faas::sandbox::kMaxFrameBytes, deadline).ok()) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return 0;
  }
  ::fcntl(ours->Get(), F_SETFL, O_NONBLOCK);
  return pid;
}

void WriteAllOrAbort(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) {
      std::abort();
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Answers as they arrive: one recv takes every answer already there.
class AnswerReader {
 public:
  explicit AnswerReader(int fd) : fd_(fd) {}
  // Blocks (in poll) until one more answer is complete.
  void Next() {
    for (;;) {
      if (buf_.size() >= faas::sandbox::kFrameHeaderBytes) {
        const std::size_t total =
            faas::sandbox::kFrameHeaderBytes + faas::sandbox::FrameLength(buf_.data());
        if (buf_.size() >= total) {
          buf_.erase(0, total);
          return;
        }
      }
      char chunk[16384];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        pollfd p{fd_, POLLIN, 0};
        ::poll(&p, 1, -1);
        continue;
      }
      std::abort();  // the worker died
    }
  }

 private:
  int fd_;
  std::string buf_;
};

void BM_WorkerWindow(benchmark::State& state) {
  const auto window = static_cast<int>(state.range(0));
  faas::UniqueFd fd;
  const pid_t pid = SpawnWorker(&fd);
  if (pid == 0) {
    state.SkipWithError("cannot start faas-worker");
    return;
  }
  const std::string request = HelloRequest();
  AnswerReader answers(fd.Get());
  std::string first;
  for (int i = 0; i < window; ++i) {
    first += request;
  }
  WriteAllOrAbort(fd.Get(), first);
  SideCounters counters(pid);
  for (auto _ : state) {
    answers.Next();                      // the oldest request in flight is answered
    WriteAllOrAbort(fd.Get(), request);  // and another takes its place
  }
  counters.Report(state);
  for (int i = 0; i < window; ++i) {
    answers.Next();
  }
  fd.Reset();  // the worker retires
  ::waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_WorkerWindow)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->UseRealTime();

// K requests written with one send, then their K answers read: a batch per wake-up, as a busy
// instance would get its queued requests.
void BM_WorkerBatch(benchmark::State& state) {
  const auto batch = static_cast<int>(state.range(0));
  faas::UniqueFd fd;
  const pid_t pid = SpawnWorker(&fd);
  if (pid == 0) {
    state.SkipWithError("cannot start faas-worker");
    return;
  }
  std::string requests;
  for (int i = 0; i < batch; ++i) {
    requests += HelloRequest();
  }
  AnswerReader answers(fd.Get());
  SideCounters counters(pid);
  for (auto _ : state) {
    WriteAllOrAbort(fd.Get(), requests);
    for (int i = 0; i < batch; ++i) {
      answers.Next();
    }
  }
  counters.Report(state);
  // Report counts batches; per request is per batch / K.
  for (const char* name : {"worker_sleeps", "worker_preempted", "worker_cpu_us", "daemon_sleeps",
                           "daemon_preempted", "daemon_cpu_us"}) {
    state.counters[name] = state.counters[name] / batch;
  }
  state.SetItemsProcessed(state.iterations() * batch);
  fd.Reset();
  ::waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_WorkerBatch)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->UseRealTime();

constexpr std::size_t kMessage = 300;

// A forked child that answers each kMessage-byte message with one of its own, over a socket, the
// way the worker loop does: poll, recv, send.
void BM_SocketPingPong(benchmark::State& state) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  faas::UniqueFd a(sv[0]), b(sv[1]);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    a.Reset();  // the parent's end: closing it there must reach us as EOF
    char buf[kMessage];
    for (;;) {
      pollfd p{b.Get(), POLLIN, 0};
      ::poll(&p, 1, -1);
      std::size_t got = 0;
      while (got < kMessage) {
        ssize_t n = ::recv(b.Get(), buf + got, kMessage - got, 0);
        if (n <= 0) {
          ::_exit(0);
        }
        got += static_cast<std::size_t>(n);
      }
      if (::send(b.Get(), buf, kMessage, MSG_NOSIGNAL) != static_cast<ssize_t>(kMessage)) {
        ::_exit(0);
      }
    }
  }
  b.Reset();
  ::fcntl(a.Get(), F_SETFL, O_NONBLOCK);
  std::string msg(kMessage, 'x');
  char in[kMessage];
  SideCounters counters(pid);
  for (auto _ : state) {
    WriteAllOrAbort(a.Get(), msg);
    std::size_t got = 0;
    while (got < kMessage) {
      ssize_t n = ::recv(a.Get(), in + got, kMessage - got, MSG_DONTWAIT);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else {
        pollfd p{a.Get(), POLLIN, 0};
        ::poll(&p, 1, -1);
      }
    }
  }
  counters.Report(state);
  a.Reset();
  ::waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_SocketPingPong)->UseRealTime();

// One request slot and one answer slot in shared memory; a side that finds nothing spins for
// `spin` and then sleeps on the sequence word's futex (announced in `sleeping`, so the other side
// makes the wake-up syscall only when someone sleeps).
struct Shared {
  std::atomic<uint32_t> req_seq{0};
  std::atomic<uint32_t> ans_seq{0};
  std::atomic<uint32_t> req_sleeping{0};
  std::atomic<uint32_t> ans_sleeping{0};
  char req[kMessage];
  char ans[kMessage];
};

void Publish(std::atomic<uint32_t>* seq, std::atomic<uint32_t>* sleeping, uint32_t value) {
  seq->store(value, std::memory_order_seq_cst);
  if (sleeping->load(std::memory_order_seq_cst) != 0) {
    ::syscall(SYS_futex, seq, FUTEX_WAKE, 1, nullptr, nullptr, 0);
  }
}

// Waits until *seq != old: spins for `spin`, then sleeps.
void Await(std::atomic<uint32_t>* seq, std::atomic<uint32_t>* sleeping, uint32_t old,
           std::chrono::microseconds spin) {
  const auto until = faas::Clock::now() + spin;
  while (seq->load(std::memory_order_acquire) == old) {
    if (faas::Clock::now() < until) {
      __builtin_ia32_pause();
      continue;
    }
    sleeping->store(1, std::memory_order_seq_cst);
    if (seq->load(std::memory_order_seq_cst) == old) {
      ::syscall(SYS_futex, seq, FUTEX_WAIT, old, nullptr, nullptr, 0);
    }
    sleeping->store(0, std::memory_order_relaxed);
  }
}

void BM_ShmRing(benchmark::State& state) {
  const std::chrono::microseconds spin(state.range(0));
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* shared = new (mem) Shared();
  constexpr uint32_t kStop = 0xffffffffu;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (uint32_t seen = 0;;) {
      Await(&shared->req_seq, &shared->req_sleeping, seen, spin);
      seen = shared->req_seq.load(std::memory_order_acquire);
      if (seen == kStop) {
        ::_exit(0);
      }
      std::memcpy(shared->ans, shared->req, kMessage);
      Publish(&shared->ans_seq, &shared->ans_sleeping, seen);
    }
  }
  std::string msg(kMessage, 'x');
  char in[kMessage];
  uint32_t seq = 0;
  SideCounters counters(pid);
  for (auto _ : state) {
    std::memcpy(shared->req, msg.data(), kMessage);
    ++seq;
    Publish(&shared->req_seq, &shared->req_sleeping, seq);
    Await(&shared->ans_seq, &shared->ans_sleeping, seq - 1, spin);
    std::memcpy(in, shared->ans, kMessage);
  }
  counters.Report(state);
  Publish(&shared->req_seq, &shared->req_sleeping, kStop);
  ::waitpid(pid, nullptr, 0);
  ::munmap(mem, sizeof(Shared));
}
BENCHMARK(BM_ShmRing)->Arg(0)->Arg(5)->Arg(50)->UseRealTime();

}  // namespace
