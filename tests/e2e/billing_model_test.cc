// What a customer pays for (docs/metering.md, issue #14 item 4): the handler's CPU on each
// invocation row, loading and faas_init once on an "init" row, CPU the function causes between
// calls on "background" rows summed per function before rounding; never the platform's exec,
// jail or fork (counted in faas_platform_cpu_seconds_total). A no-op's cold invocation bills
// what its warm one does, on every path.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "faas/store/ledger.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

struct Rows {
  std::vector<store::InvocationRecord> invocations, init, background;
};

class BillingModel : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> flags = {}) {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd needs root for its sandbox";
    }
    ASSERT_TRUE(d_.Start(flags)) << d_.Logs();
  }
  void Deploy(const std::string& name, std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"deploy", name, TestdataLib("initburn")};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult r = d_.Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string Call(const std::string& name) {
    HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/" + name);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Header("x-invocation-id");
  }
  // faas_platform_cpu_seconds_total{function=`name`}, or -1.
  double PlatformCpu(const std::string& name) {
    return Sample(HttpRequest(d_.http_port(), "GET", "/metrics").body,
                  "faas_platform_cpu_seconds_total{function=\"" + name + "\"}");
  }
  // Polls /metrics until `name` has a zygote (it starts in the background after a deploy).
  void AwaitZygote(const std::string& name) {
    ASSERT_TRUE(PollUntil([&] {
      return Sample(HttpRequest(d_.http_port(), "GET", "/metrics").body,
                    "faas_instances{function=\"" + name + "\",state=\"zygote\"}") == 1;
    })) << "no zygote for "
        << name;
  }
  // Stops faasd (which flushes the background carry) and reads the function's ledger rows.
  Rows StopAndRead(const std::string& name) {
    EXPECT_EQ(d_.Stop(), 0);
    Rows out;
    auto ledger = store::Ledger::Open(d_.data_dir());
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    if (!ledger.ok()) {
      return out;
    }
    auto list = (*ledger)->List(name, 100000);
    EXPECT_TRUE(list.ok());
    for (auto& r : *list) {
      (r.kind == "invocation" ? out.invocations
       : r.kind == "init"     ? out.init
                              : out.background)
          .push_back(r);
    }
    return out;
  }
  static uint64_t BilledOf(const std::vector<store::InvocationRecord>& rows) {
    uint64_t sum = 0;
    for (const auto& r : rows) {
      sum += r.billed_ms;
    }
    return sum;
  }
  FaasdProcess d_;
};

// No zygotes: every instance is a spawned worker that loads the library and runs faas_init
// (30 ms of CPU) before its first call.
TEST_F(BillingModel, ASpawnedColdStartBillsInitOnItsOwnRowAndTheCallLikeAWarmOne) {
  Start({"--zygotes", "false"});
  Deploy("fn");
  const std::string cold = Call("fn");
  const std::string warm = Call("fn");
  EXPECT_GT(PlatformCpu("fn"), 0) << "exec and jail are measured";
  Rows rows = StopAndRead("fn");
  std::map<std::string, store::InvocationRecord> by_id;
  for (const auto& r : rows.invocations) {
    by_id[r.invocation_id] = r;
  }
  ASSERT_EQ(by_id.count(cold), 1u);
  ASSERT_EQ(by_id.count(warm), 1u);
  EXPECT_TRUE(by_id[cold].cold_start);
  EXPECT_FALSE(by_id[warm].cold_start);
  // Before this model the cold row also carried exec, jail, dlopen and faas_init: >= 30 ms.
  EXPECT_LE(by_id[cold].billed_ms, by_id[warm].billed_ms + 1)
      << "cold cpu " << by_id[cold].cpu_ns << " ns, warm " << by_id[warm].cpu_ns << " ns";
  // One init row for the one instance: faas_init's 30 ms (and dlopen), billed like a call.
  ASSERT_EQ(rows.init.size(), 1u);
  EXPECT_GE(rows.init[0].cpu_ns, 29'000'000u);
  EXPECT_LT(rows.init[0].cpu_ns, 200'000'000u);
  EXPECT_EQ(rows.init[0].billed_ms,
            static_cast<uint64_t>(std::ceil(static_cast<double>(rows.init[0].cpu_ns) / 1e6)));
  EXPECT_LE(BilledOf(rows.background), 1u) << "a no-op does nothing between calls";
}

// With a zygote and `isolation fresh`, every call forks a new instance: each used to write a
// background row of its start-up (0.2-0.35 ms rounded up to 1 ms on its own).
TEST_F(BillingModel, ForkedColdStartsBillNothingOfTheirStartAndInitOnceForTheZygote) {
  Start();
  Deploy("fn", {"--isolation", "fresh"});
  AwaitZygote("fn");
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(Call("fn"));
  }
  EXPECT_GT(PlatformCpu("fn"), 0) << "the forks and instance jails are measured";
  Rows rows = StopAndRead("fn");
  ASSERT_EQ(rows.invocations.size(), ids.size());
  for (const auto& r : rows.invocations) {
    EXPECT_TRUE(r.cold_start);
    EXPECT_LE(r.billed_ms, 2u) << r.invocation_id << ": " << r.cpu_ns << " ns";
  }
  // The zygote loaded the library and ran faas_init once: one init row of >= 30 ms. (A cold
  // start before the zygote was up would add a spawned instance's row; AwaitZygote excludes it.)
  ASSERT_EQ(rows.init.size(), 1u);
  EXPECT_GE(rows.init[0].cpu_ns, 29'000'000u);
  // Eight forked starts used to bill >= 8 ms of background; summed before rounding, a no-op's
  // few µs per instance stay under one millisecond.
  EXPECT_LE(BilledOf(rows.background), 1u);
}

}  // namespace
}  // namespace faas::testing
