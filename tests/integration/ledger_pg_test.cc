// The central ledger (issue #16 item 7, docs/design/0020-central-ledger.md) against a real
// PostgreSQL 15 each test process starts: the LedgerReader suite on both backends (the local
// SQLite ledger, and the central one fed by a LedgerShipper), then shipping itself: exact rows,
// PostgreSQL stopped and restarted mid-run, re-ships and conflicting duplicates.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "faas/base/log.h"
#include "faas/store/central_ledger.h"
#include "faas/store/ledger.h"

#include "integration/registry/backend_fixture.h"
#include "postgres_process.h"
#include "subprocess.h"

namespace faas::store {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// 2026-12-06T10:00:00Z, and a day in ms.
constexpr int64_t kT0 = 1796551200000;
constexpr int64_t kDayMs = 86'400'000;

InvocationRecord Row(const std::string& id, const std::string& fn, int64_t start_ms,
                     uint64_t cpu_ns, const std::string& outcome = "ok") {
  InvocationRecord r;
  r.invocation_id = id;
  r.function = fn;
  r.version = 3;
  r.trigger = "http";
  r.start_unix_ms = start_ms;
  r.wall_ns = cpu_ns + 1000;
  r.cpu_ns = cpu_ns;
  r.billed_ms = (cpu_ns + 999'999) / 1'000'000;
  r.cost_micros = static_cast<int64_t>(r.billed_ms) * 2 + 20;
  r.peak_memory_bytes = 4u << 20;
  r.cold_start = id.ends_with("0");
  r.outcome = outcome;
  r.error_code = outcome == "ok" ? "" : outcome;
  r.queue_ns = 1, r.spawn_ns = 2, r.load_ns = 3, r.init_ns = 4, r.exec_ns = 5;
  r.tenant = fn == "a" ? "acme" : "";
  r.queue = "jobs \"q\"";  // a quote and a space: the array literal must escape them
  r.message_id = id + "-m";
  return r;
}

BillQuery Query(const std::string& fn, int64_t since, int64_t until, const std::string& by) {
  BillQuery q;
  q.function = fn;
  q.since_unix_ms = since;
  q.until_unix_ms = until;
  q.by = by;
  return q;
}

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a poll step, not a sync
  }
  return done();
}

constexpr ShipperOptions kFast = {.interval = std::chrono::milliseconds(20),
                                  .max_batch = 500,
                                  .min_backoff = std::chrono::milliseconds(20),
                                  .max_backoff = std::chrono::milliseconds(200),
                                  .stop_flush = std::chrono::milliseconds(2000)};

// A local ledger in a temp dir and, for PostgreSQL, a fresh database, its PgLedger and a shipper.
class LedgerFixture {
 public:
  bool StartPostgres(std::string* why) {
    pg_ = testing::SharedPostgres(why);
    if (pg_ == nullptr) {
      return false;
    }
    static int counter = 0;
    db_ = "l" + std::to_string(++counter);
    std::string error;
    if (!pg_->CreateDatabase(db_, &error)) {
      *why = error;
      return false;
    }
    auto central = PgLedger::Open(pg_->Url(db_), "node-a");
    if (!central.ok()) {
      *why = central.status().ToString();
      return false;
    }
    central_ = std::move(*central);
    return true;
  }
  void OpenLocal(const std::string& dir,
                 std::chrono::milliseconds flush_interval = std::chrono::milliseconds(5)) {
    LedgerOptions options;
    options.flush_interval = flush_interval;
    auto l = Ledger::Open(dir, options);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    local_ = std::move(*l);
  }
  void StartShipper() {
    shipper_ = std::make_unique<LedgerShipper>(local_.get(), central_.get(), kFast);
    central_->SetSyncHook([s = shipper_.get()] { return s->Flush(); });
  }
  std::string Sql(const std::string& sql) {
    std::string out, error;
    EXPECT_TRUE(pg_->Sql(db_, sql, &out, &error)) << error;
    return out;
  }

  faas::testing::TempDir dir_;
  faas::testing::PostgresProcess* pg_ = nullptr;
  std::string db_;
  std::unique_ptr<Ledger> local_;
  std::unique_ptr<PgLedger> central_;
  std::unique_ptr<LedgerShipper> shipper_;
};

// ---- The same reads on both backends ----

