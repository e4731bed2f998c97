// End-to-end: a real faasd on free loopback ports, deployed with the real faasctl, invoked over
// real HTTP. Covers the vertical slice of issue #2: bodies, headers, codes, timeouts, crashes,
// redeploy, rollback, restart, and bad input.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
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

using std::chrono::milliseconds;
using Json = nlohmann::json;

class E2E : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Logs(); }
  void Deploy(const std::string& name, const std::string& lib,
              std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"deploy", name, lib};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult r = d_.Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  HttpResult Get(const std::string& target) { return HttpRequest(d_.http_port(), "GET", target); }
};

TEST_F(E2E, HelloIsServedColdThenWarmWithPlatformHeaders) {
  Deploy("hello", FunctionLib("hello"));
  HttpResult first = Get("/function/hello");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "Hello from faas!\n");
  EXPECT_EQ(first.Header("x-faas-cold-start"), "true");
  EXPECT_EQ(first.Header("x-invocation-id").size(), 26u);
  EXPECT_NE(first.Header("server-timing").find("cold;dur="), std::string::npos);
  HttpResult second = Get("/function/hello");
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.Header("x-faas-cold-start"), "false");
  EXPECT_NE(second.Header("x-invocation-id"), first.Header("x-invocation-id"));
  EXPECT_NE(second.Header("server-timing").find("exec;dur="), std::string::npos);

  HttpResult metrics = Get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("faas_coldstarts_total{function=\"hello\"} 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("faas_invocations_total{function=\"hello\",outcome=\"ok\"} 2\n"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("faas_billed_cpu_seconds_total{function=\"hello\"}"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("faas_instances{function=\"hello\",state=\"idle\"} 1\n"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(
      metrics.body.find("faas_invoke_duration_seconds_bucket{function=\"hello\",phase=\"exec\""),
      std::string::npos);
}

// promtool (Debian package prometheus; infra/install-deps.sh installs it) lints the exposition
// of a daemon that has served, refused and failed requests: names, units, HELP/TYPE, and that
// it parses at all.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

TEST_F(E2E, MetricsPassPromtoolCheckMetrics) {
  std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (apt-get install prometheus)";
  }
  Deploy("hello", FunctionLib("hello"));
  Deploy("crash", FunctionLib("crash"));
  ASSERT_EQ(Get("/function/hello").status, 200);
  ASSERT_EQ(Get("/function/hello").status, 200);
  EXPECT_GE(Get("/function/crash").status, 500);
  EXPECT_GE(Get("/function/nobody").status, 400);  // refused before any function ran
  HttpResult metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  // Every family this test exercised is there, so promtool saw it.
  for (const char* family : {"faas_invocations_total{", "faas_billed_cpu_seconds_total{",
                             "faas_invoke_duration_seconds_bucket{", "faas_http_requests_total{",
                             "faas_http_rejections_total{"}) {
    EXPECT_NE(metrics.body.find(family), std::string::npos) << family << "\n" << metrics.body;
  }
  CommandResult r = RunCommand({promtool, "check", "metrics"}, metrics.body);
  EXPECT_EQ(r.exit_code, 0) << "promtool check metrics:\n"
                            << r.out << r.err << "\n"
                            << metrics.body;
  EXPECT_EQ(r.out + r.err, "") << metrics.body;
}

TEST_F(E2E, KeepAliveConnectionServesManyInvocations) {
  Deploy("hello", FunctionLib("hello"));
  HttpConnection c("127.0.0.1", d_.http_port());
  for (int i = 0; i < 50; ++i) {
    HttpResult r = c.Request("GET", "/function/hello");
    ASSERT_EQ(r.status, 200) << i;
  }
}

TEST_F(E2E, EchoSeesMethodPathQueryHeadersAndBodyButNoSpoofedPlatformHeaders) {
  Deploy("echo", FunctionLib("echo"));
  HttpResult r =
      HttpRequest(d_.http_port(), "POST", "/function/echo/a/b?x=1&y=2", "{\"hello\":\"world\"}",
                  {{"X-Custom", "Value"}, {"X-Faas-Cold-Start", "forged"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  Json j = Json::parse(r.body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/a/b");
  EXPECT_EQ(j["query"], "x=1&y=2");
  EXPECT_EQ(j["body"], "{\"hello\":\"world\"}");
  EXPECT_EQ(j["trigger"], "http");
  EXPECT_EQ(j["headers"]["x-custom"], "Value");
  EXPECT_FALSE(j["headers"].contains("x-faas-cold-start"));
  EXPECT_EQ(j["invocation_id"], r.Header("x-invocation-id"));
}

TEST_F(E2E, TimeoutIs504AtTheTimeoutAndTheNextCallWorks) {
  Deploy("sleep", FunctionLib("sleep"), {"--timeout", "300ms"});
  ASSERT_EQ(Get("/function/sleep?ms=1").status, 200);  // warm it up: time only the timeout
  HttpResult r = Get("/function/sleep?ms=5000");
  ExpectError(r, 504, "function_timeout");
  // faasd's own measure of the call (Server-Timing exec), not the client's clock: at the timeout,
  // with slack proportional to it (the kill and the wait for the cgroup to empty), and far from
  // the 5 s the function asked for.
  const double exec_ms = ServerTimingMs(r, "exec");
  EXPECT_GE(exec_ms, 300) << r.Header("server-timing");
  EXPECT_LT(exec_ms, 300 * 1.5) << r.Header("server-timing");
  HttpResult next = Get("/function/sleep?ms=10");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "slept 10 ms\n");
  EXPECT_EQ(next.Header("x-faas-cold-start"), "true");  // the killed instance was replaced
}

TEST_F(E2E, CrashIs502WithTheSignalAndDoesNotHurtOtherFunctions) {
  Deploy("crash", FunctionLib("crash"));
  Deploy("hello", FunctionLib("hello"));
  for (int i = 0; i < 3; ++i) {
    HttpResult r = Get("/function/crash");
    ExpectError(r, 502, "function_crashed");
    EXPECT_NE(r.body.find("SIGSEGV"), std::string::npos) << r.body;
    EXPECT_EQ(Get("/function/hello").status, 200);
  }
}

TEST_F(E2E, NonZeroReturnIs500FunctionError) {
  Deploy("fail", FunctionLib("fail"));
  ExpectError(Get("/function/fail"), 500, "function_error");
}

TEST_F(E2E, ProtocolViolationKillsOnlyThatWorker) {
  Deploy("garbage", TestdataLib("garbage"));
  HttpResult r = Get("/function/garbage");
  ExpectError(r, 502, "function_crashed");
  EXPECT_NE(r.body.find("protocol"), std::string::npos) << r.body;
  Deploy("hello", FunctionLib("hello"));
  EXPECT_EQ(Get("/function/hello").status, 200);
}

TEST_F(E2E, OversizedResponseIs502ResponseTooLarge) {
  Deploy("big", TestdataLib("bigresponse"));
  ExpectError(Get("/function/big"), 502, "response_too_large");
}

TEST_F(E2E, UnknownFunctionAndRouteAre404) {
  // Without a key a missing function answers 401 like a private one (gateway_test.cc); with
  // one, 404.
  ExpectError(HttpRequest(d_.http_port(), "GET", "/function/nope", "",
                          {{"Authorization", "Bearer " + d_.CreateKey()}}),
              404, "function_not_found");
  ExpectError(Get("/nowhere"), 404, "route_not_found");
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
}

TEST_F(E2E, OversizedBodyIs413BeforeAnyFunctionRuns) {
  Deploy("echo", FunctionLib("echo"));
  std::string body((6u << 20) + 1, 'x');
  HttpResult r = HttpRequest(d_.http_port(), "POST", "/function/echo", body);
  ExpectError(r, 413, "payload_too_large");
  EXPECT_EQ(Get("/function/echo").status, 200);

  Deploy("small", FunctionLib("echo"), {"--max-body", "1024"});
  ExpectError(HttpRequest(d_.http_port(), "POST", "/function/small", std::string(1025, 'x')), 413,
              "payload_too_large");
  EXPECT_EQ(HttpRequest(d_.http_port(), "POST", "/function/small", std::string(1024, 'x')).status,
            200);
}

TEST_F(E2E, RedeployRollbackVersionsAndDelete) {
  Deploy("multi", FunctionLib("hello"));
  EXPECT_EQ(Get("/function/multi").body, "Hello from faas!\n");
  Deploy("multi", FunctionLib("echo"));
  EXPECT_EQ(Get("/function/multi").Header("content-type"), "application/json");

  CommandResult versions = d_.Ctl({"versions", "multi", "-o", "json"});
  ASSERT_EQ(versions.exit_code, 0) << versions.err;
  Json v = Json::parse(versions.out);
  ASSERT_TRUE(v.contains("versions")) << versions.out;
  EXPECT_EQ(v["versions"].size(), 2u);

  CommandResult same = d_.Ctl({"deploy", "multi", FunctionLib("echo")});
  EXPECT_EQ(same.exit_code, 0);
  EXPECT_NE(same.out.find("unchanged"), std::string::npos) << same.out;

  CommandResult rb = d_.Ctl({"rollback", "multi", "1"});
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_EQ(Get("/function/multi").body, "Hello from faas!\n");
  EXPECT_EQ(d_.Ctl({"rollback", "multi", "9"}).exit_code, 1);

  ASSERT_EQ(d_.Ctl({"delete", "multi"}).exit_code, 0);
  ExpectError(HttpRequest(d_.http_port(), "GET", "/function/multi", "",
                          {{"Authorization", "Bearer " + d_.CreateKey()}}),
              404, "function_not_found");
  EXPECT_EQ(d_.Ctl({"describe", "multi"}).exit_code, 1);
}

TEST_F(E2E, BadDeploysAreRefusedWithClearErrorsAndChangeNothing) {
  Deploy("keep", FunctionLib("hello"));
  TempDir tmp;
  std::string text = tmp.path() + "/notelf.so";
  WriteFileOrDie(text, "this is not a shared library\n");
  std::string arm = tmp.path() + "/arm.so";
  std::string elf = ReadFileOrEmpty(FunctionLib("hello"));
  elf[18] = static_cast<char>(183);  // e_machine = EM_AARCH64
  elf[19] = 0;
  WriteFileOrDie(arm, elf);

  struct Case {
    std::string name, lib, code, says;
  };
  std::vector<Case> cases = {
      {"keep", text, "invalid_artifact", "ELF"},
      {"keep", arm, "invalid_artifact", "AArch64"},
      {"keep", TestdataLib("noexport"), "invalid_artifact", "faas_handle"},
      {"keep", TestdataLib("badabi"), "invalid_artifact", "ABI"},
      {"keep", TestdataLib("initfail"), "init_failed", "faas_init returned 7"},
      {"keep", TestdataLib("badsym"), "init_failed", "undefined symbol: missing_"},
      {"../x", FunctionLib("hello"), "invalid_name", "../x"},
      {"Foo", FunctionLib("hello"), "invalid_name", "Foo"},
      {std::string(64, 'a'), FunctionLib("hello"), "invalid_name", "[a-z]"},
  };
  for (const Case& c : cases) {
    CommandResult r = d_.Ctl({"deploy", c.name, c.lib});
    EXPECT_EQ(r.exit_code, 1) << c.lib << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(c.code), std::string::npos) << c.lib << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.lib << ": " << r.err;
  }
  CommandResult list = d_.Ctl({"list", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0);
  Json j = Json::parse(list.out);
  ASSERT_EQ(j["functions"].size(), 1u) << list.out;
  EXPECT_EQ(j["functions"][0]["name"], "keep");
  EXPECT_EQ(j["functions"][0]["latest_version"], 1);
  EXPECT_EQ(Get("/function/keep").status, 200);
  CommandResult bad_flag = d_.Ctl({"deploy", "keep", FunctionLib("hello"), "--memory", "4"});
  EXPECT_EQ(bad_flag.exit_code, 1) << bad_flag.err;
  EXPECT_NE(bad_flag.err.find("16"), std::string::npos) << bad_flag.err;
}

TEST(E2EDeploy, MisbehavingConstructorsFailTheDeployInsideTheSandbox) {
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--init-timeout", "1s"})) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "ctor", FunctionLib("hello")}).exit_code, 0);
  struct Case {
    const char* lib;
    const char* code;
    const char* says;
  };
  for (const Case& c : {Case{"ctor_spin", "init_timeout", "within 1s"},
                        Case{"ctor_forkbomb", "init_failed", "exited with status 3"},
                        Case{"ctor_exit", "init_failed", "exited with status 0"},
                        Case{"ctor_crash", "init_failed", "SIGSEGV"},
                        Case{"ctor_garbage", "init_failed", "protocol violation"}}) {
    auto t0 = std::chrono::steady_clock::now();
    CommandResult r = d.Ctl({"deploy", "ctor", TestdataLib(c.lib)});
    EXPECT_EQ(r.exit_code, 1) << c.lib << ": " << r.err;
    EXPECT_NE(r.err.find(c.code), std::string::npos) << c.lib << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.lib << ": " << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << c.lib;
  }
  // The working version stayed latest and still serves.
  HttpResult r = HttpRequest(d.http_port(), "GET", "/function/ctor");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello from faas!\n");
}

TEST_F(E2E, FaasctlInvokeReportsColdStartAndExitCodes) {
  Deploy("echo", FunctionLib("echo"));
  CommandResult r = d_.Ctl({"invoke", "echo", "--data", "{\"x\":1}", "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["body"], "{\"x\":1}");
  EXPECT_NE(r.err.find("cold start: yes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("echo: 7 body bytes"), std::string::npos) << r.err;  // captured stderr
  EXPECT_EQ(d_.Ctl({"invoke", "nope"}).exit_code, 1);
  EXPECT_EQ(d_.Ctl({"frobnicate"}).exit_code, 2);
  CommandResult unreachable =
      RunCommand({BinDir() + "/faasctl", "--server", "127.0.0.1:1", "list"});
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.err;
}

TEST_F(E2E, LogsInvocationsAndBillFromTheCli) {
  Deploy("fail", FunctionLib("fail"));
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    HttpResult r = Get("/function/fail");
    ASSERT_EQ(r.status, 500);
    ids.push_back(r.Header("x-invocation-id"));
  }
  CommandResult logs = d_.Ctl({"logs", "fail"});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  for (const auto& id : ids) {
    EXPECT_NE(logs.out.find("refusing invocation " + id), std::string::npos) << logs.out;
  }
  CommandResult one = d_.Ctl({"logs", "fail", "--invocation", ids[0]});
  EXPECT_NE(one.out.find(ids[0]), std::string::npos);
  EXPECT_EQ(one.out.find(ids[1]), std::string::npos);

  CommandResult inv = d_.Ctl({"invocations", "fail", "-o", "json"});
  ASSERT_EQ(inv.exit_code, 0) << inv.err;
  Json all = Json::parse(inv.out);
  // The ledger also lists what started the instances: "init" rows (loading and faas_init of the
  // zygote, and of a worker spawned before the zygote was up; docs/metering.md).
  Json j = {{"invocations", Json::array()}};
  for (const Json& row : all["invocations"]) {
    if (row["kind"] == "invocation") {
      j["invocations"].push_back(row);
    } else {
      EXPECT_EQ(row["kind"], "init") << inv.out;
    }
  }
  ASSERT_EQ(j["invocations"].size(), 2u) << inv.out;
  EXPECT_EQ(j["invocations"][0]["invocation_id"], ids[1]);  // newest first
  EXPECT_EQ(j["invocations"][0]["outcome"], "function_error");

  CommandResult bill = d_.Ctl({"bill", "--function", "fail", "-o", "json"});
  ASSERT_EQ(bill.exit_code, 0) << bill.err;
  Json b = Json::parse(bill.out);
  EXPECT_EQ(b["total"]["invocations"], 2) << bill.out;
  EXPECT_EQ(b["total"]["errors"], 2) << bill.out;
  CommandResult table = d_.Ctl({"bill", "--by", "function"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("fail"), std::string::npos) << table.out;
  EXPECT_EQ(d_.Ctl({"logs", "nope"}).exit_code, 1);
}

TEST_F(E2E, ABurstOf200ConcurrentRequestsToAScaledToZeroFunctionAllSucceed) {
  Deploy("sleep", FunctionLib("sleep"), {"--max-instances", "16"});
  std::vector<std::future<HttpResult>> burst;
  for (int i = 0; i < 200; ++i) {
    burst.push_back(std::async(std::launch::async, [&] { return Get("/function/sleep?ms=50"); }));
  }
  int ok = 0, cold = 0;
  for (auto& f : burst) {
    HttpResult r = f.get();
    ok += r.status == 200 ? 1 : 0;
    cold += r.Header("x-faas-cold-start") == "true" ? 1 : 0;
  }
  EXPECT_EQ(ok, 200);
  EXPECT_GE(cold, 1);
  EXPECT_LE(cold, 16);  // never more instances than max_instances: the rest waited in the queue
}

TEST_F(E2E, FaasctlBenchMeasuresColdAndWarmAgainstAForkBaseline) {
  Deploy("hello", FunctionLib("hello"));
  CommandResult cold = d_.Ctl({"bench", "cold-start", "hello", "-n", "5"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  EXPECT_NE(cold.out.find("fork baseline"), std::string::npos) << cold.out;
  EXPECT_NE(cold.out.find("spawn"), std::string::npos) << cold.out;
  EXPECT_NE(cold.out.find("server-side ms (n=5)"), std::string::npos) << cold.out;
  CommandResult warm = d_.Ctl({"bench", "warm", "hello", "-n", "20", "-c", "2", "-o", "json"});
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  Json j = Json::parse(warm.out);
  EXPECT_EQ(j["mode"], "warm");
  EXPECT_GT(j["phases"]["exec"]["p50"].get<double>(), 0.0);
  EXPECT_GT(j["baseline_fork_ms"]["p50"].get<double>(), 0.0);
  EXPECT_FALSE(j["phases"].contains("spawn")) << "warm invocations start nothing";
  EXPECT_EQ(d_.Ctl({"bench", "cold-start", "nope", "-n", "1"}).exit_code, 1);
}

// The cold start users meet: each round waits for scale-to-zero and the pause, then calls the
// function normally (not --fresh); the baseline forks a small helper after the same pause.
TEST_F(E2E, FaasctlBenchColdStartAfterIdleCallsAScaledToZeroFunction) {
  Deploy("hello", FunctionLib("hello"), {"--idle-ttl", "1s"});
  CommandResult idle =
      d_.Ctl({"bench", "cold-start", "hello", "-n", "2", "--after-idle", "200ms", "-o", "json"});
  ASSERT_EQ(idle.exit_code, 0) << idle.err;
  Json j = Json::parse(idle.out);
  EXPECT_EQ(j["n"], 2);
  EXPECT_GT(j["phases"]["cold"]["p50"].get<double>(), 0.0) << "every round was a cold start";
  EXPECT_GT(j["baseline_fork_ms"]["p50"].get<double>(), 0.0);
  // Two scale-to-zero cold starts, counted by faasd too.
  CommandResult d = d_.Ctl({"describe", "hello", "-o", "json"});
  EXPECT_GE(Json::parse(d.out)["cold_starts"].get<int>(), 2) << d.out;
  // A function kept warm never scales to zero: refused with the reason, not a warm figure.
  Deploy("warmfn", FunctionLib("hello"), {"--min-warm", "1"});
  CommandResult warm = d_.Ctl({"bench", "cold-start", "warmfn", "-n", "1", "--after-idle", "10ms"});
  EXPECT_NE(warm.exit_code, 0);
  EXPECT_NE(warm.err.find("--min-warm 0"), std::string::npos) << warm.err;
}

TEST_F(E2E, FunctionsSurviveARestartWithTheSameDataDir) {
  Deploy("hello", FunctionLib("hello"));
  Deploy("hello", FunctionLib("echo"));
  ASSERT_EQ(d_.Ctl({"rollback", "hello", "1"}).exit_code, 0);
  ASSERT_EQ(d_.Stop(), 0) << d_.Logs();
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  HttpResult r = Get("/function/hello");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello from faas!\n");
}

TEST_F(E2E, SigtermFinishesInFlightInvocationsThenExitsZero) {
  Deploy("sleep", FunctionLib("sleep"));
  ASSERT_EQ(Get("/function/sleep?ms=1").status, 200);
  auto in_flight = std::async(std::launch::async, [&] { return Get("/function/sleep?ms=700"); });
  // Wait until the invocation is running (the function is busy), then stop faasd.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    CommandResult d = d_.Ctl({"describe", "sleep", "-o", "json"});
    if (d.exit_code == 0 && Json::parse(d.out)["instances_busy"] == 1) {
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
  }
  int pid = d_.pid();
  auto stopped = std::async(std::launch::async, [&] { return d_.Stop(); });
  HttpResult r = in_flight.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "slept 700 ms\n");
  EXPECT_EQ(stopped.get(), 0);
  EXPECT_NE(::kill(pid, 0), 0);  // gone
}

TEST(E2ELoop, OneEventLoopServesQuickRequestsWhileSlowInvocationsRun) {
  // With a single HTTP event loop, invocations must never hold it: slow ones wait in their
  // worker, cold starts on blocking threads, and a quick request is answered meanwhile.
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--http-threads", "1"})) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "sleep", FunctionLib("sleep")}).exit_code, 0);
  ASSERT_EQ(d.Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0);
  ASSERT_EQ(HttpRequest(d.http_port(), "GET", "/function/hello").status, 200);  // warm
  std::vector<std::future<HttpResult>> slow;
  // 8 cold starts, then 4 s each in the function: long enough that all of them still run when
  // the quick request is answered, even when the cold starts were slow on a loaded machine.
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::async(std::launch::async, [&] {
      return HttpRequest(d.http_port(), "GET", "/function/sleep?ms=4000");
    }));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {  // until every slow invocation is running in its worker
    CommandResult desc = d.Ctl({"describe", "sleep", "-o", "json"});
    if (desc.exit_code == 0 && Json::parse(desc.out)["instances_busy"] == 8) {
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << desc.out;
  }
  HttpResult quick = HttpRequest(d.http_port(), "GET", "/function/hello");
  EXPECT_EQ(quick.status, 200);
  // Answered while every slow invocation still runs (an order of events, not a client-side
  // stopwatch): had the loop been held, the quick answer would have come after a slow one.
  for (auto& f : slow) {
    EXPECT_EQ(f.wait_for(milliseconds(0)), std::future_status::timeout)
        << "the quick request waited for the slow ones";
  }
  for (auto& f : slow) {
    HttpResult r = f.get();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "slept 4000 ms\n");
  }
}

}  // namespace
}  // namespace faas::testing
