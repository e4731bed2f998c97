// The hostile suite: a function that attacks its sandbox, each attack asserting the exact outcome
// and that the daemon and a well-behaved neighbour keep serving (docs/sandbox.md).
#include <dirent.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

using std::chrono::milliseconds;

// What uname(2) reports inside the sandbox (sandbox/src/emulated_syscalls.cc).
constexpr const char* kSandboxKernelRelease = "6.0.0-faas";

std::string HostileLib() {
  return std::string(FAAS_TEST_HOSTILE_LIB);
}

std::string CgroupDirOf(const std::string& pid, const std::string& controller);
std::vector<std::string> FunctionProcesses(pid_t daemon);

class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      return;  // each test skips with the reason
    }
    daemon_ = new FaasdProcess();
    ASSERT_TRUE(daemon_->Start()) << daemon_->Logs();
    for (auto [name, lib] :
         {std::pair{"hostile", HostileLib()}, std::pair{"hello", FunctionLib("hello")}}) {
      CommandResult r = daemon_->Ctl(
          {"deploy", name, lib, "--timeout", "2s", "--env", "GREETING=hi", "--max-instances", "1"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    CommandResult r = daemon_->Ctl(
        {"deploy", "cpu-capped", HostileLib(), "--timeout", "5s", "--cpu-limit", "200ms"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Several instances of one function at once, for the function-level CPU cap.
    r = daemon_->Ctl(
        {"deploy", "spinners", HostileLib(), "--timeout", "2s", "--max-instances", "4"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Raw-frame attackers: `fresh`, so the instance that wrote a frame behind the worker's back
    // is never reused; and a warm one with a single instance for the leftover-frame attacks.
    r = daemon_->Ctl({"deploy", "forger", HostileLib(), "--timeout", "2s", "--isolation", "fresh"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = daemon_->Ctl(
        {"deploy", "leftover", HostileLib(), "--timeout", "2s", "--max-instances", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Attacks run in instances forked from each version's zygote, as in production: wait until
    // every zygote is up (they start in the background after a deploy).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (const char* fn : {"hostile", "hello", "cpu-capped", "spinners", "forger", "leftover"}) {
      std::string want = std::string("faas_instances{function=\"") + fn + "\",state=\"zygote\"} 1";
      while (HttpRequest(daemon_->http_port(), "GET", "/metrics", "", {}).body.find(want) ==
             std::string::npos) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no zygote for " << fn;
      }
    }
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      pid_t pid = daemon_->pid();
      EXPECT_EQ(daemon_->Stop(), 0);
      delete daemon_;
      daemon_ = nullptr;
      // Nothing outlives the daemon: its cgroups are gone, and a cgroup cannot be removed
      // while any process is still in it.
      std::string leaf = "faas-" + std::to_string(pid);
      for (const char* ctrl : {"pids", "cpu", "cpuacct", "memory"}) {
        std::string own = CgroupDirOf("self", ctrl);
        std::string dir = (own.empty() ? std::string("/sys/fs/cgroup/") + ctrl : own) + "/" + leaf;
        EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir << " was left behind";
      }
    }
  }
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the sandbox needs root (namespaces, mounts, setresuid); run as root";
    }
    ASSERT_NE(daemon_, nullptr);
  }
  void TearDown() override {
    // Whatever the attack did, the daemon and the neighbour keep serving.
    HttpResult hello = Get("hello", "");
    EXPECT_EQ(hello.status, 200) << "neighbour broken after the attack";
    if (HasFailure()) {
      std::fprintf(stderr, "---- faasd log (tail) ----\n%s\n",
                   daemon_->Logs()
                       .substr(daemon_->Logs().size() > 4000 ? daemon_->Logs().size() - 4000 : 0)
                       .c_str());
    }
  }

  static HttpResult Get(const std::string& fn, const std::string& query,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
    return HttpRequest(daemon_->http_port(), "GET", "/function/" + fn + "?" + query, "", headers);
  }
  static HttpResult Attack(const std::string& what,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
    return Get("hostile", "do=" + what, std::move(headers));
  }
  // Each zygote keeps one instance parked, two for the `isolation: fresh` forger (design 0010,
  // "Parked instances"); a cold start takes one and the reaper forks the next one in the
  // background, after the response. Until that fork is done the zygote is running, and its
  // child is mid-setup in the zygote's z-N cgroup:
  // still in EnterInstanceJail (sandbox/src/instance_jail.cc), with the full capabilities the
  // kernel gives any process in a user namespace it just created (its own, owned by the
  // function's uid, none in the host's), until it drops them after mounting its /tmp, and then
  // in z-N until faasd moves it into its i-N cgroup. It runs no function code in that time (raw
  // clone, signals blocked, no request before the move). A test that looks at the process tree
  // waits for that, until every function has its next instance parked (jailed, moved, ready).
  static void WaitForParkedInstances() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (const char* fn : {"hostile", "hello", "cpu-capped", "spinners", "forger", "leftover"}) {
      std::string want = std::string("faas_instances{function=\"") + fn + "\",state=\"parked\"} " +
                         (std::string(fn) == "forger" ? "2" : "1");
      while (HttpRequest(daemon_->http_port(), "GET", "/metrics", "", {}).body.find(want) ==
             std::string::npos) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no parked instance for " << fn;
      }
    }
  }
  static std::string Code(const HttpResult& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_discarded() || !j.contains("error") ? "" : j["error"]["code"].get<std::string>();
  }

  static FaasdProcess* daemon_;
};

FaasdProcess* Hostile::daemon_ = nullptr;

// The function sees an error, and nothing escapes.
struct Refused {
  const char* attack;
  const char* expect;  // substring of the function's own report
};

TEST_F(Hostile, RefusedAttacksFailInsideTheFunction) {
  const Refused cases[] = {
      {"shadow", "errno=ENOENT"},               // no /etc in the view
      {"write-root", "errno=EROFS"},            // the root is read-only
      {"write-lib", "errno=EACCES"},            // its own library: 0444 on a read-only bind
      {"exec-sh", "errno=ENOENT"},              // no /bin/sh in the view
      {"exec-tmp", "errno=EPERM"},              // /tmp is noexec
      {"connect-public", "errno=ENETUNREACH"},  // network namespace with only lo
      {"raw-socket", "raw=EPERM packet=EPERM netlink=EPERM"},
      {"mmap-huge", "errno=ENOMEM"},  // RLIMIT_AS
      {"fds", "errno=EMFILE"},        // RLIMIT_NOFILE 1024
      {"hostname", "hostname=faas set=EPERM"},
      {"write-tmp", "wrote 5"},  // the one writable place
  };
  for (const Refused& c : cases) {
    HttpResult r = Attack(c.attack);
    EXPECT_EQ(r.status, 200) << c.attack << ": " << r.body;
    EXPECT_NE(r.body.find(c.expect), std::string::npos) << c.attack << ": " << r.body;
  }
}

TEST_F(Hostile, SeesOnlyItsOwnTinyFilesystem) {
  HttpResult r = Attack("listdir");
  std::istringstream words(r.body);
  std::vector<std::string> names{std::istream_iterator<std::string>(words), {}};
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"dev", "function", "tmp"})) << r.body;
}

TEST_F(Hostile, OpenFilesAreCappedByRlimit) {
  HttpResult r = Attack("fds");
  long opened = std::atol(r.body.c_str() + r.body.find('=') + 1);
  EXPECT_GT(opened, 1000) << r.body;
  EXPECT_LE(opened, 1020) << r.body;
}

TEST_F(Hostile, CannotReachTheDaemonOverLoopback) {
  HttpResult r = Attack("connect-local", {{"X-Port", std::to_string(daemon_->http_port())}});
  EXPECT_NE(r.body.find("errno=ECONNREFUSED"), std::string::npos) << r.body;
}

TEST_F(Hostile, CannotReadTheDaemonsDataDir) {
  HttpResult r = Attack("datadir", {{"X-Target", daemon_->data_dir() + "/faas.db"}});
  EXPECT_NE(r.body.find("errno=ENOENT"), std::string::npos) << r.body;
}

TEST_F(Hostile, RunsAsAnUnprivilegedUserWithOnlyItsOwnEnvironment) {
  HttpResult id = Attack("identity");
  EXPECT_EQ(id.status, 200);
  EXPECT_EQ(id.body.find("uid=0 "), std::string::npos) << id.body;
  EXPECT_NE(id.body.find("uid=2"), std::string::npos) << id.body;  // 2,000,000..2,999,999
  HttpResult env = Attack("env");
  EXPECT_EQ(env.body, "count=1 GREETING=hi") << env.body;
}

TEST_F(Hostile, TmpIsSizeLimited) {
  HttpResult r = Attack("fill-tmp");
  EXPECT_EQ(r.status, 200);
  // 16 MiB: RLIMIT_FSIZE (EFBIG) or the tmpfs size (ENOSPC), whichever comes first.
  EXPECT_TRUE(r.body.find("errno=EFBIG") != std::string::npos ||
              r.body.find("errno=ENOSPC") != std::string::npos)
      << r.body;
  long wrote = std::atol(r.body.c_str() + r.body.find('=') + 1);
  EXPECT_LE(wrote, 16l << 20);
}

TEST_F(Hostile, KernelSurfaceCallsKillTheWorker) {
  for (const char* call :
       {"ptrace", "setuid", "mount", "unshare", "bpf", "perf", "keyctl", "userfaultfd", "io_uring",
        "kexec", "module", "process_vm", "clone-ns", "setns"}) {
    HttpResult r = Attack(call);
    EXPECT_EQ(r.status, 502) << call << ": " << r.body;
    EXPECT_EQ(Code(r), "sandbox_violation") << call << ": " << r.body;
    // Killed at the call, not at the 2 s timeout (faasd's own measure: Server-Timing exec).
    EXPECT_LT(ServerTimingMs(r, "exec"), 2000 / 2) << call << ": " << r.Header("server-timing");
  }
}