class LedgerReaderTest : public ::testing::TestWithParam<std::string>, public LedgerFixture {
 protected:
  void SetUp() override {
    OpenLocal(dir_.path());
    if (GetParam() == "postgres") {
      std::string why;
      if (!StartPostgres(&why)) {
        if (!faas::testing::PostgresProcess::Unavailable().empty()) {
          GTEST_SKIP() << why;
        }
        FAIL() << why;
      }
      StartShipper();
      reader_ = central_.get();
    } else {
      reader_ = local_.get();
    }
    // a: 3 rows over two days (one error, one background); b: 2 rows.
    for (const InvocationRecord& r :
         {Row("01a0", "a", kT0, 1'500'000), Row("01a1", "a", kT0 + 3'600'000, 200'000, "crashed"),
          Row("01a2", "a", kT0 + kDayMs, 3'000'000), Row("01b0", "b", kT0 + 10, 900'000),
          Row("01b1", "b", kT0 + 20, 100)}) {
      ASSERT_TRUE(local_->Append(r).ok());
    }
    InvocationRecord bg = Row("01a3", "a", kT0 + kDayMs + 5, 2'000'000);
    bg.kind = "background";
    bg.trigger = "background";
    ASSERT_TRUE(local_->Append(bg).ok());
    local_->AppendLog({.seq = 0,
                       .invocation_id = "01a0",
                       .function = "a",
                       .start_unix_ms = kT0,
                       .text = std::string("hello\0\xff world", 13)});
    local_->AppendLog({0, "01a1", "a", kT0 + 3'600'000, "second"});
    local_->AppendLog({0, "01b0", "b", kT0 + 10, "other function"});
    ASSERT_TRUE(reader_->Sync().ok());
  }

  LedgerReader* reader_ = nullptr;
};

TEST_P(LedgerReaderTest, BillTotalsAndGroups) {
  auto total = reader_->Bill({});
  ASSERT_TRUE(total.ok()) << total.status().ToString();
  ASSERT_EQ(total->size(), 1u);
  const BillRow& t = total->back();
  EXPECT_EQ(t.key, "");
  EXPECT_EQ(t.invocations, 5u);  // the background row is not an invocation
  EXPECT_EQ(t.cpu_ns, 1'500'000u + 200'000 + 3'000'000 + 900'000 + 100 + 2'000'000);
  EXPECT_EQ(t.billed_ms, 2u + 1 + 3 + 1 + 1 + 2);
  EXPECT_EQ(t.cost_micros, (2 + 1 + 3 + 1 + 1 + 2) * 2 + 6 * 20);
  EXPECT_EQ(t.cold_starts, 2u);  // ids ending in 0
  EXPECT_EQ(t.errors, 1u);

  auto by_fn = reader_->Bill(Query("", 0, 0, "function"));
  ASSERT_TRUE(by_fn.ok());
  ASSERT_EQ(by_fn->size(), 3u);
  EXPECT_EQ((*by_fn)[0].key, "a");
  EXPECT_EQ((*by_fn)[0].invocations, 3u);
  EXPECT_EQ((*by_fn)[1].key, "b");
  EXPECT_EQ((*by_fn)[1].billed_ms, 2u);

  auto by_day = reader_->Bill(Query("a", 0, 0, "day"));
  ASSERT_TRUE(by_day.ok());
  ASSERT_EQ(by_day->size(), 3u);
  EXPECT_EQ((*by_day)[0].key, "2026-12-06");
  EXPECT_EQ((*by_day)[0].invocations, 2u);
  EXPECT_EQ((*by_day)[1].key, "2026-12-07");
  EXPECT_EQ((*by_day)[1].cpu_ns, 5'000'000u);

  auto by_hour = reader_->Bill(Query("", 0, 0, "hour"));
  ASSERT_TRUE(by_hour.ok());
  ASSERT_EQ(by_hour->size(), 4u);
  EXPECT_EQ((*by_hour)[0].key, "2026-12-06T10");
  EXPECT_EQ((*by_hour)[0].invocations, 3u);
  EXPECT_EQ((*by_hour)[1].key, "2026-12-06T11");

  auto by_tenant = reader_->Bill(Query("", 0, 0, "tenant"));
  ASSERT_TRUE(by_tenant.ok());
  ASSERT_EQ(by_tenant->size(), 3u);
  EXPECT_EQ((*by_tenant)[0].key, "");
  EXPECT_EQ((*by_tenant)[1].key, "acme");

  auto window = reader_->Bill(Query("", kT0 + 15, kT0 + kDayMs, ""));
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->back().invocations, 2u);  // 01b1 and 01a1

  auto bad = reader_->Bill(Query("", 0, 0, "week"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST_P(LedgerReaderTest, ListIsNewestFirstWithEveryField) {
  auto list = reader_->List("a", 10);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].invocation_id, "01a3");
  EXPECT_EQ((*list)[3].invocation_id, "01a0");
  const InvocationRecord want = Row("01a0", "a", kT0, 1'500'000);
  const InvocationRecord& got = (*list)[3];
  EXPECT_EQ(got.function, want.function);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.trigger, want.trigger);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.start_unix_ms, want.start_unix_ms);
  EXPECT_EQ(got.wall_ns, want.wall_ns);
  EXPECT_EQ(got.cpu_ns, want.cpu_ns);
  EXPECT_EQ(got.billed_ms, want.billed_ms);
  EXPECT_EQ(got.cost_micros, want.cost_micros);
  EXPECT_EQ(got.peak_memory_bytes, want.peak_memory_bytes);
  EXPECT_EQ(got.cold_start, want.cold_start);
  EXPECT_EQ(got.outcome, want.outcome);
  EXPECT_EQ(got.error_code, want.error_code);
  EXPECT_EQ(got.exec_ns, want.exec_ns);
  EXPECT_EQ(got.init_ns, want.init_ns);
  EXPECT_EQ(got.tenant, "acme");
  EXPECT_EQ(got.queue, "jobs \"q\"");
  EXPECT_EQ(got.message_id, "01a0-m");

