// End-to-end: faasd flags that had no test (issue #15 item 9), each by an effect a client or
// operator can see: --async-retention, --admin-token-file, --access-log, --zygotes,
// --spare-cgroups, --function-cpus and --cgroup-mode. Each test runs the flag against the default
// (or another value) so that a flag that did nothing would fail it.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The subdirectories of `dir` whose names start with `prefix`.
std::vector<std::string> SubDirs(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.starts_with(prefix) && IsDir(dir + "/" + name)) {
        out.push_back(dir + "/" + name);
      }
    }
    ::closedir(d);
  }
  return out;
}

// faasd's own cgroup directory (the `dir=` of its faasd.cgroups log line), or "".
std::string CgroupDir(const FaasdProcess& d) {
  std::string logs = d.Logs();
  std::size_t line = logs.find("faasd.cgroups ");
  std::size_t at = line == std::string::npos ? line : logs.find(" dir=", line);
  if (at == std::string::npos) {
    return "";
  }
  at += 5;
  return logs.substr(at, logs.find_first_of(" \n", at) - at);
}

// On cgroup v1, faasd's directory in the cpu hierarchy: /sys/fs/cgroup/<the cpu line's
// controllers><its path>/faas-<pid> (from /proc/<pid>/cgroup).
std::string V1CpuDir(pid_t pid) {
  std::string text = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol - pos);
    pos = eol == std::string::npos ? text.size() : eol + 1;
    std::size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) {
      continue;
    }
    std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    if (("," + ctrls + ",").find(",cpu,") != std::string::npos) {
      std::string base = "/sys/fs/cgroup/" + ctrls + (path == "/" ? "" : path);
      return base + "/faas-" + std::to_string(pid);
    }
  }
  return "";
}

class Flags : public FaasdTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd needs root for its sandbox";
    }
  }
  HttpResult Get(FaasdProcess& d, const std::string& target) {
    return HttpRequest(d.http_port(), "GET", target);
  }
};

TEST_F(Flags, AsyncRetentionDropsFinishedResultsOlderThanIt) {
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  HttpResult accepted = HttpRequest(d_.http_port(), "POST", "/async-function/echo", "keep me");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::string id = Json::parse(accepted.body)["invocation_id"];
  Json done;
  ASSERT_TRUE(PollUntil([&] {
    HttpResult r = Get(d_, "/invocations/" + id);
    done = Json::parse(r.body, nullptr, false);
    return r.status == 200 && done.value("status", "") == "succeeded";
  })) << done.dump();
  // A restart with the default retention (24 h) keeps it...
  ASSERT_EQ(d_.Stop(), 0);
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  EXPECT_EQ(Get(d_, "/invocations/" + id).status, 200);
  ASSERT_EQ(d_.Stop(), 0);
  // ...and one with a retention shorter than its age drops it (faasd expires results at start).
  const int64_t finished = done["updated_unix_ms"].get<int64_t>();
  ASSERT_TRUE(PollUntil([&] {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() > finished + 50;
  }));
  ASSERT_TRUE(d_.Start({"--async-retention", "10ms"})) << d_.Logs();
  HttpResult gone;
  EXPECT_TRUE(PollUntil([&] {
    gone = Get(d_, "/invocations/" + id);
    return gone.status == 404;
  })) << gone.status
      << " " << gone.body;
  ExpectError(gone, 404, "invocation_not_found");
}

