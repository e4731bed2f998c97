// End-to-end: the HTTP front's metrics move with the requests that cause them, and memory tiers
// beyond the first multiply the CPU price (docs/metering.md "Price"), issue #15 item 9.
// (faas_queue_waiting: drain_test.cc; faas_init_duration_seconds: flags_test.cc.)
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/store/ledger.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

// A counter not yet incremented is not exposed: 0 then.
double CounterSample(const std::string& metrics, const std::string& series) {
  return Sample(metrics, series, 0);
}

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

class HttpMetrics : public FaasdTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd needs root for its sandbox";
    }
    ASSERT_TRUE(d_.Start()) << d_.Logs();
  }
  HttpResult Get(const std::string& target) { return HttpRequest(d_.http_port(), "GET", target); }
  std::string Metrics() { return Get("/metrics").body; }
};

TEST_F(HttpMetrics, RequestsDurationsAndRejectionsCountWhatHappened) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  Ctl0({"deploy", "fail", FunctionLib("fail")});
  const std::string ok =
      "faas_http_requests_total{route=\"/function/{name}\",function=\"hello\","
      "status=\"200\"}";
  const std::string failed =
      "faas_http_requests_total{route=\"/function/{name}\",function=\"fail\","
      "status=\"500\"}";
  const std::string durations =
      "faas_http_request_duration_seconds_count{route=\"/function/{name}\"}";
  const std::string no_route = "faas_http_rejections_total{reason=\"route_not_found\"}";
  const std::string too_large = "faas_http_rejections_total{reason=\"payload_too_large\"}";
  std::string before = Metrics();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Get("/function/hello").status, 200);
  }
  ASSERT_EQ(Get("/function/fail").status, 500);
  ASSERT_EQ(Get("/no/such/route").status, 404);
  ASSERT_EQ(Get("/no/such/route/either").status, 404);
  ASSERT_EQ(HttpRequest(d_.http_port(), "POST", "/function/hello", std::string((6u << 20) + 1, 'x'))
                .status,
            413);
  std::string after = Metrics();
  EXPECT_EQ(CounterSample(after, ok) - CounterSample(before, ok), 3) << after;
  EXPECT_EQ(CounterSample(after, failed) - CounterSample(before, failed), 1) << after;
  EXPECT_EQ(CounterSample(after, no_route) - CounterSample(before, no_route), 2) << after;
  EXPECT_EQ(CounterSample(after, too_large) - CounterSample(before, too_large), 1) << after;
  // Every /function request a handler answered is one observation (the 413 was refused by the
  // HTTP server before routing, so it counts as a rejection only).
  EXPECT_EQ(CounterSample(after, durations) - CounterSample(before, durations), 4) << after;
  // Unmatched paths are aggregated under one route label, never the raw path.
  const std::string other =
      "faas_http_requests_total{route=\"other\",function=\"\",status=\"404\"}";
  EXPECT_EQ(CounterSample(after, other) - CounterSample(before, other), 2) << after;
  EXPECT_EQ(after.find("/no/such/route"), std::string::npos) << after;
  // A failed function is not a rejection: nothing was refused before it ran.
  EXPECT_EQ(after.find("faas_http_rejections_total{reason=\"function_error\"}"), std::string::npos);
}

TEST_F(HttpMetrics, InFlightCountsRequestsBeingHandled) {
  Ctl0({"deploy", "sleep", FunctionLib("sleep"), "--max-instances", "4"});
  // The /metrics request that reads the gauge is itself in flight.
  const double idle = CounterSample(Metrics(), "faas_http_in_flight");
  ASSERT_GE(idle, 1);
  auto a = std::async(std::launch::async, [&] { return Get("/function/sleep?ms=2000"); });
  auto b = std::async(std::launch::async, [&] { return Get("/function/sleep?ms=2000"); });
  double now = 0;
  EXPECT_TRUE(PollUntil([&] {
    return (now = CounterSample(Metrics(), "faas_http_in_flight")) == idle + 2;
  })) << now;
  EXPECT_EQ(a.get().status, 200);
  EXPECT_EQ(b.get().status, 200);
  EXPECT_EQ(CounterSample(Metrics(), "faas_http_in_flight"), idle);
}