  auto last2 = reader_->List("a", 2);
  ASSERT_TRUE(last2.ok());
  ASSERT_EQ(last2->size(), 2u);
  EXPECT_EQ((*last2)[1].invocation_id, "01a2");
  auto crashed = reader_->List("a", 10, "crashed");
  ASSERT_TRUE(crashed.ok());
  ASSERT_EQ(crashed->size(), 1u);
  EXPECT_EQ((*crashed)[0].invocation_id, "01a1");
  auto none = reader_->List("nope", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(LedgerReaderTest, LogsByFunctionInvocationAndSeq) {
  auto logs = reader_->Logs("a", "", 10, 0);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].invocation_id, "01a0");                       // oldest first
  EXPECT_EQ((*logs)[0].text, std::string("hello\0\xff world", 13));  // bytes exactly
  EXPECT_EQ((*logs)[1].text, "second");
  auto one = reader_->Logs("a", "01a1", 10, 0);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].start_unix_ms, kT0 + 3'600'000);
  auto after = reader_->Logs("a", "", 10, (*logs)[0].seq);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].invocation_id, "01a1");
  auto newest = reader_->Logs("a", "", 1, 0);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].invocation_id, "01a1");
}

INSTANTIATE_TEST_SUITE_P(Backends, LedgerReaderTest, ::testing::Values("sqlite", "postgres"),
                         ::faas::store::testing::BackendName);

// ---- Shipping ----

class LedgerShipTest : public ::testing::Test, public LedgerFixture {
 protected:
  void SetUp() override {
    std::string why;
    if (!StartPostgres(&why)) {
      if (!faas::testing::PostgresProcess::Unavailable().empty()) {
        GTEST_SKIP() << why;
      }
      FAIL() << why;
    }
    OpenLocal(dir_.path());
  }
  void TearDown() override {
    if (pg_ != nullptr && !pg_->Running()) {  // a test that stopped it leaves it running
      std::string error;
      EXPECT_TRUE(pg_->Start(&error)) << error;
    }
  }
  uint64_t CentralCount() { return std::stoull(Sql("SELECT count(*) FROM ledger_invocations")); }
};