TEST_F(Hostile, ForeignArchitectureSyscallsNeverRun) {
  // i386 `int 0x80`: the filter's bad-arch action kills with SIGSYS; a kernel built without
  // IA32 emulation refuses it first with SIGSEGV. Either way the call never runs.
  HttpResult r = Attack("int80");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(Code(r) == "sandbox_violation" ||
              (Code(r) == "function_crashed" && r.body.find("SIGSEGV") != std::string::npos))
      << r.body;
}

TEST_F(Hostile, CrashesAreContained) {
  HttpResult overflow = Attack("stack-overflow");
  EXPECT_EQ(overflow.status, 502);
  EXPECT_EQ(Code(overflow), "function_crashed");
  EXPECT_NE(overflow.body.find("SIGSEGV"), std::string::npos) << overflow.body;
  HttpResult exited = Attack("exit");
  EXPECT_EQ(Code(exited), "function_crashed");
  EXPECT_NE(exited.body.find("exited with status 0"), std::string::npos) << exited.body;
}

TEST_F(Hostile, HangsAreKilledAtTheTimeout) {
  for (const char* what : {"spin", "block-signals-sleep"}) {
    HttpResult r = Attack(what);
    EXPECT_EQ(r.status, 504) << what;
    EXPECT_EQ(Code(r), "function_timeout") << what;
    // At the 2 s timeout as faasd measured it, with slack proportional to it.
    EXPECT_GE(ServerTimingMs(r, "exec"), 2000) << what << ": " << r.Header("server-timing");
    EXPECT_LT(ServerTimingMs(r, "exec"), 2000 * 1.25) << what << ": " << r.Header("server-timing");
  }
}

TEST_F(Hostile, BusyThreadsAreBoundedAndKilledAtTheTimeout) {
  HttpResult r = Attack("busy-threads");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_GE(ServerTimingMs(r, "exec"), 2000) << r.Header("server-timing");
  EXPECT_LT(ServerTimingMs(r, "exec"), 2000 * 1.25) << r.Header("server-timing");
}

// Four instances of one function, each spinning four threads, together stay under the function's
// CPU cap (--function-cpus default: one CPU fewer than the machine), so they leave a CPU to
// faasd and the other functions. Without the cap they would take every CPU (each instance alone
// may use one).
// What the spinners get depends on the rest of the host: on a loaded one their group may get
// less than the cap, and then the window shows nothing about it. The window counts only when the
// kernel throttled the group in it (cpu.stat nr_throttled grew: the spinners wanted more than the
// cap); the configured quota is checked whatever the load.
TEST_F(Hostile, AFunctionsInstancesTogetherStayUnderItsCpuCap) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  const int cpus = CPU_COUNT(&set);
  const int cap = std::max(1, cpus - 1);
  if (cpus < 2 || cap >= 4) {
    GTEST_SKIP() << cpus << " CPUs: four one-CPU instances cannot pass a cap of " << cap;
  }
  const std::string leaf = "/faas-" + std::to_string(daemon_->pid()) + "/f-spinners";
  const std::string own_acct = CgroupDirOf("self", "cpuacct");
  const std::string own_cpu = CgroupDirOf("self", "cpu");
  const std::string usage_file =
      (own_acct.empty() ? std::string("/sys/fs/cgroup/cpuacct") : own_acct) + leaf +
      "/cpuacct.usage";
  const std::string cpu_dir =
      (own_cpu.empty() ? std::string("/sys/fs/cgroup/cpu") : own_cpu) + leaf;
  if (ReadFileOrEmpty(usage_file).empty() || ReadFileOrEmpty(cpu_dir + "/cpu.stat").empty()) {
    GTEST_SKIP() << "no cgroup v1 cpu and cpuacct groups at " << usage_file << ", " << cpu_dir;
  }
  const long long period = std::atoll(ReadFileOrEmpty(cpu_dir + "/cpu.cfs_period_us").c_str());
  EXPECT_EQ(std::atoll(ReadFileOrEmpty(cpu_dir + "/cpu.cfs_quota_us").c_str()), cap * period)
      << "the function's group is not capped at " << cap << " CPUs";
  auto read_usage = [&] { return std::atoll(ReadFileOrEmpty(usage_file).c_str()); };
  auto read_throttled = [&] {  // cpu.stat: "nr_throttled N"
    const std::string stat = ReadFileOrEmpty(cpu_dir + "/cpu.stat");
    const std::size_t at = stat.find("nr_throttled ");
    return at == std::string::npos ? -1 : std::atoll(stat.c_str() + at + 13);
  };
  // Up to three attacks, until one's window shows the group throttled: a busy host may keep
  // the spinners under the cap for a while.
  double used_cpus = 0;
  bool throttled = false;
  for (int round = 0; round < 3 && !throttled; ++round) {
    std::vector<std::thread> attacks;
    for (int i = 0; i < 4; ++i) {
      attacks.emplace_back([] { Get("spinners", "do=busy-threads"); });  // 504 after 2 s
    }
    const std::string busy = "faas_instances{function=\"spinners\",state=\"busy\"} 4";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (HttpRequest(daemon_->http_port(), "GET", "/metrics", "", {}).body.find(busy) ==
               std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
    }
    // A measurement window (not synchronisation): CPU time used over 800 ms of wall time.
    const long long u0 = read_usage(), n0 = read_throttled();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(milliseconds(800));
    const long long u1 = read_usage(), n1 = read_throttled();
    const double wall_ns = static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    for (auto& t : attacks) {
      t.join();
    }
    used_cpus = static_cast<double>(u1 - u0) / wall_ns;
    throttled = n1 > n0;
    // Load elsewhere only lowers what the group gets: the bound holds on any host.
    EXPECT_LE(used_cpus, cap * 1.15)
        << "16 spinning threads in 4 instances used " << used_cpus << " CPUs; the cap is " << cap;
  }
  if (!throttled) {
    GTEST_SKIP() << "the spinners were never throttled in three windows (the last used "
                 << used_cpus << " CPUs of a cap of " << cap << "): the host was too busy for "
                 << "them to reach the cap, so the windows show nothing about it";
  }
}

TEST_F(Hostile, CannotSignalTheDaemonOrEscapeItsPidNamespace) {
  HttpResult r = Attack("kill-daemon", {{"X-Pid", std::to_string(daemon_->pid())}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("daemon=ESRCH"), std::string::npos) << r.body;
  EXPECT_TRUE(daemon_->Running());
}

TEST_F(Hostile, ABackgroundThreadAfterTheResponseDoesNotBlockTheNextInvocation) {
  HttpResult first = Attack("background-thread");
  EXPECT_EQ(first.status, 200) << first.body;
  HttpResult second = Attack("identity");  // same instance, a spinner running beside it
  EXPECT_EQ(second.status, 200) << second.body;
}

TEST_F(Hostile, HalfAFrameIsAProtocolViolation) {
  HttpResult r = Attack("half-frame");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(Code(r), "function_crashed") << r.body;
  EXPECT_NE(r.body.find("protocol"), std::string::npos) << r.body;
}

// The daemon expects exactly one frame per request, of at most kMaxFrameBytes: more bytes after
// it, or a header announcing more, is a protocol violation named as such (sandbox::FrameDecoder's
// words), on the blocking path a fresh instance takes and the loop's alike (one Pump).
TEST_F(Hostile, TwoFramesForOneRequestAndAnOversizedOneAreProtocolViolations) {
  const std::size_t limit = (6u << 20) + (256u << 10);  // sandbox::kMaxFrameBytes
  const std::string oversize = "protocol violation: frame of " + std::to_string(limit + 1) +
                               " bytes exceeds the limit of " + std::to_string(limit);
  const std::string trailing = "protocol violation: bytes after the response frame";
  for (const auto& [attack, words] :
       {std::pair{"frame-twice", trailing}, std::pair{"frame-oversize", oversize}}) {
    HttpResult r = Get("forger", std::string("do=") + attack);
    EXPECT_EQ(r.status, 502) << attack << ": " << r.body;
    EXPECT_EQ(Code(r), "function_crashed") << attack << ": " << r.body;
    EXPECT_NE(r.body.find(words), std::string::npos) << attack << ": " << r.body;
    EXPECT_EQ(r.body.find("twice-answer"), std::string::npos) << r.body;  // never the forgery
  }
}

// A status outside 200..599 (a 1xx would make the client take the connection as switched or
// keep waiting for the final answer) is a protocol violation, whoever wrote the frame.
TEST_F(Hostile, AStatusBelow200FromARawFrameIsAProtocolViolation) {
  for (auto [attack, status] : {std::pair{"frame-1xx", "101"}, std::pair{"frame-status-0", "0"}}) {
    HttpResult r = Get("forger", std::string("do=") + attack);
    EXPECT_EQ(r.status, 502) << attack << ": " << r.body;
    EXPECT_EQ(Code(r), "function_crashed") << attack << ": " << r.body;
    EXPECT_NE(r.body.find(std::string("protocol violation: status ") + status), std::string::npos)
        << attack << ": " << r.body;
    EXPECT_EQ(r.body.find("smuggled"), std::string::npos) << r.body;
  }
}

// Platform and hop-by-hop headers from the function are dropped whatever their case; its own
// headers pass.
TEST_F(Hostile, ReservedResponseHeadersNeverReachTheClientInAnyCase) {
  HttpResult r = Get("forger", "do=frame-reserved-headers");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "body");
  EXPECT_EQ(r.Header("x-kept"), "yes");
  EXPECT_EQ(r.Header("content-length"), "4");
  for (const auto& [name, value] : r.headers) {
    EXPECT_NE(value, "forged") << name;
  }
  for (const char* hop : {"upgrade", "keep-alive", "transfer-encoding", "proxy-authenticate",
                          "proxy-connection", "te", "trailer"}) {
    EXPECT_EQ(r.headers.count(hop), 0u) << hop;
  }
  EXPECT_EQ(r.Header("x-invocation-id").size(), 26u) << r.Header("x-invocation-id");
  EXPECT_NE(r.Header("server-timing").find("exec;dur="), std::string::npos);
}

