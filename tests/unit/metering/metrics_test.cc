// Metrics: per-request figures recorded by several threads (each into its own shard) add up to
// one set of counters and histograms in Render.
#include "faas/metering/metrics.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace faas::metering {
namespace {

using std::chrono::microseconds;

TEST(Metrics, FiguresRecordedByManyThreadsAddUpWhenRendered) {
  Metrics m;
  constexpr int kThreads = 12;  // more than the shards: some threads share one
  constexpr int kEach = 1000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < kEach; ++i) {
        m.RecordInvocation({.function = "hello",
                            .outcome = "ok",
                            .cold_start = i == 0,
                            .cpu = microseconds(10),
                            .billed_ms = 1,
                            .exec = microseconds(50),
                            .total = microseconds(60)});
        m.RecordHttpRequest("/function/{name}", "hello", 200, microseconds(70));
      }
      m.RecordBackground("hello", microseconds(5), 0);
      m.RecordPlatformCpu("hello", microseconds(3));
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const std::string text = m.Render();
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  };
  has("faas_invocations_total{function=\"hello\",outcome=\"ok\"} 12000");
  has("faas_coldstarts_total{function=\"hello\"} 12");
  has("faas_cpu_seconds_total{function=\"hello\"} 0.120060000");  // 12000 × 10 µs + 12 × 5 µs
  has("faas_platform_cpu_seconds_total{function=\"hello\"} 0.000036000");
  has("faas_billed_cpu_seconds_total{function=\"hello\"} 12.000");
  has("faas_invoke_duration_seconds_count{function=\"hello\",phase=\"exec\"} 12000");
  has("faas_invoke_duration_seconds_bucket{function=\"hello\",phase=\"exec\",le=\"0.0001\"} "
      "12000");
  has("faas_init_duration_seconds_count{function=\"hello\"} 12");
  has("faas_http_requests_total{route=\"/function/{name}\",function=\"hello\",status=\"200\"} "
      "12000");
}

// A gateway's node_lost call: counted by outcome, without the phases or CPU the node had.
TEST(Metrics, AnOutcomeAloneIsCountedWithoutPhases) {
  Metrics m;
  m.RecordOutcome("sleep", "node_lost");
  m.RecordOutcome("sleep", "node_lost");
  std::string out = m.Render();
  EXPECT_NE(out.find("faas_invocations_total{function=\"sleep\",outcome=\"node_lost\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("faas_coldstarts_total{function=\"sleep\"} 0\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("faas_invoke_duration_seconds_count{function=\"sleep\""), std::string::npos)
      << out;
}

// Tenants are API-key owners, which anyone with the admin token can mint: past kMaxTenantSeries
// distinct tenants the rest add up under tenant="_other", so the exposition stays bounded.
TEST(Metrics, TenantBilledCpuKeepsAtMostTheCapOfSeries) {
  Metrics m;
  for (std::size_t i = 0; i < Metrics::kMaxTenantSeries + 5; ++i) {
    m.RecordTenantCpu("t" + std::to_string(i), std::chrono::microseconds(1500));  // billed 2 ms
  }
  m.RecordTenantCpu("t0", std::chrono::milliseconds(3));  // a known tenant keeps its own series
  const std::string out = m.Render();
  std::size_t series = 0;
  for (std::size_t at = out.find("\nfaas_tenant_billed_cpu_seconds_total{");
       at != std::string::npos; at = out.find("\nfaas_tenant_billed_cpu_seconds_total{", at + 1)) {
    ++series;
  }
  EXPECT_EQ(series, Metrics::kMaxTenantSeries + 1) << out;
  EXPECT_NE(out.find("faas_tenant_billed_cpu_seconds_total{tenant=\"_other\"} 0.010\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("faas_tenant_billed_cpu_seconds_total{tenant=\"t0\"} 0.005\n"),
            std::string::npos)
      << out;
}

// A queue source that cannot read (Redis down) exports no faas_queue_messages for that scrape;
// a node source's states come out as they are given.
TEST(Metrics, BacklogAndNodeGaugesComeFromTheirSourcesAtEachScrape) {
  Metrics m;
  bool readable = true;
  m.SetQueueSource([&readable](std::vector<QueueGauge>* out) {
    out->push_back({.queue = "_async", .ready = 4, .delayed = 1, .in_flight = 2, .dead = 0});
    return readable;
  });
  m.SetClusterNodeSource([] { return std::map<std::string, uint64_t>{{"draining", 1}}; });
  std::string out = m.Render();
  EXPECT_NE(out.find("faas_queue_messages{queue=\"_async\",state=\"ready\"} 4\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("faas_queue_messages{queue=\"_async\",state=\"in_flight\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("faas_cluster_nodes{state=\"draining\"} 1\n"), std::string::npos) << out;
  readable = false;
  out = m.Render();
  EXPECT_EQ(out.find("faas_queue_messages"), std::string::npos) << out;
}

}  // namespace
}  // namespace faas::metering