TEST_F(LedgerShipTest, ShipsEveryRowExactlyAndMarksThemShipped) {
  StartShipper();
  constexpr int kRows = 1234;  // three batches
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(local_
                    ->Append(Row("01x" + std::to_string(10000 + i), "f", kT0 + i,
                                 1000u + static_cast<uint64_t>(i)))
                    .ok());
  }
  ASSERT_TRUE(shipper_->Flush().ok());
  EXPECT_EQ(CentralCount(), static_cast<uint64_t>(kRows));
  EXPECT_EQ(Sql("SELECT sum(cpu_ns), count(DISTINCT node), min(node) FROM ledger_invocations"),
            std::to_string(kRows * 1000 + kRows * (kRows - 1) / 2) + "|1|node-a\n");
  auto unshipped = local_->UnshippedCount();
  ASSERT_TRUE(unshipped.ok());
  EXPECT_EQ(*unshipped, 0u);
  EXPECT_TRUE(Eventually([&] { return shipper_->UnshippedRows() == 0; }));
  EXPECT_EQ(shipper_->Totals().inserted, static_cast<uint64_t>(kRows));
  // The central rows read back equal the local ones, field by field.
  auto local = local_->List("f", 1000);
  auto central = central_->List("f", 1000);
  ASSERT_TRUE(local.ok() && central.ok());
  ASSERT_EQ(local->size(), central->size());
  for (std::size_t i = 0; i < local->size(); ++i) {
    const InvocationRecord& l = (*local)[i];
    const InvocationRecord& c = (*central)[i];
    ASSERT_EQ(l.invocation_id, c.invocation_id);
    EXPECT_EQ(std::tie(l.function, l.version, l.trigger, l.kind, l.start_unix_ms, l.wall_ns,
                       l.cpu_ns, l.billed_ms, l.cost_micros, l.peak_memory_bytes, l.cold_start,
                       l.outcome, l.error_code, l.queue_ns, l.spawn_ns, l.load_ns, l.init_ns,
                       l.exec_ns, l.tenant, l.queue, l.message_id),
              std::tie(c.function, c.version, c.trigger, c.kind, c.start_unix_ms, c.wall_ns,
                       c.cpu_ns, c.billed_ms, c.cost_micros, c.peak_memory_bytes, c.cold_start,
                       c.outcome, c.error_code, c.queue_ns, c.spawn_ns, c.load_ns, c.init_ns,
                       c.exec_ns, c.tenant, c.queue, c.message_id))
        << l.invocation_id;
  }
}

TEST_F(LedgerShipTest, PostgresStoppedMidRunLosesAndDuplicatesNothing) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  log::Get("ledger")->sinks().push_back(sink);
  StartShipper();
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {  // keeps recording throughout, as a node does
    while (!stop.load()) {
      int i = appended.load();
      ASSERT_TRUE(local_->Append(Row("01y" + std::to_string(100000 + i), "f", kT0 + i, 1000)).ok());
      appended.store(i + 1);
      if (i % 50 == 49) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pacing the load, not a sync
      }
    }
  });
  ASSERT_TRUE(Eventually([&] { return shipper_->Totals().inserted >= 200; }));
  pg_->Stop();
  const int at_stop = appended.load();
  // Rows keep arriving; none can ship, so the unshipped count grows and failures are logged.
  ASSERT_TRUE(Eventually([&] { return appended.load() > at_stop + 500; }));
  ASSERT_TRUE(Eventually([&] { return shipper_->UnshippedRows() >= 500; }))
      << shipper_->UnshippedRows();
  Status flush = shipper_->Flush(std::chrono::milliseconds(3000));
  EXPECT_EQ(flush.code(), StatusCode::kUnavailable) << flush.ToString();
  std::string error;
  ASSERT_TRUE(pg_->Start(&error)) << error;
  ASSERT_TRUE(
      Eventually([&] { return shipper_->Totals().inserted > static_cast<uint64_t>(at_stop); }));
  stop.store(true);
  writer.join();
  ASSERT_TRUE(shipper_->Flush(std::chrono::seconds(20)).ok());
  EXPECT_TRUE(Eventually([&] { return shipper_->UnshippedRows() == 0; }));
  const int total = appended.load();
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT invocation_id) FROM ledger_invocations"),
            std::to_string(total) + "|" + std::to_string(total) + "\n");
  EXPECT_EQ(shipper_->Totals().inserted, static_cast<uint64_t>(total));
  EXPECT_EQ(shipper_->Totals().conflicts, 0u);
  bool logged = false;
  for (const std::string& line : sink->last_formatted()) {
    logged = logged || (line.find("ledger.ship_failed") != std::string::npos &&
                        line.find("postgresql") != std::string::npos);
  }
  EXPECT_TRUE(logged) << "no ledger.ship_failed line with the error";
  shipper_.reset();  // no more logging while the sink is removed
  auto& sinks = log::Get("ledger")->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
}

TEST_F(LedgerShipTest, ARestartedNodeReshipsItsOldRowsAndAddsNothing) {
  std::vector<InvocationRecord> rows;
  for (int i = 0; i < 300; ++i) {
    rows.push_back(Row("01z" + std::to_string(1000 + i), "f", kT0 + i, 5000));
    ASSERT_TRUE(local_->Append(rows.back()).ok());
  }
  StartShipper();
  ASSERT_TRUE(shipper_->Flush().ok());
  ASSERT_EQ(CentralCount(), 300u);
  shipper_.reset();
  local_.reset();
  // The node comes back with an old copy of its ledger: the same rows, never marked shipped
  // (as after a crash between the central COMMIT and the local mark).
  faas::testing::TempDir old_copy;
  OpenLocal(old_copy.path());
  for (const InvocationRecord& r : rows) {
    ASSERT_TRUE(local_->Append(r).ok());
  }
  StartShipper();
  ASSERT_TRUE(shipper_->Flush().ok());
  EXPECT_EQ(CentralCount(), 300u);
  EXPECT_EQ(shipper_->Totals().inserted, 0u);
  EXPECT_EQ(shipper_->Totals().duplicates, 300u);
  EXPECT_EQ(shipper_->Totals().conflicts, 0u);
  EXPECT_EQ(*local_->UnshippedCount(), 0u);  // marked now
}