TEST_F(Flags, AdminTokenFileIsTheTokenTheControlApiTakes) {
  TempDir tmp;
  const std::string token = "operator-chosen-token-0123456789abcdef";
  WriteFileOrDie(tmp.path() + "/token", token + "\n");
  ASSERT_TRUE(d_.Start({"--admin-token-file", tmp.path() + "/token"})) << d_.Logs();
  CommandResult ok = d_.CtlRaw({"--token", token, "list"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  CommandResult wrong = d_.CtlRaw({"--token", token + "x", "list"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_NE(wrong.err.find("unauthorized: wrong admin token"), std::string::npos) << wrong.err;
  // No token of its own was made in the data dir.
  EXPECT_NE(::access((d_.data_dir() + "/admin-token").c_str(), F_OK), 0);
  // The default: a token in <data-dir>/admin-token, which the file's token is not.
  FaasdProcess other;
  ASSERT_TRUE(other.Start()) << other.Logs();
  EXPECT_EQ(other.CtlRaw({"--token", token, "list"}).exit_code, 1);
  EXPECT_EQ(other.CtlRaw({"--token", other.AdminToken(), "list"}).exit_code, 0);
}

TEST_F(Flags, AccessLogFalseWritesNoAccessLines) {
  FaasdProcess on;
  ASSERT_TRUE(on.Start()) << on.Logs();
  ASSERT_TRUE(d_.Start({"--access-log", "false"})) << d_.Logs();
  for (FaasdProcess* d : {&on, &d_}) {
    ASSERT_EQ(d->Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
    ASSERT_EQ(Get(*d, "/function/hello").status, 200);
  }
  EXPECT_TRUE(PollUntil([&] {
    return on.Logs().find(
               "[access] request method=GET route=/function/{name} fn=hello "
               "status=200") != std::string::npos;
  })) << on.Logs();
  // A line faasd logs after the request: once it is there, an access line would be too.
  ASSERT_EQ(d_.Ctl({"deploy", "later", FunctionLib("hello")}).exit_code, 0);
  ASSERT_TRUE(PollUntil([&] {
    return d_.Logs().find("function.deployed fn=later") != std::string::npos;
  })) << d_.Logs();
  EXPECT_EQ(d_.Logs().find("[access]"), std::string::npos) << d_.Logs();
}

TEST_F(Flags, ZygotesFalseSpawnsEveryInstanceAndPaysLoadAndInitEachTime) {
  FaasdProcess with;
  ASSERT_TRUE(with.Start()) << with.Logs();
  ASSERT_TRUE(d_.Start({"--zygotes", "false"})) << d_.Logs();
  for (FaasdProcess* d : {&with, &d_}) {
    ASSERT_EQ(d->Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
    for (int i = 0; i < 2; ++i) {  // two cold starts each
      ASSERT_EQ(d->Ctl({"invoke", "hello", "--fresh"}).exit_code, 0);
    }
  }
  const std::string zygote = "faas_instances{function=\"hello\",state=\"zygote\"}";
  const std::string count = "faas_init_duration_seconds_count{function=\"hello\"}";
  const std::string sum = "faas_init_duration_seconds_sum{function=\"hello\"}";
  std::string m = Get(with, "/metrics").body;
  EXPECT_EQ(Sample(m, zygote), 1) << m;
  EXPECT_EQ(Sample(m, count), 2) << m;
  EXPECT_EQ(Sample(m, sum), 0) << "forked instances start loaded and initialised\n" << m;
  EXPECT_NE(with.Logs().find("zygote.started fn=hello"), std::string::npos);
  m = Get(d_, "/metrics").body;
  EXPECT_EQ(Sample(m, zygote), 0) << m;
  EXPECT_EQ(Sample(m, count), 2) << m;
  EXPECT_GT(Sample(m, sum), 0) << "each spawned instance loads the library and runs faas_init\n"
                               << m;
  EXPECT_EQ(d_.Logs().find("zygote.started"), std::string::npos) << d_.Logs();
}

// Each zygote parks an instance by default (docs/design/0010, "Parked instances"), and a cold
// start takes it; --park-instances=false parks none, and cold starts fork as they come.
TEST_F(Flags, ParkInstancesFalseParksNothingAndColdStartsStillFork) {
  FaasdProcess with;
  ASSERT_TRUE(with.Start()) << with.Logs();
  ASSERT_TRUE(d_.Start({"--park-instances", "false"})) << d_.Logs();
  const std::string parked = "faas_instances{function=\"hello\",state=\"parked\"}";
  const std::string zygote = "faas_instances{function=\"hello\",state=\"zygote\"}";
  for (FaasdProcess* d : {&with, &d_}) {
    ASSERT_EQ(d->Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
    ASSERT_EQ(Sample(Get(*d, "/metrics").body, zygote), 1) << "the deploy prepares the zygote";
    ASSERT_EQ(d->Ctl({"invoke", "hello", "--fresh"}).exit_code, 0);
  }
  EXPECT_TRUE(PollUntil([&] { return Sample(Get(with, "/metrics").body, parked) == 1; }))
      << "the next instance is parked after the call";
  EXPECT_EQ(Sample(Get(d_, "/metrics").body, parked), 0);
  // Both forked their cold start: no init beyond the zygote's.
  for (FaasdProcess* d : {&with, &d_}) {
    EXPECT_EQ(
        Sample(Get(*d, "/metrics").body, "faas_init_duration_seconds_sum{function=\"hello\"}"), 0);
  }
}

// --parked-fresh sets how many instances an `isolation: fresh` function's zygote keeps parked
// (docs/design/0010, "The forced loop"); a warm function keeps one whatever it says.
TEST_F(Flags, ParkedFreshSetsHowManyAFreshFunctionKeepsParked) {
  ASSERT_TRUE(d_.Start({"--parked-fresh", "3"})) << d_.Logs();
  ASSERT_EQ(d_.Ctl({"deploy", "fresh", FunctionLib("hello"), "--isolation", "fresh"}).exit_code, 0);
  ASSERT_EQ(d_.Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
  auto parked = [&](const std::string& fn) {
    return Sample(Get(d_, "/metrics").body,
                  "faas_instances{function=\"" + fn + "\",state=\"parked\"}");
  };
  EXPECT_TRUE(PollUntil([&] { return parked("fresh") == 3; })) << parked("fresh");
  EXPECT_TRUE(PollUntil([&] { return parked("hello") == 1; })) << parked("hello");
  ASSERT_EQ(d_.Ctl({"invoke", "fresh"}).exit_code, 0);
  EXPECT_TRUE(PollUntil([&] { return parked("fresh") == 3; })) << "refilled to 3";
  FaasdProcess bad;
  EXPECT_FALSE(bad.Start({"--parked-fresh", "0"})) << "at least one";
}

TEST_F(Flags, SpareCgroupsKeepsEmptyInstanceGroupsReady) {
  FaasdProcess none;
  ASSERT_TRUE(none.Start({"--spare-cgroups", "0"})) << none.Logs();
  ASSERT_TRUE(d_.Start({"--spare-cgroups", "3"})) << d_.Logs();
  // The empty instance groups at the level of function hello, once it has run an instance.
  auto empty_groups = [](const FaasdProcess& d) {
    std::size_t n = 0;
    for (const std::string& g : SubDirs(CgroupDir(d) + "/f-hello", "i-")) {
      n += ReadFileOrEmpty(g + "/cgroup.procs").empty() ? 1u : 0u;
    }
    return n;
  };
  for (FaasdProcess* d : {&none, &d_}) {
    ASSERT_EQ(d->Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
    ASSERT_EQ(Get(*d, "/function/hello").status, 200);
    ASSERT_TRUE(IsDir(CgroupDir(*d) + "/f-hello")) << CgroupDir(*d) << "\n" << d->Logs();
  }
  std::size_t spares = 0;
  EXPECT_TRUE(PollUntil([&] { return (spares = empty_groups(d_)) == 3; })) << spares;
  EXPECT_EQ(empty_groups(none), 0u);
  // A cold start takes a spare, and the pool is refilled.
  ASSERT_EQ(d_.Ctl({"invoke", "hello", "--fresh"}).exit_code, 0);
  EXPECT_TRUE(PollUntil([&] { return (spares = empty_groups(d_)) == 3; })) << spares;
}

TEST_F(Flags, FunctionCpusIsTheQuotaOfTheFunctionsCgroupLevel) {
  ASSERT_TRUE(d_.Start({"--function-cpus", "1.5"})) << d_.Logs();
  FaasdProcess uncapped;
  ASSERT_TRUE(uncapped.Start({"--function-cpus", "0"})) << uncapped.Logs();
  for (FaasdProcess* d : {&d_, &uncapped}) {
    ASSERT_EQ(d->Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
    ASSERT_EQ(Get(*d, "/function/hello").status, 200);
  }
  auto quota = [](FaasdProcess& d) -> std::string {
    if (d.Logs().find("faasd.cgroups mode=v2") != std::string::npos) {
      return ReadFileOrEmpty(CgroupDir(d) + "/f-hello/cpu.max");
    }
    return ReadFileOrEmpty(V1CpuDir(d.pid()) + "/f-hello/cpu.cfs_quota_us");
  };
  std::string capped = quota(d_), open = quota(uncapped);
  ASSERT_FALSE(capped.empty()) << V1CpuDir(d_.pid()) << "\n" << d_.Logs();
  // 1.5 CPUs of a 100 ms period: 150 ms.
  EXPECT_TRUE(capped == "150000\n" || capped == "150000 100000\n") << capped;
  EXPECT_TRUE(open == "-1\n" || open == "max 100000\n") << open;
  FaasdProcess bad;
  EXPECT_FALSE(bad.Start({"--function-cpus", "0.5"}));
  EXPECT_EQ(bad.exit_code(), 2) << bad.Logs();
}

TEST_F(Flags, CgroupModePicksTheHierarchy) {
  ASSERT_TRUE(d_.Start({"--cgroup-mode", "v1"})) << d_.Logs();
  EXPECT_NE(d_.Logs().find("faasd.cgroups mode=v1"), std::string::npos) << d_.Logs();
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(Get(d_, "/function/hello").status, 200);
  // v1: a group per controller hierarchy, the function's level in the cpu one too.
  EXPECT_TRUE(IsDir(V1CpuDir(d_.pid()) + "/f-hello")) << V1CpuDir(d_.pid());
  EXPECT_FALSE(CgroupDir(d_).starts_with("/sys/fs/cgroup/unified")) << CgroupDir(d_);

  FaasdProcess bad;
  EXPECT_FALSE(bad.Start({"--cgroup-mode", "v3"}));
  EXPECT_EQ(bad.exit_code(), 2) << bad.Logs();

  // v2, where this host has a cgroup2 mount beside v1 (tests/e2e/limits_test.cc): the groups go
  // there. It has no memory or pids controller, hence --unsafe-no-limits.
  const std::string unified = "/sys/fs/cgroup/unified";
  if (::access((unified + "/cgroup.procs").c_str(), F_OK) != 0) {
    GTEST_SKIP() << "no cgroup2 mount at " << unified << " to run --cgroup-mode v2 against";
  }
  FaasdProcess v2;
  ASSERT_TRUE(v2.Start({"--cgroup-mode", "v2", "--cgroup-v2-mount", unified, "--unsafe-no-limits"}))
      << v2.Logs();
  EXPECT_NE(v2.Logs().find("faasd.cgroups mode=v2"), std::string::npos) << v2.Logs();
  ASSERT_EQ(v2.Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
  ASSERT_EQ(Get(v2, "/function/hello").status, 200);
  EXPECT_TRUE(CgroupDir(v2).starts_with(unified + "/")) << CgroupDir(v2);
  EXPECT_TRUE(IsDir(CgroupDir(v2) + "/f-hello")) << CgroupDir(v2);
}

}  // namespace
}  // namespace faas::testing
