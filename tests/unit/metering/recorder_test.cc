// Recorder: the ledger rows of invocations, init and background CPU, written to a real ledger
// in a temp dir (metering's inputs are its own structs: no scheduler here).
#include "faas/metering/recorder.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "faas/store/ledger.h"

namespace faas::metering {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/faas-metering-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto ledger = store::Ledger::Open(dir_);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
  }
  void TearDown() override {
    ledger_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::vector<store::InvocationRecord> Rows(const std::string& fn) {
    EXPECT_TRUE(ledger_->Flush().ok());
    auto rows = ledger_->List(fn, 100);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<store::InvocationRecord>{};
  }

  std::string dir_;
  std::unique_ptr<store::Ledger> ledger_;
  Prices prices_{.per_cpu_ms_micros = 2, .per_request_micros = 20};
};

TEST_F(RecorderTest, InvocationRowCarriesWhatTheSchedulerFilledIn) {
  Recorder rec(ledger_.get(), nullptr, prices_);
  InvocationFacts f;
  f.function = {.name = "resize", .version = 3, .memory_mb = 256};
  f.invocation_id = "inv-1";
  f.trigger = "http";
  f.outcome = "function_error";
  f.ok = false;
  f.cold_start = true;
  f.cpu = microseconds(1'500);
  f.peak_memory_bytes = 4096;
  f.exec = milliseconds(2);
  f.arrived = Clock::now();
  f.start_unix_ms = 1234;
  rec.Invocation(f);
  auto rows = Rows("resize");
  ASSERT_EQ(rows.size(), 1u);
  const store::InvocationRecord& r = rows[0];
  EXPECT_EQ(r.invocation_id, "inv-1");
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(r.kind, "invocation");
  EXPECT_EQ(r.cpu_ns, 1'500'000u);
  EXPECT_EQ(r.billed_ms, 2u);                // rounded up
  EXPECT_EQ(r.cost_micros, 2 * 2 * 2 + 20);  // 2 ms x 2 x tier 2, + the request
  EXPECT_EQ(r.outcome, "function_error");
  EXPECT_EQ(r.error_code, "function_error");  // not ok: the outcome is the error code
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(r.peak_memory_bytes, 4096u);
}

TEST_F(RecorderTest, BackgroundIsSummedPerFunctionBeforeItIsRounded) {
  {
    Recorder rec(ledger_.get(), nullptr, prices_);
    const BilledFunction fn{.name = "resize", .version = 1, .memory_mb = 128};
    for (int i = 0; i < 3; ++i) {
      rec.Background(fn, microseconds(400));  // 1.2 ms in all: one row of 1 ms billed
    }
    auto rows = Rows("resize");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].kind, "background");
    EXPECT_EQ(rows[0].billed_ms, 1u);
    EXPECT_EQ(rows[0].cpu_ns, 1'200'000u);
    rec.Background(fn, microseconds(0));  // nothing: no row
  }
  // The recorder's end flushes the carried 0.2 ms, rounded up to a millisecond.
  auto rows = Rows("resize");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].billed_ms + rows[1].billed_ms, 2u);
}

TEST_F(RecorderTest, InitIsBilledAndPlatformIsNot) {
  Recorder rec(ledger_.get(), nullptr, prices_);
  const BilledFunction fn{.name = "resize", .version = 1, .memory_mb = 128};
  rec.Started(fn, /*platform=*/milliseconds(8), /*init=*/microseconds(300));
  rec.Started(fn, /*platform=*/microseconds(200), /*init=*/microseconds(0));  // a fork
  auto rows = Rows("resize");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].kind, "init");
  EXPECT_EQ(rows[0].invocation_id.rfind("init-", 0), 0u);
  EXPECT_EQ(rows[0].billed_ms, 1u);
  EXPECT_EQ(rows[0].cost_micros, 2);  // no request price
}

}  // namespace
}  // namespace faas::metering