// What the SDK refuses to send (CR LF in a value) arrives only in a forged frame: a violation.
TEST_F(Hostile, AMalformedResponseHeaderFromARawFrameIsAProtocolViolation) {
  HttpResult r = Get("forger", "do=frame-bad-header");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(Code(r), "function_crashed") << r.body;
  EXPECT_NE(r.body.find("protocol violation"), std::string::npos) << r.body;
  EXPECT_EQ(r.Header("set-cookie"), "");
}

// CPU time (ms, from /proc/PID/schedstat: the scheduler's exact count, which
// CLOCK_PROCESS_CPUTIME_ID reads too, not tick samples) and state letter (/proc/PID/stat) of a
// single-threaded `pid`.
std::pair<long, char> CpuAndState(const std::string& pid) {
  std::string stat = ReadFileOrEmpty("/proc/" + pid + "/stat");
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) {
    return {0, '?'};
  }
  const long long ns = std::atoll(ReadFileOrEmpty("/proc/" + pid + "/schedstat").c_str());
  return {static_cast<long>(ns / 1'000'000), stat[paren + 2]};
}

// A worker that wrote a frame while idle (nobody asked) is a protocol violation: the frame left
// over from one call must never answer the next caller.
TEST_F(Hostile, AFrameWrittenWhileIdleNeverAnswersTheNextCaller) {
  HttpResult first = Get("leftover", "do=leftover");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, "forged");  // its own early answer, with its own invocation id
  // Wait until the instance is idle again: it has burnt its 50 ms and sleeps (its real answer is
  // then on the channel, unread).
  std::string pid;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);;) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string seen;
      for (const std::string& p : FunctionProcesses(daemon_->pid())) {
        auto [cpu_ms, state] = CpuAndState(p);
        seen += p + " " + CgroupDirOf(p, "memory") + " cpu_ms=" + std::to_string(cpu_ms) +
                " state=" + state + "\n";
      }
      FAIL() << "the instance never went idle; function processes:\n" << seen;
    }
    // Beside the instance sits the version's parked instance (docs/design/0010), which has run
    // nothing: the one that burnt its 50 ms is the one.
    for (const std::string& p : FunctionProcesses(daemon_->pid())) {
      if (CgroupDirOf(p, "memory").find("/f-leftover/") != std::string::npos ||
          CgroupDirOf(p, "").find("/f-leftover/") != std::string::npos) {
        auto [cpu_ms, state] = CpuAndState(p);
        if (cpu_ms >= 50 && state == 'S') {
          pid = p;
        }
      }
    }
    if (!pid.empty()) {
      break;
    }
  }
  HttpResult second = Get("leftover", "do=identity");
  EXPECT_NE(second.body, "real") << "the leftover frame answered the next caller";
  EXPECT_EQ(second.status, 502) << second.body;
  EXPECT_EQ(Code(second), "function_crashed") << second.body;
  EXPECT_NE(second.body.find("while idle"), std::string::npos) << second.body;
  // The instance was killed: the next call gets a new one.
  HttpResult third = Get("leftover", "do=identity");
  EXPECT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(third.body.find("uid="), 0u) << third.body;
}