TEST_F(LedgerShipTest, AConflictingDuplicateIsLoggedAndNeverOverwrites) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  log::Get("ledger")->sinks().push_back(sink);
  StartShipper();
  ASSERT_TRUE(local_->Append(Row("01c0", "f", kT0, 7'000'000)).ok());
  ASSERT_TRUE(shipper_->Flush().ok());
  // Another node (or a bug) ships the same id with other figures.
  InvocationRecord forged = Row("01c0", "f", kT0, 1'000);
  forged.billed_ms = 1;
  auto r = central_->Ship({forged}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inserted, 0u);
  EXPECT_EQ(r->conflicts, 1u);
  EXPECT_EQ(Sql("SELECT cpu_ns, billed_ms FROM ledger_invocations WHERE invocation_id = '01c0'"),
            "7000000|7\n");
  bool logged = false;
  for (const std::string& line : sink->last_formatted()) {
    logged = logged ||
             (line.find("ledger.ship_conflict") != std::string::npos &&
              line.find("01c0") != std::string::npos && line.find("cpu_ns") != std::string::npos);
  }
  EXPECT_TRUE(logged);
  shipper_.reset();
  auto& sinks = log::Get("ledger")->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
}

TEST_F(LedgerShipTest, ARowPostgresRefusesIsSetAsideAndDoesNotBlockTheOthers) {
  StartShipper();
  InvocationRecord poison = Row("01p1", "f", kT0 + 1, 1000);
  poison.message_id = "\xff\xfe not UTF-8";  // text PostgreSQL refuses (SQLite keeps the bytes)
  ASSERT_TRUE(local_->Append(Row("01p0", "f", kT0, 1000)).ok());
  ASSERT_TRUE(local_->Append(poison).ok());
  ASSERT_TRUE(local_->Append(Row("01p2", "f", kT0 + 2, 1000)).ok());
  ASSERT_TRUE(shipper_->Flush().ok());
  EXPECT_EQ(Sql("SELECT string_agg(invocation_id, ',' ORDER BY invocation_id) FROM "
                "ledger_invocations"),
            "01p0,01p2\n");
  EXPECT_EQ(shipper_->Totals().refused, 1u);
  EXPECT_EQ(*local_->UnshippedCount(), 0u);
  auto kept = local_->List("f", 10);  // still in the local ledger
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 3u);
}

TEST_F(LedgerShipTest, StoppingShipsWhatIsLeftEvenInTheLocalWritersQueue) {
  local_.reset();
  // Rows stay in the writer's queue (up to 1 s: Ledger::Flush waits for the writer's round).
  OpenLocal(dir_.path(), std::chrono::seconds(1));
  StartShipper();
  ASSERT_TRUE(Eventually([&] { return shipper_->UnshippedRows() == 0; }));  // one idle round
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(local_->Append(Row("01e" + std::to_string(10 + i), "f", kT0 + i, 1000)).ok());
  }
  shipper_.reset();  // no Flush: the final attempt alone must cover them
  EXPECT_EQ(CentralCount(), 40u);
  EXPECT_EQ(*local_->UnshippedCount(), 0u);
}

TEST_F(LedgerShipTest, NothingIsMarkedShippedWhilePostgresIsDown) {
  pg_->Stop();
  StartShipper();  // starts with the server down: connects lazily
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(local_->Append(Row("01d" + std::to_string(10 + i), "f", kT0 + i, 1000)).ok());
  }
  EXPECT_EQ(shipper_->Flush(std::chrono::milliseconds(2000)).code(), StatusCode::kUnavailable);
  auto unshipped = local_->UnshippedCount();
  ASSERT_TRUE(unshipped.ok());
  EXPECT_EQ(*unshipped, 20u);
  shipper_.reset();  // the final attempt fails too; the rows stay
  EXPECT_EQ(*local_->UnshippedCount(), 20u);
  std::string error;
  ASSERT_TRUE(pg_->Start(&error)) << error;
  StartShipper();
  ASSERT_TRUE(shipper_->Flush().ok());
  EXPECT_EQ(CentralCount(), 20u);
}

}  // namespace
}  // namespace faas::store