// Billed CPU per API-key tenant (docs/metering.md): two 40 ms burns with acme's key add at least
// 80 ms to acme's counter; a tenant that called nothing has no series.
TEST_F(HttpMetrics, BilledCpuIsCountedPerTenant) {
  d_.set_public_deploys(false);
  Ctl0({"deploy", "burn", FunctionLib("burn")});
  const std::string acme = d_.CreateKey("acme");
  ASSERT_FALSE(d_.CreateKey("idle").empty());
  ASSERT_FALSE(acme.empty());
  for (int i = 0; i < 2; ++i) {
    HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/burn?ms=40", "",
                               {{"Authorization", "Bearer " + acme}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string m = Metrics();
  EXPECT_GE(Sample(m, "faas_tenant_billed_cpu_seconds_total{tenant=\"acme\"}"), 0.08) << m;
  EXPECT_EQ(m.find("faas_tenant_billed_cpu_seconds_total{tenant=\"idle\"}"), std::string::npos);
}

// Backlogs (docs/metering.md): messages waiting in a queue by state, and the lag of a paused
// trigger's queue, read when /metrics is scraped.
TEST_F(HttpMetrics, QueueAndTriggerBacklogsAreExported) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  for (int i = 0; i < 3; ++i) {
    Ctl0({"queue", "publish", "jobs", "job-" + std::to_string(i)});
  }
  std::string m = Metrics();
  EXPECT_EQ(Sample(m, "faas_queue_messages{queue=\"jobs\",state=\"ready\"}"), 3) << m;
  EXPECT_EQ(Sample(m, "faas_queue_messages{queue=\"jobs\",state=\"in_flight\"}"), 0) << m;

  Ctl0(
      {"trigger", "add", "feed", "--function", "echo", "--source", "embedded", "--queue", "inbox"});
  Ctl0({"trigger", "pause", "feed"});
  Ctl0({"queue", "publish", "inbox", "a"});
  Ctl0({"queue", "publish", "inbox", "b"});
  EXPECT_TRUE(PollUntil([&] {
    m = Metrics();
    return Sample(m, "faas_trigger_lag{trigger=\"feed\"}") == 2;
  })) << m;
  Ctl0({"trigger", "resume", "feed"});
  EXPECT_TRUE(PollUntil([&] {
    m = Metrics();
    return Sample(m, "faas_trigger_lag{trigger=\"feed\"}") == 0 &&
           Sample(m, "faas_queue_messages{queue=\"inbox\",state=\"ready\"}") == 0;
  })) << m;
}

// docs/metering.md: cost = billed_ms × price_per_cpu_ms × tier + price_per_request, tier = the
// memory in started 128 MiB steps.
TEST(MemoryTiers, CostScalesWithStartedSteps) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "faasd needs root for its sandbox";
  }
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--price-per-cpu-ms", "3", "--price-per-request", "10"})) << d.Logs();
  const std::map<std::string, std::pair<std::string, int64_t>> fns = {
      {"t1", {"128", 1}}, {"t2a", {"129", 2}}, {"t2b", {"256", 2}},
      {"t3", {"257", 3}}, {"t8", {"1024", 8}}, {"t9", {"1025", 9}}};
  std::map<std::string, std::string> ids;
  for (const auto& [fn, mem] : fns) {
    CommandResult r = d.Ctl({"deploy", fn, FunctionLib("burn"), "--memory", mem.first});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    HttpResult h = HttpRequest(d.http_port(), "GET", "/function/" + fn + "?ms=20");
    ASSERT_EQ(h.status, 200) << h.body;
    ids[fn] = h.Header("x-invocation-id");
  }
  ASSERT_EQ(d.Stop(), 0);
  auto ledger = store::Ledger::Open(d.data_dir());
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  for (const auto& [fn, mem] : fns) {
    auto rows = (*ledger)->List(fn, 100);
    ASSERT_TRUE(rows.ok());
    bool found = false;
    for (const auto& rec : *rows) {
      if (rec.invocation_id != ids[fn]) {
        continue;
      }
      found = true;
      EXPECT_GE(rec.billed_ms, 20u) << fn;  // so that the tier shows in the cost
      EXPECT_EQ(rec.cost_micros, static_cast<int64_t>(rec.billed_ms) * 3 * mem.second + 10)
          << fn << " (" << mem.first << " MiB) should be tier " << mem.second;
    }
    EXPECT_TRUE(found) << fn;
  }
}

// faasd --warm-pool (docs/design/0032-warm-pool.md): a node that keeps one instance stops the
// least recently used function's idle instance for another's cold start, and counts it.
TEST(WarmPool, AColdStartPastThePoolEvictsTheLeastRecentlyUsedAndCountsIt) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "faasd needs root for its sandbox";
  }
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--warm-pool", "1"})) << d.Logs();
  for (const char* fn : {"a", "b"}) {
    ASSERT_EQ(d.Ctl({"deploy", fn, FunctionLib("hello")}).exit_code, 0);
  }
  auto cold = [&](const std::string& fn) {
    HttpResult r = HttpRequest(d.http_port(), "GET", "/function/" + fn);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Header("x-faas-cold-start");
  };
  EXPECT_EQ(cold("a"), "true");
  EXPECT_EQ(cold("a"), "false");
  EXPECT_EQ(cold("b"), "true");  // a's instance makes room
  EXPECT_EQ(cold("b"), "false");
  EXPECT_EQ(cold("a"), "true") << "a was evicted";
  const std::string m = HttpRequest(d.http_port(), "GET", "/metrics").body;
  EXPECT_EQ(CounterSample(m, "faas_instances_evicted_total{function=\"a\"}"), 1) << m;
  EXPECT_EQ(CounterSample(m, "faas_instances_evicted_total{function=\"b\"}"), 1) << m;
  EXPECT_EQ(CounterSample(m, "faas_instances{function=\"b\",state=\"idle\"}"), 0) << m;
  EXPECT_EQ(CounterSample(m, "faas_instances{function=\"a\",state=\"idle\"}"), 1) << m;
}

}  // namespace
}  // namespace faas::testing