TEST_F(Hostile, StderrFloodIsCappedPerInvocation) {
  CommandResult r = daemon_->Ctl({"invoke", "hostile", "--query", "do=stderr-flood", "-v"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("log truncated"), std::string::npos);
  EXPECT_LT(r.err.size(), 100u << 10);
}

// Reads "Key:\tvalue" from a /proc status file.
std::string StatusField(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

// Every process below `pid` (children first, then theirs).
std::vector<std::string> Descendants(const std::string& pid) {
  std::vector<std::string> out;
  std::istringstream children(ReadFileOrEmpty("/proc/" + pid + "/task/" + pid + "/children"));
  std::string child;
  while (children >> child) {
    out.push_back(child);
    auto below = Descendants(child);
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

// The workers faasd spawned: each is the keeper outside a pid namespace, whose child is a
// zygote (which forks instances) or a spawned instance.
std::vector<std::string> Keepers(pid_t daemon) {
  std::vector<std::string> out;
  DIR* proc = ::opendir("/proc");
  while (dirent* e = proc != nullptr ? ::readdir(proc) : nullptr) {
    std::string pid = e->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::string status = ReadFileOrEmpty("/proc/" + pid + "/status");
    if (StatusField(status, "Name") == "faas-worker" &&
        StatusField(status, "PPid") == std::to_string(daemon)) {
      out.push_back(pid);
    }
  }
  if (proc != nullptr) {
    ::closedir(proc);
  }
  return out;
}

// Every thread of `pid`: seccomp filter on, NO_NEW_PRIVS, no capabilities, not root.
int ExpectConfined(const std::string& pid) {
  int threads = 0;
  DIR* tasks = ::opendir(("/proc/" + pid + "/task").c_str());
  if (tasks == nullptr) {
    ADD_FAILURE() << "cannot list threads of " << pid;
    return 0;
  }
  while (dirent* t = ::readdir(tasks)) {
    if (t->d_name[0] == '.') {
      continue;
    }
    std::string ts = ReadFileOrEmpty("/proc/" + pid + "/task/" + t->d_name + "/status");
    EXPECT_EQ(StatusField(ts, "Seccomp"), "2") << pid;
    EXPECT_EQ(StatusField(ts, "NoNewPrivs"), "1") << pid;
    EXPECT_EQ(StatusField(ts, "CapEff"), "0000000000000000") << pid;
    EXPECT_EQ(StatusField(ts, "Uid").rfind("0\t", 0), std::string::npos) << pid;
    ++threads;
  }
  ::closedir(tasks);
  return threads;
}

// The cgroup directory of `pid` for a v1 controller (or v2 when controller is "").
std::string CgroupDirOf(const std::string& pid, const std::string& controller) {
  std::istringstream in(ReadFileOrEmpty("/proc/" + pid + "/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    if (("," + ctrls + ",").find("," + controller + ",") != std::string::npos) {
      std::string path = line.substr(c2 + 1);
      return "/sys/fs/cgroup/" + controller + (path == "/" ? "" : path);
    }
  }
  return "";
}

TEST_F(Hostile, LiveWorkersAreConfinedOnEveryThread) {
  ASSERT_EQ(Attack("identity").status, 200);  // at least one warm instance
  // The call took the parked instance: wait until its successor is jailed and in its cgroup.
  ASSERT_NO_FATAL_FAILURE(WaitForParkedInstances());
  int keepers = 0, zygotes = 0, instances = 0;
  const std::string tree = "/faas-" + std::to_string(daemon_->pid()) + "/";
  for (const std::string& keeper : Keepers(daemon_->pid())) {
    keepers += ExpectConfined(keeper) > 0 ? 1 : 0;
    // The keeper too may never write a core file (it ran as root with faasd's limits).
    EXPECT_NE(ReadFileOrEmpty("/proc/" + keeper + "/limits")
                  .find("Max core file size        0                    0"),
              std::string::npos)
        << "keeper " << keeper;
    for (const std::string& pid : Descendants(keeper)) {
      EXPECT_GE(ExpectConfined(pid), 1);
      std::string limits = ReadFileOrEmpty("/proc/" + pid + "/limits");
      EXPECT_NE(limits.find("Max open files            1024                 1024"),
                std::string::npos)
          << limits;
      EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos)
          << limits;
      // The cgroup limits as configured (memory 128 MiB default, pids 64), on cgroup v1: below
      // the function's level f-<name>, a zygote in z-N, every instance (forked or spawned) in
      // its own i-N. A zygote's group also carries 256 KiB per max_instances for what its forks
      // leave charged there.
      std::string mem = CgroupDirOf(pid, "memory");
      std::string pids = CgroupDirOf(pid, "pids");
      if (!mem.empty() && !pids.empty()) {
        const std::string leaf = mem.substr(mem.rfind('/') + 1);
        const std::string level = mem.substr(0, mem.rfind('/'));
        EXPECT_NE(level.find(tree + "f-"), std::string::npos) << mem;
        bool zygote = leaf.rfind("z-", 0) == 0;
        EXPECT_TRUE(zygote || leaf.rfind("i-", 0) == 0) << mem;
        const long long limit = std::atoll(ReadFileOrEmpty(mem + "/memory.limit_in_bytes").c_str());
        const long long base = 128ll << 20, allowance = limit - base;
        if (zygote) {
          EXPECT_TRUE(allowance > 0 && allowance % (256 << 10) == 0 &&
                      allowance <= 1000ll * (256 << 10))
              << mem << ": " << limit;
        } else {
          EXPECT_EQ(limit, base) << mem;
        }
        EXPECT_EQ(ReadFileOrEmpty(pids + "/pids.max"), "64\n") << pids;
        // The function's level caps all its instances together at one CPU fewer than the
        // machine has (--function-cpus default), so one function never takes every CPU.
        std::string cpu = CgroupDirOf(pid, "cpu");
        if (!cpu.empty()) {
          cpu_set_t set;
          CPU_ZERO(&set);
          ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
          const int cap = std::max(1, CPU_COUNT(&set) - 1);
          EXPECT_EQ(ReadFileOrEmpty(cpu.substr(0, cpu.rfind('/')) + "/cpu.cfs_quota_us"),
                    std::to_string(cap * 100000) + "\n")
              << cpu;
        }
        (zygote ? zygotes : instances) += 1;
      }
    }
  }
  EXPECT_GE(keepers, 1) << "no live worker found";
  EXPECT_GE(zygotes, 1) << "no zygote found";
  EXPECT_GE(instances, 1) << "no function instance found";
}

// Beyond each instance's own limits, the function's level caps the pids and memory of all its
// instances and zygotes together, the platform's level (faas-<pid>) those of every function,
// and RLIMIT_NPROC backs the pids cgroup up per function uid (issue #13, item 6). The numbers
// are derived in scheduler/src/instance.cc (FunctionLevelLimits, NprocFor).
TEST_F(Hostile, FunctionAndPlatformLevelsCapPidsAndMemoryAndNprocBacksThemUp) {
  ASSERT_EQ(Attack("identity").status, 200);  // a warm instance of "hostile" (max_instances 1)
  const std::string tree = "/faas-" + std::to_string(daemon_->pid());
  const long long mib128 = 128ll << 20;
  int checked = 0;
  for (const std::string& keeper : Keepers(daemon_->pid())) {
    for (const std::string& pid : Descendants(keeper)) {
      const std::string mem = CgroupDirOf(pid, "memory");
      const std::string pids = CgroupDirOf(pid, "pids");
      if (mem.empty() || pids.empty()) {
        continue;  // not cgroup v1: the v2 files are checked in tests/integration/cgroup_test.cc
      }
      const std::string mem_level = mem.substr(0, mem.rfind('/'));
      const std::string pids_level = pids.substr(0, pids.rfind('/'));
      if (mem_level.rfind("/f-") == std::string::npos) {
        continue;  // a deploy probe, at the top level
      }
      const std::string fn = mem_level.substr(mem_level.rfind("/f-") + 3);
      if (fn != "hostile" && fn != "hello" && fn != "leftover") {
        continue;  // the ones deployed with --max-instances 1
      }
      // 1 instance + 2 zygote slots (the current version's and a replaced one's, alive until
      // its last instance is gone) of 64 tasks each; the same slots of 128 MiB, plus what the
      // zygotes' forks leave charged to them (256 KiB per instance).
      EXPECT_EQ(ReadFileOrEmpty(pids_level + "/pids.max"), "192\n") << pids_level;
      EXPECT_EQ(ReadFileOrEmpty(mem_level + "/memory.limit_in_bytes"),
                std::to_string(3 * mib128 + 2 * (256 << 10)) + "\n")
          << mem_level;
      // The platform: every function together, from --max-pids / --max-memory (defaults: a
      // fraction of the machine), never unlimited.
      const std::string mem_top = mem_level.substr(0, mem_level.rfind('/'));
      const std::string pids_top = pids_level.substr(0, pids_level.rfind('/'));
      EXPECT_NE(mem_top.find(tree), std::string::npos) << mem_top;
      EXPECT_EQ(mem_top.substr(mem_top.rfind('/')), tree) << mem_top;
      const long long top_pids = std::atoll(ReadFileOrEmpty(pids_top + "/pids.max").c_str());
      EXPECT_GT(top_pids, 0) << pids_top << ": " << ReadFileOrEmpty(pids_top + "/pids.max");
      EXPECT_LT(top_pids, std::atoll(ReadFileOrEmpty("/proc/sys/kernel/pid_max").c_str()));
      const long long top_mem =
          std::atoll(ReadFileOrEmpty(mem_top + "/memory.limit_in_bytes").c_str());
      std::istringstream meminfo(ReadFileOrEmpty("/proc/meminfo"));
      std::string key;
      long long total_kib = 0;
      meminfo >> key >> total_kib;
      ASSERT_EQ(key, "MemTotal:");
      EXPECT_GT(top_mem, 0);
      EXPECT_LT(top_mem, total_kib * 1024) << mem_top;
      EXPECT_EQ(ReadFileOrEmpty(mem_top + "/memory.use_hierarchy"), "1\n")
          << "a parent's memory limit counts its children only with use_hierarchy";
      // RLIMIT_NPROC: a backstop above the pids cgroup (which is the limit that bites): the
      // function level's 192 plus one instance's 64 for tasks still being reaped.
      const std::string limits = ReadFileOrEmpty("/proc/" + pid + "/limits");
      EXPECT_NE(limits.find("Max processes             256                  256"),
                std::string::npos)
          << pid << " " << limits;
      ++checked;
    }
  }
  EXPECT_GE(checked, 2) << "no zygote or instance of a max_instances=1 function found";
}

// The kernel's OOM killer, if the machine runs out, picks a function before faasd: faasd lowers
// its own oom_score_adj where it may (root with CAP_SYS_RESOURCE) and every worker it spawns
// (keeper, zygote, instances, which inherit it) runs at +500.
TEST_F(Hostile, TheOomKillerPicksWorkersBeforeFaasd) {
  ASSERT_EQ(Attack("identity").status, 200);
  const int daemon_adj = std::atoi(
      ReadFileOrEmpty("/proc/" + std::to_string(daemon_->pid()) + "/oom_score_adj").c_str());
  const std::string cap_eff = StatusField(ReadFileOrEmpty("/proc/self/status"), "CapEff");
  const bool sys_resource =
      (std::strtoull(cap_eff.c_str(), nullptr, 16) >> 24) & 1;  // CAP_SYS_RESOURCE
  EXPECT_EQ(daemon_adj, sys_resource ? -500 : 0)
      << "without CAP_SYS_RESOURCE faasd cannot go below 0 (this host lacks it)";
  int workers = 0;
  for (const std::string& keeper : Keepers(daemon_->pid())) {
    std::vector<std::string> all = Descendants(keeper);
    all.push_back(keeper);
    for (const std::string& pid : all) {
      const std::string adj = ReadFileOrEmpty("/proc/" + pid + "/oom_score_adj");
      if (adj.empty()) {
        continue;  // exited meanwhile
      }
      EXPECT_EQ(adj, "500\n") << pid;
      EXPECT_GT(std::atoi(adj.c_str()), daemon_adj);
      ++workers;
    }
  }
  EXPECT_GE(workers, 3) << "keeper, zygote, instance";
}

// The function instances (not zygotes) of the daemon's workers, each in its own i-N cgroup.
std::vector<std::string> FunctionProcesses(pid_t daemon) {
  std::vector<std::string> out;
  for (const std::string& keeper : Keepers(daemon)) {
    for (const std::string& pid : Descendants(keeper)) {
      if (CgroupDirOf(pid, "memory").find("/i-") != std::string::npos ||
          CgroupDirOf(pid, "").find("/i-") != std::string::npos) {
        out.push_back(pid);
      }
    }
  }
  return out;
}

// Zygotes (PID 1 of their instances' namespace): a keeper's own child in a z-N cgroup. Not any
// process in z-N: an instance the zygote is forking stays there until faasd moves it.
std::vector<std::string> Zygotes(pid_t daemon) {
  std::vector<std::string> out;
  for (const std::string& keeper : Keepers(daemon)) {
    std::istringstream children(
        ReadFileOrEmpty("/proc/" + keeper + "/task/" + keeper + "/children"));
    for (std::string pid; children >> pid;) {
      if (CgroupDirOf(pid, "memory").find("/z-") != std::string::npos) {
        out.push_back(pid);
      }
    }
  }
  return out;
}

TEST_F(Hostile, AnInstanceCannotKillOrStopItsZygote) {
  ASSERT_NO_FATAL_FAILURE(WaitForParkedInstances());
  auto before = Zygotes(daemon_->pid());
  if (before.empty() && CgroupDirOf("self", "memory").empty()) {
    GTEST_SKIP() << "zygotes are found by their v1 memory cgroup; this host has none";
  }
  ASSERT_GE(before.size(), 3u);  // hostile, hello, cpu-capped
  HttpResult r = Attack("kill-zygote");
  ASSERT_EQ(r.status, 200) << r.body;
  // Each instance is PID 1 of a namespace of its own (docs/design/0008): the zygote it was
  // forked from is not even visible, so kill(1, ...) only reaches the instance itself (and the
  // kernel ignores signals to an init from inside its own namespace).
  EXPECT_NE(r.body.find("pid=1"), std::string::npos) << r.body;
  // Every zygote is still there and still serves forks.
  HttpResult next = Attack("identity");
  EXPECT_EQ(next.status, 200) << next.body;
  // The attack's call took the parked instance, so the zygote is forking the next one in the
  // background (running, R): once it is parked, every zygote is back asleep waiting for a fork
  // request (S), not stopped (T), dead (Z) or gone. (Polled for the few instructions between its
  // reply to the fork and its ppoll; a stopped, dead or missing zygote never gets back to S.)
  ASSERT_NO_FATAL_FAILURE(WaitForParkedInstances());
  for (const std::string& pid : before) {
    std::string state;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);;) {
      state = StatusField(ReadFileOrEmpty("/proc/" + pid + "/status"), "State");
      if (state.rfind("S", 0) == 0 || std::chrono::steady_clock::now() >= deadline) {
        break;
      }
    }
    EXPECT_EQ(state.rfind("S", 0), 0u) << "zygote " << pid << ": " << state;
  }
  EXPECT_EQ(daemon_->Logs().find("zygote.died"), std::string::npos) << daemon_->Logs();
}

// Bombs run only in an instance whose pids and memory limits were verified first.
class HostileBombs : public Hostile {
 protected:
  void SetUp() override {
    Hostile::SetUp();
    if (IsSkipped()) {
      return;
    }
    ASSERT_EQ(Attack("identity").status, 200);  // the one warm instance (max-instances 1)
    auto fns = FunctionProcesses(daemon_->pid());
    ASSERT_FALSE(fns.empty());
    for (const auto& pid : fns) {
      std::string mem = CgroupDirOf(pid, "memory");
      std::string pids = CgroupDirOf(pid, "pids");
      if (mem.find("/i-") == std::string::npos) {
        continue;  // the neighbour's or another instance: each has its own cgroup
      }
      ASSERT_EQ(ReadFileOrEmpty(mem + "/memory.limit_in_bytes"), "134217728\n") << mem;
      ASSERT_EQ(ReadFileOrEmpty(pids + "/pids.max"), "64\n") << pids;
      verified_ = true;
    }
    ASSERT_TRUE(verified_) << "could not verify the instance's cgroup limits; not running bombs";
  }
  bool verified_ = false;
};

TEST_F(HostileBombs, ForkBombStopsAtThePidsLimit) {
  HttpResult r = Attack("fork-bomb");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("errno=EAGAIN"), std::string::npos) << r.body;
  long forked = std::atol(r.body.c_str() + r.body.find('=') + 1);
  EXPECT_GT(forked, 10) << r.body;
  EXPECT_LT(forked, 64) << r.body;
}

