// Every limit fails closed (docs/sandbox.md, issue #13 item 6): where memory and pids limits cannot
// be enforced, faasd refuses to start and says what is missing, unless the operator says
// --unsafe-no-limits; then it starts, warns once, and /metrics says the limits are off.
//
// The case that cannot enforce them is real on this host: its cgroup2 mount at
// /sys/fs/cgroup/unified has no memory, pids or cpu controller (they are bound to the v1
// hierarchies), so `--cgroup-mode v2 --cgroup-v2-mount /sys/fs/cgroup/unified` is a v2 host
// without delegated controllers.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

constexpr const char* kUnified = "/sys/fs/cgroup/unified";

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

class Limits : public FaasdTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd needs root for its sandbox";
    }
  }
  // The unified mount as a v2 host without memory and pids controllers, or a skip with why.
  bool UnifiedWithoutControllers() {
    std::string controllers = ReadFileOrEmpty(std::string(kUnified) + "/cgroup.controllers");
    if (::access((std::string(kUnified) + "/cgroup.procs").c_str(), F_OK) != 0) {
      return false;
    }
    return controllers.find("memory") == std::string::npos ||
           controllers.find("pids") == std::string::npos;
  }
  std::vector<std::string> UnifiedArgs() {
    return {"--cgroup-mode", "v2", "--cgroup-v2-mount", kUnified};
  }
};

TEST_F(Limits, RefusesToStartWhereMemoryAndPidsCannotBeLimited) {
  if (!UnifiedWithoutControllers()) {
    GTEST_SKIP() << "needs a cgroup2 mount at " << kUnified
                 << " without the memory or pids controller (a v1/v2 hybrid host)";
  }
  ASSERT_FALSE(d_.Start(UnifiedArgs())) << "faasd serves with no memory or pids limits";
  EXPECT_NE(d_.exit_code(), 0);
  EXPECT_GT(d_.exit_code(), 0) << "it exits, it is not killed";
  const std::string logs = d_.Logs();
  EXPECT_NE(logs.find("faasd.limits_not_enforced"), std::string::npos) << logs;
  // Which controllers are missing, where, and how to fix it.
  EXPECT_NE(logs.find("memory"), std::string::npos) << logs;
  EXPECT_NE(logs.find("pids"), std::string::npos) << logs;
  EXPECT_NE(logs.find(std::string(kUnified) + "/cgroup.subtree_control"), std::string::npos)
      << logs;
  EXPECT_NE(logs.find("Delegate=yes"), std::string::npos) << logs;
  EXPECT_NE(logs.find("--unsafe-no-limits"), std::string::npos) << logs;
}

TEST_F(Limits, UnsafeNoLimitsStartsWarnsOnceAndSaysSoInMetrics) {
  if (!UnifiedWithoutControllers()) {
    GTEST_SKIP() << "needs a cgroup2 mount at " << kUnified
                 << " without the memory or pids controller (a v1/v2 hybrid host)";
  }
  std::vector<std::string> args = UnifiedArgs();
  args.push_back("--unsafe-no-limits");
  ASSERT_TRUE(d_.Start(args)) << d_.Logs();
  // The groups still count CPU and kill: a function runs and is billed from cpu.stat.
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/hello");
  EXPECT_EQ(r.status, 200) << r.body;
  HttpResult m = HttpRequest(d_.http_port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("\nfaas_limits_enforced 0\n"), std::string::npos) << m.body;
  EXPECT_EQ(Count(d_.Logs(), "faasd.limits_not_enforced"), 1u) << d_.Logs();
}

TEST_F(Limits, EnforcedLimitsShowInMetrics) {
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  HttpResult m = HttpRequest(d_.http_port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("\nfaas_limits_enforced 1\n"), std::string::npos) << m.body;
  EXPECT_EQ(d_.Logs().find("faasd.limits_not_enforced"), std::string::npos) << d_.Logs();
}

// The flag is wired like every other: environment and config file too.
TEST_F(Limits, UnsafeNoLimitsFromTheEnvironmentAndTheConfigFile) {
  if (!UnifiedWithoutControllers()) {
    GTEST_SKIP() << "needs a cgroup2 mount at " << kUnified
                 << " without the memory or pids controller (a v1/v2 hybrid host)";
  }
  {
    ::setenv("FAAS_UNSAFE_NO_LIMITS", "true", 1);
    FaasdProcess d;
    bool started = d.Start(UnifiedArgs());
    ::unsetenv("FAAS_UNSAFE_NO_LIMITS");
    ASSERT_TRUE(started) << d.Logs();
    EXPECT_EQ(d.Stop(), 0);
  }
  TempDir tmp;
  WriteFileOrDie(tmp.path() + "/faasd.conf", "unsafe-no-limits = true\n");
  std::vector<std::string> args = UnifiedArgs();
  args.insert(args.end(), {"--config", tmp.path() + "/faasd.conf"});
  ASSERT_TRUE(d_.Start(args)) << d_.Logs();
}

// faasd holds about ten descriptors per process it keeps (a zygote, a parked and a warm instance
// per function: channel, pidfd, log, cgroup files), so a node with a hundred functions needs
// thousands. Started from a login shell (soft RLIMIT_NOFILE 1024 on Debian) it ran out at about
// thirty functions: cold starts failed with EMFILE and zygotes died. faasd now raises its soft
// limit to the hard one at start (instances keep their own, sandbox/src/rlimits.cc).
TEST(DaemonLimits, ManyFunctionsFitUnderALoginShellsSoftFileLimit) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "faasd needs root for its sandbox";
  }
  struct rlimit rl {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max < 8192) {
    GTEST_SKIP() << "the hard RLIMIT_NOFILE here (" << rl.rlim_max << ") leaves no room to raise";
  }
  FaasdProcess d;
  d.set_nofile_soft_limit(256);
  ASSERT_TRUE(d.Start()) << d.Logs();
  constexpr int kFunctions = 40;
  for (int i = 0; i < kFunctions; ++i) {
    ASSERT_EQ(d.Ctl({"deploy", "f" + std::to_string(i), FunctionLib("hello")}).exit_code, 0)
        << d.Logs();
  }
  for (int i = 0; i < kFunctions; ++i) {
    HttpResult r = HttpRequest(d.http_port(), "GET", "/function/f" + std::to_string(i));
    EXPECT_EQ(r.status, 200) << "f" << i << ": " << r.body;
  }
  EXPECT_EQ(d.Logs().find("EMFILE"), std::string::npos) << d.Logs();
}

}  // namespace
}  // namespace faas::testing