TEST_F(HostileBombs, ThreadBombStopsAtThePidsLimit) {
  HttpResult r = Attack("thread-bomb");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("errno=EAGAIN"), std::string::npos) << r.body;
  long threads = std::atol(r.body.c_str() + r.body.find('=') + 1);
  EXPECT_LT(threads, 64) << r.body;
}

TEST_F(HostileBombs, MemoryBalloonIsKilledAtTheMemoryLimit) {
  HttpResult r = Attack("balloon");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(Code(r), "sandbox_violation") << r.body;
  EXPECT_NE(r.body.find("memory limit of 128 MiB"), std::string::npos) << r.body;
  // Ended by the memory limit, within the 2 s timeout (faasd's measure, proportional slack).
  EXPECT_LT(ServerTimingMs(r, "exec"), 2000 * 1.25) << r.Header("server-timing");
}

// The pids in `dir`'s cgroup.procs (none when the directory is gone).
std::vector<std::string> CgroupMembers(const std::string& dir) {
  std::istringstream in(ReadFileOrEmpty(dir + "/cgroup.procs"));
  std::vector<std::string> out;
  for (std::string pid; in >> pid;) {
    out.push_back(pid);
  }
  return out;
}

TEST_F(HostileBombs, DoubleForkedGrandchildDiesWithTheInstance) {
  // The cgroup directories (i-N under f-hostile, one per controller) of each hostile process,
  // by leaf, found before the attack: SetUp warmed the one instance (max-instances 1) it will run
  // in, and the version's zygote has an instance parked beside it (docs/design/0010).
  std::map<std::string, std::vector<std::string>> by_leaf;
  for (const std::string& pid : FunctionProcesses(daemon_->pid())) {
    for (const char* ctrl : {"memory", "pids", "cpu", "cpuacct", ""}) {
      std::string dir = CgroupDirOf(pid, ctrl);
      std::vector<std::string>& dirs = by_leaf[dir.substr(dir.rfind('/') + 1)];
      if (dir.find("/f-hostile/i-") != std::string::npos &&
          std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
        dirs.push_back(dir);
      }
    }
  }
  std::erase_if(by_leaf, [](const auto& leaf) { return leaf.second.empty(); });
  ASSERT_FALSE(by_leaf.empty()) << "no i-N cgroup of the hostile instance";
  ASSERT_LE(by_leaf.size(), 2u) << "more than one hostile instance beside the parked one";

  std::future<HttpResult> attack =
      std::async(std::launch::async, [] { return Attack("double-fork-hang"); });
  // While it hangs, the instance and its grandchild (its own session, reparented) are both in
  // its cgroup: what the kill must empty.
  std::vector<std::string> dirs;
  std::vector<std::string> members;
  for (auto deadline = std::chrono::steady_clock::now() + milliseconds(1500);
       members.size() < 2 && std::chrono::steady_clock::now() < deadline;) {
    for (const auto& [leaf, leaf_dirs] : by_leaf) {
      if (std::vector<std::string> m = CgroupMembers(leaf_dirs.front()); m.size() >= 2) {
        members = m;
        dirs = leaf_dirs;
      }
    }
    std::this_thread::sleep_for(milliseconds(5));  // polling with a deadline
  }
  EXPECT_GE(members.size(), 2u) << "never saw the grandchild in the instance's cgroup";
  HttpResult r = attack.get();
  EXPECT_EQ(r.status, 504) << r.body;
  // The timeout killed the whole cgroup and waited for it to empty before answering: the
  // instance's cgroup is empty or already removed, in every controller, the moment the 504 is in.
  for (const std::string& dir : dirs) {
    std::vector<std::string> left = CgroupMembers(dir);
    std::string pids;
    for (const std::string& p : left) {
      pids +=
          " " + p + " (" + StatusField(ReadFileOrEmpty("/proc/" + p + "/status"), "State") + ")";
    }
    EXPECT_TRUE(left.empty()) << dir << " still holds" << pids;
  }
  // And none of the processes seen in it is left (a pid reused since is in some other cgroup).
  for (const std::string& p : members) {
    std::string now = CgroupDirOf(p, "memory") + " " + CgroupDirOf(p, "");
    EXPECT_EQ(now.find("/f-hostile/i-"), std::string::npos) << p << " survived in " << now;
  }
}

TEST_F(Hostile, CpuLimitKillsSpinnersButNotSleepers) {
  HttpResult spin = Get("cpu-capped", "do=spin");
  EXPECT_EQ(spin.status, 504) << spin.body;
  EXPECT_NE(spin.body.find("CPU-time limit"), std::string::npos) << spin.body;
  // faasd's measures (Server-Timing): the CPU used is the 200 ms limit, with proportional slack,
  // and the call ended long before the 5 s timeout.
  EXPECT_GE(ServerTimingMs(spin, "cpu"), 200) << spin.Header("server-timing");
  EXPECT_LT(ServerTimingMs(spin, "cpu"), 200 * 1.5) << spin.Header("server-timing");
  EXPECT_LT(ServerTimingMs(spin, "exec"), 5000 / 2)
      << "killed at the CPU limit, long before the 5 s timeout: " << spin.Header("server-timing");
  HttpResult sleeper = Get("cpu-capped", "do=sleep");  // 500 ms of waiting, ~0 CPU
  EXPECT_EQ(sleeper.status, 200) << sleeper.body;
}

// ---- Issue #13: what a deploy's env, an earlier caller or a sibling instance can do. ----

// Waits until `fn` has a zygote (they start in the background after a deploy).
void AwaitZygote(int http_port, const std::string& fn) {
  const std::string want = "faas_instances{function=\"" + fn + "\",state=\"zygote\"} 1";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (HttpRequest(http_port, "GET", "/metrics", "", {}).body.find(want) == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no zygote for " << fn;
  }
}

// The uid a function ran as before the registry allocated them: a hash of its name.
uint32_t NameHashUid(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : name) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return static_cast<uint32_t>(1'000'000 + h % 1'000'000);
}

TEST_F(Hostile, TwoFunctionsNeverShareAUidEvenWhenTheirNamesCollide) {
  // A deployer picks a name whose hash is a victim's: with hashed uids both ran as one user.
  std::map<uint32_t, std::string> seen;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    std::string name = "uid-" + std::to_string(i);
    auto [it, fresh] = seen.emplace(NameHashUid(name), name);
    if (!fresh) {
      a = it->second;
      b = name;
    }
  }
  std::string uids[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& fn = i == 0 ? a : b;
    CommandResult r = daemon_->Ctl({"deploy", fn, HostileLib(), "--timeout", "2s"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    HttpResult id = Get(fn, "do=identity");
    ASSERT_EQ(id.status, 200) << id.body;
    uids[i] = id.body.substr(0, id.body.find(' '));
  }
  EXPECT_NE(uids[0], uids[1]) << a << " and " << b << " run as the same user";
  EXPECT_GE(std::atoll(uids[0].c_str() + 4), 2'000'000) << uids[0];
}

TEST_F(Hostile, TheDeployProbeRunsAsTheFunctionsOwnUid) {
  // The probe runs the library's constructors and faas_init: as the function's own uid, never a
  // stand-in that another function's probe could share.
  CommandResult r =
      daemon_->Ctl({"deploy", "probe-uid", HostileLib(), "--env", "HOSTILE_MIN_UID=2000000"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Hostile, TheHostsKernelReleaseMemoryAndLoadAreNotVisible) {
  utsname host{};
  ASSERT_EQ(::uname(&host), 0);
  HttpResult r = Attack("host-info");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find(host.release), std::string::npos) << "the host's kernel: " << r.body;
  // A sanitised view: the kernel's name is fixed, memory is the function's own limit (128 MiB).
  EXPECT_NE(
      r.body.find("uname=ok release=" + std::string(kSandboxKernelRelease) + " nodename=faas"),
      std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("sysinfo=ok totalram=134217728 procs=1 load=0"), std::string::npos)
      << r.body;
}

TEST_F(Hostile, IoctlAndPrctlAreLimitedToWhatRuntimesUse) {
  HttpResult r = Attack("ioctl-prctl");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "figetbsz=EPERM fionread=ok subreaper=EPERM set_name=ok");
}

TEST_F(Hostile, ADeploysEnvCannotLoadCodeIntoTheWorkerBeforeTheJail) {
  // The attack: the artifact store holds any library a deployer uploaded; a loader variable
  // naming it would make faas-worker (exec'd as root, before any jail) run its constructors.
  std::string artifact;
  for (const auto& e : std::filesystem::directory_iterator(daemon_->data_dir() + "/artifacts")) {
    if (e.file_size() == std::filesystem::file_size(HostileLib())) {
      artifact = e.path();
    }
  }
  ASSERT_FALSE(artifact.empty()) << "the hostile library's artifact was not found";
  TempDir tmp;
  const std::string mark = tmp.path() + "/pwned";
  for (const char* var : {"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "GLIBC_TUNABLES"}) {
    std::string value = std::string(var) == "LD_LIBRARY_PATH"  ? daemon_->data_dir() + "/artifacts"
                        : std::string(var) == "GLIBC_TUNABLES" ? "glibc.malloc.check=3"
                                                               : artifact;
    CommandResult r =
        daemon_->Ctl({"deploy", "victim", FunctionLib("hello"), "--env",
                      std::string(var) + "=" + value, "--env", "HOSTILE_MARK=" + mark});
    EXPECT_NE(r.exit_code, 0) << var << " was accepted";
    EXPECT_NE(r.err.find(var), std::string::npos) << "the error must name the key: " << r.err;
    if (r.exit_code == 0) {
      (void)Get("victim", "");
    }
    EXPECT_NE(::access(mark.c_str(), F_OK), 0) << var << ": code ran as root on the host";
  }
}

TEST_F(Hostile, WorkersAreExecutedWithAnEmptyEnvironment) {
  ASSERT_EQ(Attack("identity").status, 200);  // deployed with --env GREETING=hi
  int checked = 0;
  for (const std::string& keeper : Keepers(daemon_->pid())) {
    std::vector<std::string> all = Descendants(keeper);
    all.push_back(keeper);
    for (const std::string& pid : all) {
      // environ shows what execve was given (later setenv calls do not change it).
      std::ifstream in("/proc/" + pid + "/environ", std::ios::binary);
      std::string env((std::istreambuf_iterator<char>(in)), {});
      EXPECT_EQ(env, "") << "worker " << pid << " was exec'd with an environment";
      ++checked;
    }
    // The keeper's working directory is not the daemon's (whose data dir it could point into).
    char cwd[256] = {0};
    ssize_t n = ::readlink(("/proc/" + keeper + "/cwd").c_str(), cwd, sizeof cwd - 1);
    EXPECT_EQ(std::string(cwd, n > 0 ? static_cast<std::size_t>(n) : 0), "/") << keeper;
  }
  EXPECT_GT(checked, 0);
  // The function still gets its own variables, inside the jail.
  EXPECT_EQ(Attack("env").body, "count=1 GREETING=hi");
}

TEST_F(Hostile, AFreshInstanceNeverSeesAnEarlierCallersTmp) {
  CommandResult r = daemon_->Ctl(
      {"deploy", "fresh-spy", HostileLib(), "--isolation", "fresh", "--timeout", "2s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  AwaitZygote(daemon_->http_port(), "fresh-spy");
  HttpResult plant = HttpRequest(daemon_->http_port(), "POST", "/function/fresh-spy?do=tmp-plant",
                                 "alice's secret", {});
  ASSERT_EQ(plant.status, 200) << plant.body;
  ASSERT_EQ(plant.body, "planted 14");
  HttpResult peek = Get("fresh-spy", "do=tmp-peek");
  EXPECT_EQ(peek.status, 200) << peek.body;
  EXPECT_EQ(peek.body, "errno=ENOENT") << "the next caller read the previous caller's /tmp";
  // Forked from the zygote, as in production (a failed fork falls back to a separate worker).
  EXPECT_EQ(daemon_->Logs().find("zygote.fork_failed"), std::string::npos) << daemon_->Logs();
}

TEST_F(Hostile, AnInstanceCannotSignalASiblingServingAnotherCaller) {
  CommandResult r =
      daemon_->Ctl({"deploy", "siblings", HostileLib(), "--max-instances", "2", "--timeout", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  AwaitZygote(daemon_->http_port(), "siblings");
  HttpResult victim;
  std::thread caller([&] { victim = Get("siblings", "do=sleep"); });  // busy for 500 ms
  const std::string busy = "faas_instances{function=\"siblings\",state=\"busy\"} 1";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (HttpRequest(daemon_->http_port(), "GET", "/metrics", "", {}).body.find(busy) ==
             std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
  }
  HttpResult attacker = Get("siblings", "do=kill-all");
  caller.join();
  EXPECT_EQ(attacker.status, 200) << attacker.body;
  // PID 1 of a namespace of its own: there is nobody else to signal.
  EXPECT_EQ(attacker.body, "kill(-1)=ESRCH") << attacker.body;
  EXPECT_EQ(victim.status, 200) << "the sibling was killed: " << victim.body;
  EXPECT_EQ(victim.body, "slept");
  // Forked from the zygote, as in production (a failed fork falls back to a separate worker).
  EXPECT_EQ(daemon_->Logs().find("zygote.fork_failed"), std::string::npos) << daemon_->Logs();
}

TEST_F(Hostile, FunctionCodeNeverRunsInTheZygoteAfterInitNorInAChildBeforeItsJail) {
  // faas_init registers a pthread_atfork child handler and arms a 5 ms SIGALRM timer whose
  // handler counts. Instances are cloned without glibc's fork handlers, and the zygote keeps every
  // signal blocked, so an instance made later sees neither.
  CommandResult r = daemon_->Ctl({"deploy", "zygote-code", HostileLib(), "--isolation", "fresh",
                                  "--env", "HOSTILE_ATFORK=1", "--env", "HOSTILE_ALARM=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  AwaitZygote(daemon_->http_port(), "zygote-code");
  // Not a synchronisation: the window in which the timer would have fired in the zygote ~40 times.
  std::this_thread::sleep_for(milliseconds(250));
  HttpResult seen = Get("zygote-code", "do=zygote-code");
  EXPECT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(seen.body, "atfork=0 ticks=0");
  EXPECT_EQ(daemon_->Logs().find("zygote.fork_failed"), std::string::npos) << daemon_->Logs();
}

TEST_F(Hostile, AProcessLeftBehindByInitCannotReachInstances) {
  // faas_init forks a process that keeps sending SIGKILL to everything it can see.
  CommandResult r = daemon_->Ctl({"deploy", "stray", HostileLib(), "--env", "HOSTILE_STRAY=1",
                                  "--isolation", "fresh", "--timeout", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  AwaitZygote(daemon_->http_port(), "stray");
  for (int i = 0; i < 2; ++i) {
    HttpResult slept = Get("stray", "do=sleep");
    EXPECT_EQ(slept.status, 200) << slept.body;
    EXPECT_EQ(slept.body, "slept");
  }
  // Forked from the zygote, as in production (a failed fork falls back to a separate worker).
  EXPECT_EQ(daemon_->Logs().find("zygote.fork_failed"), std::string::npos) << daemon_->Logs();
}

// Attacks on the event loop itself (issue #13, item 5): a daemon with one HTTP loop, so every
// connection shares the thread a worker's bad answer is handled on.
// A faasd shared by the tests of one suite, which starts it in its SetUpTestSuite (as root
// only): each test skips without root and prints the log's tail when it failed; the suite ends
// by stopping it. One daemon_ per suite (the template parameter).
template <class Suite>
class SharedDaemonTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      EXPECT_EQ(daemon_->Stop(), 0);
      delete daemon_;
      daemon_ = nullptr;
    }
  }
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the sandbox needs root (namespaces, mounts, setresuid); run as root";
    }
    ASSERT_NE(daemon_, nullptr);
  }
  void TearDown() override {
    if (HasFailure()) {
      const std::string& logs = daemon_->Logs();
      std::fprintf(stderr, "---- faasd log (tail) ----\n%s\n",
                   logs.substr(logs.size() > 4000 ? logs.size() - 4000 : 0).c_str());
    }
  }
  static HttpResult Get(const std::string& fn, const std::string& query) {
    return HttpRequest(daemon_->http_port(), "GET", "/function/" + fn + "?" + query, "", {});
  }

  static inline FaasdProcess* daemon_ = nullptr;
};

class HostileLoop : public SharedDaemonTest<HostileLoop> {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      return;
    }
    daemon_ = new FaasdProcess();
    ASSERT_TRUE(daemon_->Start({"--http-threads", "1"})) << daemon_->Logs();
    struct Fn {
      const char* name;
      std::string lib;
      std::vector<std::string> args;
    };
    const Fn fns[] = {
        {"hello", FunctionLib("hello"), {"--max-instances", "1"}},
        // Killed after each bad answer; a big memory limit lets it make the kill slow.
        // 30 s: touching 900 MiB takes a loaded host more than 2 s, and a timeout (504) is not
        // the bad answer under test.
        {"garbage", HostileLib(), {"--timeout", "30s", "--max-instances", "2", "--memory", "1024"}},
        {"staller", HostileLib(), {"--timeout", "1s", "--max-instances", "20"}},
    };
    for (const Fn& fn : fns) {
      std::vector<std::string> args = {"deploy", fn.name, fn.lib};
      args.insert(args.end(), fn.args.begin(), fn.args.end());
      CommandResult r = daemon_->Ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    for (const char* fn : {"hello", "garbage", "staller"}) {
      AwaitZygote(daemon_->http_port(), fn);
    }
  }
  static long RssKiB() {
    return std::atol(
        StatusField(ReadFileOrEmpty("/proc/" + std::to_string(daemon_->pid()) + "/status"), "VmRSS")
            .c_str());
  }

  // Well-behaved hello calls on one keep-alive connection, one every millisecond until `stop`
  // (paced, so the client does not take a CPU from the attack); returns how many were made.
  static int HelloCalls(const std::atomic<bool>& stop, int* failures) {
    HttpConnection c("127.0.0.1", daemon_->http_port());
    int calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (!stop.load()) {
      std::this_thread::sleep_until(t0 + std::chrono::milliseconds(calls));  // pacing
      if (c.Request("GET", "/function/hello").status != 200) {
        ++*failures;
      }
      ++calls;
    }
    return calls;
  }
};

// A worker's framed but invalid answer (and one that announces 6 MiB and stalls) is handled
// without the loop waiting for the kernel to kill and reap the worker: the other connections on
// that loop keep being served. Killing the garbage instance (900 MiB touched by one process)
// takes the kernel tens of milliseconds, which the loop used to wait for (hello's p99 50-69 ms
// against 0.7-2.4 ms alone). That latency is a performance property: bench/e2e/bad_answers.sh
// measures it (alternating rounds; a p99 bound here failed whenever the host was loaded). This
// test keeps what holds at any load: every attack gets its own answer and hello never fails.
TEST_F(HostileLoop, BadAnswersDoNotStallOtherConnectionsOnTheLoop) {
  ASSERT_EQ(Get("hello", "").status, 200);
  std::atomic<bool> stop{false};
  const int kAttacks = 12;
  std::vector<int> garbage_status, stall_status(3);
  int failures = 0, calls = 0;
  std::thread client([&] { calls = HelloCalls(stop, &failures); });
  std::vector<std::thread> stallers;
  for (int& status : stall_status) {
    stallers.emplace_back([&status] { status = Get("staller", "do=frame-stall").status; });
  }
  for (int i = 0; i < kAttacks; ++i) {
    // A warm instance first (a cold start launches on a blocking thread), then the attack.
    EXPECT_EQ(Get("garbage", "do=identity").status, 200);
    garbage_status.push_back(Get("garbage", "do=frame-garbage&mb=900").status);
  }
  stop = true;
  client.join();
  for (std::thread& t : stallers) {
    t.join();
  }
  for (int s : garbage_status) {
    EXPECT_EQ(s, 502);
  }
  for (int s : stall_status) {
    EXPECT_EQ(s, 504);
  }
  EXPECT_EQ(failures, 0) << "of " << calls << " hello calls beside the attacks";
  EXPECT_GT(calls, kAttacks) << "hello was hardly called while the attacks ran";
}

// Twenty workers each announce a 6 MiB answer and stall: faasd holds buffers for what has
// arrived, not for what was announced, so its RSS does not grow by 20 × 6 MiB; the stalled
// calls end at their timeout (504) and hello keeps answering meanwhile. Twice: on warm
// instances and then on cold ones (the first round killed them all), both read on the event
// loop since docs/design/0012-scheduler-pool.md; the blocking path's reading is attacked in
// tests/integration/scheduler_test.cc.
TEST_F(HostileLoop, StalledAnnouncedAnswersDoNotReserveMemory) {
  constexpr int kStallers = 20;
  {
    std::vector<std::thread> warm;
    for (int i = 0; i < kStallers; ++i) {
      warm.emplace_back([] { EXPECT_EQ(Get("staller", "do=identity").status, 200); });
    }
    for (std::thread& t : warm) {
      t.join();
    }
  }
  for (const char* round : {"warm", "cold"}) {
    ASSERT_EQ(Get("hello", "").status, 200);
    const long before = RssKiB();
    std::vector<int> status(kStallers);
    std::atomic<int> running{kStallers};
    std::vector<std::thread> stallers;
    for (int& s : status) {
      stallers.emplace_back([&s, &running] {
        s = Get("staller", "do=frame-stall").status;
        --running;
      });
    }
    long peak = before;
    int hellos = 0, hello_failures = 0;
    HttpConnection c("127.0.0.1", daemon_->http_port());
    while (running.load() > 0) {  // while the calls stall: hello, and the daemon's RSS
      hello_failures += c.Request("GET", "/function/hello").status != 200;
      ++hellos;
      peak = std::max(peak, RssKiB());
    }
    for (std::thread& t : stallers) {
      t.join();
    }
    for (int s : status) {
      EXPECT_EQ(s, 504) << round;
    }
    EXPECT_EQ(hello_failures, 0) << round;
    EXPECT_GT(hellos, 100) << round;
    const long grew_kib = peak - before;
    std::fprintf(stderr, "%s stallers: faasd VmRSS %ld KiB before, peak %ld KiB (+%ld KiB)\n",
                 round, before, peak, grew_kib);
    // 20 × 6 MiB would be 122880 KiB; a quarter of it is a generous bound for everything else.
    EXPECT_LT(grew_kib, kStallers * (6 << 10) / 4) << round;
  }
}

// ---- Pipelining (faasd --pipeline-depth 4, design/0015 and 0042): requests written to a busy
// instance behind the one it runs. The worker is the function's: what it does with the second
// request, or with its answers, may hurt only that function's own invocations. ----

class HostilePipe : public SharedDaemonTest<HostilePipe> {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      return;
    }
    daemon_ = new FaasdProcess();
    // One loop: a request goes behind one of its own loop only.
    ASSERT_TRUE(daemon_->Start({"--pipeline-depth", "4", "--http-threads", "1"}))
        << daemon_->Logs();
    const std::vector<std::pair<std::string, std::vector<std::string>>> fns = {
        {"piper", {}},
        {"liar-big", {"--env", "HOSTILE_LOG_END=1099511627776"}},
        {"liar-zero", {"--env", "HOSTILE_LOG_END=0"}},
    };
    for (const auto& [name, extra] : fns) {
      std::vector<std::string> args = {"deploy",          name, HostileLib(), "--timeout", "3s",
                                       "--max-instances", "1"};
      args.insert(args.end(), extra.begin(), extra.end());
      CommandResult r = daemon_->Ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      AwaitZygote(daemon_->http_port(), name);
    }
  }
  static std::string Code(const HttpResult& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_discarded() || !j.contains("error") ? "" : j["error"]["code"].get<std::string>();
  }
  // Short invocations, so the pool admits pipelining (its averages: design/0015).
  static void Warm(const std::string& fn) {
    for (int i = 0; i < 12; ++i) {
      ASSERT_EQ(Get(fn, "do=warm").status, 200);
    }
  }
  // Whether a function process waits in the attack's poll(2) of the channel (await_behind's:
  // nfds 1, 1500 ms), by /proc/PID/syscall: the worker has read the attack's frame and runs it.
  static bool InAttackPoll() {
    for (const std::string& pid : FunctionProcesses(daemon_->pid())) {
      std::istringstream in(ReadFileOrEmpty("/proc/" + pid + "/syscall"));
      std::string nr, fds, nfds, timeout;
      if (in >> nr >> fds >> nfds >> timeout && nr == "7" && nfds == "0x1" && timeout == "0x5dc") {
        return true;
      }
    }
    return false;
  }
  // `attack` on `fn`, and a plain call sent once the attack runs (it goes behind it). False when
  // the attack saw no request behind it in time ("none"): the caller tries again.
  static bool Pair(const std::string& fn, const std::string& attack, HttpResult* front,
                   HttpResult* behind) {
    Warm(fn);
    auto first = std::async(std::launch::async, [&] { return Get(fn, "do=" + attack); });
    // Sent before the worker read the attack's frame, both would arrive in one read and the
    // second never be on the channel for the attack to see.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!InAttackPoll() && std::chrono::steady_clock::now() < deadline) {
    }
    *behind = Get(fn, "do=warm");
    *front = first.get();
    return front->body != "none";
  }
  // Pair, with `n` plain calls sent at once behind the attack (depth > 1: they queue behind it
  // on the one instance, in whatever order they arrive).
  static bool Line(const std::string& fn, const std::string& attack, int n, HttpResult* front,
                   std::vector<HttpResult>* behind) {
    Warm(fn);
    auto first = std::async(std::launch::async, [&] { return Get(fn, "do=" + attack); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!InAttackPoll() && std::chrono::steady_clock::now() < deadline) {
    }
    std::vector<std::future<HttpResult>> calls;
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::async(std::launch::async, [&] { return Get(fn, "do=warm"); }));
    }
    behind->clear();
    for (auto& c : calls) {
      behind->push_back(c.get());
    }
    *front = first.get();
    return front->body != "none";
  }
  // The front call and the calls behind it, once `n` of them went behind the attack.
  struct Lined {
    HttpResult front;
    std::vector<HttpResult> behind;
  };
  // Line, tried up to three times (the attack answers "none" when the calls came too late).
  static std::optional<Lined> LineTried(const std::string& fn, const std::string& attack, int n) {
    Lined line;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (Line(fn, attack, n, &line.front, &line.behind)) {
        return line;
      }
    }
    return std::nullopt;
  }
  static constexpr const char* kNeverLined =
      "the requests never queued behind the attack in three tries";
  static std::string Logs(const std::string& fn, const std::string& id) {
    CommandResult r = daemon_->Ctl({"logs", fn, "--invocation", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  static std::size_t Count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
      ++n;
    }
    return n;
  }
  // The ledger's invocation rows of `fn` (newest 1000), by invocation id.
  static std::map<std::string, std::vector<nlohmann::json>> Rows(const std::string& fn) {
    CommandResult r = daemon_->Ctl({"invocations", fn, "--last", "1000", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::vector<nlohmann::json>> rows;
    const nlohmann::json all = nlohmann::json::parse(r.out);  // outlives the loop below
    for (const auto& row : all["invocations"]) {
      if (row["kind"] == "invocation") {
        rows[row["invocation_id"].get<std::string>()].push_back(row);
      }
    }
    return rows;
  }
  // The failed call `front` answered front_status/front_code; every call behind it ran elsewhere
  // (200), each billed once.
  static void ExpectRunElsewhere(const Lined& line, int front_status,
                                 const std::string& front_code) {
    const HttpResult& front = line.front;
    const std::vector<HttpResult>& behind = line.behind;
    EXPECT_EQ(front.status, front_status) << front.body;
    EXPECT_EQ(Code(front), front_code) << front.body;
    for (const HttpResult& r : behind) {
      EXPECT_EQ(r.status, 200) << r.body;
    }
    std::vector<std::string> ids = {front.Header("x-invocation-id")};
    for (const HttpResult& r : behind) {
      ids.push_back(r.Header("x-invocation-id"));
    }
    auto rows = Rows("piper");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::any_of(ids.begin(), ids.end(), [&](const auto& id) { return rows[id].empty(); }) &&
           std::chrono::steady_clock::now() < deadline) {
      rows = Rows("piper");
    }
    for (const std::string& id : ids) {
      ASSERT_EQ(rows[id].size(), 1u) << id;
      EXPECT_EQ(rows[id][0]["outcome"], id == ids[0] ? front_code : "ok") << rows[id][0];
    }
    EXPECT_EQ(Get("piper", "do=warm").status, 200) << "a new instance serves";
  }
};

// The worker answers the request behind first (the function reads it off the channel and
// forges its answer): the daemon reads that frame as the answer to the call ahead, refuses it
// by its id, and kills the instance; the call behind ends with it and never sees the forgery.
TEST_F(HostilePipe, AnAnswerToTheRequestBehindFirstIsRefused) {
  HttpResult front, behind;
  bool paired = false;
  for (int attempt = 0; attempt < 3 && !paired; ++attempt) {
    paired = Pair("piper", "pipe-swap", &front, &behind);
  }
  ASSERT_TRUE(paired) << "no request went behind the attack in three tries";
  EXPECT_EQ(front.status, 502) << front.body;
  EXPECT_EQ(Code(front), "function_crashed") << front.body;
  EXPECT_NE(front.body.find("protocol violation"), std::string::npos) << front.body;
  EXPECT_EQ(behind.status, 502) << behind.body;
  EXPECT_EQ(Code(behind), "function_crashed") << behind.body;
  EXPECT_NE(behind.body.find("the instance it was queued on crashed"), std::string::npos)
      << behind.body;
  for (const HttpResult* r : {&front, &behind}) {
    EXPECT_EQ(r->body.find("stolen"), std::string::npos) << r->body;
  }
  EXPECT_EQ(Get("piper", "do=warm").status, 200) << "a new instance serves";
}

// A call that fails before writing any of its answer, with calls queued behind it: the worker
// runs one request at a time, so none of them started. They run on another instance instead of
// failing with it (design/0042), each billed once; the failed one as it failed.
TEST_F(HostilePipe, ACrashWithARequestBehindRunsItElsewhere) {
  auto line = LineTried("piper", "pipe-crash", 1);
  ASSERT_TRUE(line) << kNeverLined;
  EXPECT_NE(
      Logs("piper", line->front.Header("x-invocation-id")).find("crashing with a request behind"),
      std::string::npos);
  ExpectRunElsewhere(*line, 502, "function_crashed");
}

TEST_F(HostilePipe, ACrashWithSeveralRequestsBehindRunsThemElsewhere) {
  auto line = LineTried("piper", "pipe-crash-deep", 3);
  ASSERT_TRUE(line) << kNeverLined;
  ExpectRunElsewhere(*line, 502, "function_crashed");
}

TEST_F(HostilePipe, AHangWithRequestsBehindRunsThemElsewhereAtItsTimeout) {
  auto line = LineTried("piper", "pipe-hang-deep", 3);
  ASSERT_TRUE(line) << kNeverLined;
  ExpectRunElsewhere(*line, 504, "function_timeout");
}

// Depth > 1: bytes read past one answer pass down the line of calls behind. The worker forges
// the answers of the two calls behind in the wrong order: the first of them refuses the
// second's answer by its id, the instance dies, and no caller sees the forgery.
TEST_F(HostilePipe, AnswersPassedDownTheLineOutOfOrderAreRefused) {
  auto line = LineTried("piper", "pipe-swap-deep", 2);
  ASSERT_TRUE(line) << kNeverLined;
  const HttpResult& front = line->front;
  const std::vector<HttpResult>& behind = line->behind;
  EXPECT_EQ(front.status, 200) << front.body;
  EXPECT_EQ(front.body, "front");
  int refused = 0;
  int lost = 0;
  for (const HttpResult& r : behind) {
    EXPECT_EQ(r.body.find("stolen"), std::string::npos) << r.body;
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(Code(r), "function_crashed") << r.body;
    refused += r.body.find("protocol violation") != std::string::npos ? 1 : 0;
    lost += r.body.find("the instance it was queued on crashed") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(refused, 1) << "the first behind read the second's answer";
  EXPECT_EQ(lost, 1) << "the second ended with the instance";
  EXPECT_EQ(Get("piper", "do=warm").status, 200) << "a new instance serves";
}

// The worker reports where each answer's logs end (log_end); a lie, too big or too small, moves
// lines only between the function's own two invocations: clamped to the file, never before the
// previous end, nothing lost or doubled.
TEST_F(HostilePipe, ALieAboutLogEndMovesOnlyTheFunctionsOwnLines) {
  for (const std::string fn : {"liar-big", "liar-zero"}) {
    HttpResult front, behind;
    bool paired = false;
    for (int attempt = 0; attempt < 3 && !paired; ++attempt) {
      paired = Pair(fn, "pipe-log-lie", &front, &behind);
    }
    ASSERT_TRUE(paired) << fn << ": no request went behind the attack in three tries";
    ASSERT_EQ(front.status, 200) << fn << ": " << front.body;
    ASSERT_EQ(behind.status, 200) << fn << ": " << behind.body;
    EXPECT_EQ(front.body, "front");
    EXPECT_EQ(behind.body, "behind");
    const std::string a = Logs(fn, front.Header("x-invocation-id"));
    const std::string b = Logs(fn, behind.Header("x-invocation-id"));
    for (const char* line : {"front-log", "behind-log"}) {
      EXPECT_EQ(Count(a, line) + Count(b, line), 1u) << fn << " " << line << "\n" << a << b;
    }
    if (fn == "liar-zero") {
      EXPECT_EQ(Count(a, "-log"), 0u) << "its logs end at 0: all go to the next one\n" << a;
    } else {
      EXPECT_EQ(Count(a, "front-log"), 1u) << "clamped to the file\n" << a;
    }
  }
  EXPECT_EQ(Get("piper", "do=warm").status, 200);
}

// Honest pipelining under load: every invocation answered, billed exactly once, with exactly
// its own log line.
TEST_F(HostilePipe, PipelinedInvocationsAreBilledOnceWithExactlyTheirOwnLogs) {
  Warm("piper");
  constexpr int kClients = 4;
  constexpr int kCalls = 40;
  std::vector<std::future<std::vector<HttpResult>>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::async(std::launch::async, [] {
      HttpConnection conn("127.0.0.1", daemon_->http_port());
      std::vector<HttpResult> out;
      for (int i = 0; i < kCalls; ++i) {
        out.push_back(conn.Request("GET", "/function/piper?do=pipe-behind"));
      }
      return out;
    }));
  }
  std::vector<std::string> ids;
  std::vector<std::string> behind_ids;
  for (auto& c : clients) {
    for (const HttpResult& r : c.get()) {
      ASSERT_EQ(r.status, 200) << r.body;
      ids.push_back(r.Header("x-invocation-id"));
      if (r.body == "behind=1") {
        behind_ids.push_back(ids.back());
      }
    }
  }
  EXPECT_GE(behind_ids.size(), 1u) << "no request was ever pipelined: nothing was tested";
  // The ledger's store is written behind the journal: wait until every id is there (or time out
  // and report what is missing).
  auto rows = Rows("piper");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::any_of(ids.begin(), ids.end(), [&](const auto& id) { return rows[id].empty(); }) &&
         std::chrono::steady_clock::now() < deadline) {
    rows = Rows("piper");
  }
  for (const std::string& id : ids) {
    EXPECT_EQ(rows[id].size(), 1u)
        << id << " billed " << rows[id].size() << " times; " << rows.size() << " ids in the ledger";
  }
  // Each logged its own id: the logs of one invocation hold its line and no other's.
  for (std::size_t i = 0; i < ids.size(); i += 16) {
    const std::string logs = Logs("piper", ids[i]);
    EXPECT_EQ(Count(logs, "log of "), 1u) << ids[i] << "\n" << logs;
    EXPECT_EQ(Count(logs, "log of " + ids[i]), 1u) << ids[i] << "\n" << logs;
  }
  for (std::size_t i = 0; i < behind_ids.size() && i < 8; ++i) {
    const std::string logs = Logs("piper", behind_ids[i]);
    EXPECT_EQ(Count(logs, "log of "), 1u) << behind_ids[i] << "\n" << logs;
    EXPECT_EQ(Count(logs, "log of " + behind_ids[i]), 1u) << behind_ids[i] << "\n" << logs;
  }
}

}  // namespace
}  // namespace faas::testing
