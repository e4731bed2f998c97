// What shipping the ledger to the central one costs (docs/design/0020-central-ledger.md), against
// a PostgreSQL 15 this binary starts in a temp dir (unix socket, fsync on, as Debian ships it):
//   * BM_CentralShip/N: PgLedger::Ship of N new rows: one transaction, one INSERT … unnest().
//   * BM_CentralReship/N: the same N rows again: nothing inserted, every row read back and
//     compared (a node restarted from an old data dir).
//   * BM_LocalUnshippedAndMark/N: the node's side of a round: read N unshipped rows from
//     ledger.db and mark them shipped in one SQLite transaction.
// items_per_second is rows per second.
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "faas/store/central_ledger.h"
#include "faas/store/ledger.h"

#include "postgres_process.h"
#include "subprocess.h"

namespace {

using faas::store::InvocationRecord;

faas::testing::PostgresProcess* Server() {
  static std::unique_ptr<faas::testing::PostgresProcess> pg = [] {
    auto p = std::make_unique<faas::testing::PostgresProcess>();
    std::string error;
    if (!faas::testing::PostgresProcess::Unavailable().empty() || !p->Start(&error) ||
        !p->CreateDatabase("bench", &error)) {
      p.reset();
    }
    return p;
  }();
  return pg.get();
}

std::vector<InvocationRecord> Rows(std::size_t n, uint64_t* next_id) {
  std::vector<InvocationRecord> rows(n);
  for (InvocationRecord& r : rows) {
    r.invocation_id = "01bench" + std::to_string((*next_id)++);
    r.function = "hello";
    r.version = 1;
    r.trigger = "http";
    r.start_unix_ms = 1796551200000;
    r.cpu_ns = 12'000;
    r.wall_ns = 40'000;
    r.billed_ms = 1;
    r.cost_micros = 22;
    r.outcome = "ok";
  }
  return rows;
}

void BM_CentralShip(benchmark::State& state) {
  if (Server() == nullptr) {
    state.SkipWithError("PostgreSQL 15 cannot run here");
    return;
  }
  auto central = std::move(faas::store::PgLedger::Open(Server()->Url("bench"), "bench").value());
  static uint64_t next_id = 0;
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<InvocationRecord> rows = Rows(n, &next_id);
    state.ResumeTiming();
    auto r = central->Ship(rows, {});
    if (!r.ok() || r->inserted != n) {
      state.SkipWithError("ship failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CentralShip)->Arg(1)->Arg(100)->Arg(500)->UseRealTime();

void BM_CentralReship(benchmark::State& state) {
  if (Server() == nullptr) {
    state.SkipWithError("PostgreSQL 15 cannot run here");
    return;
  }
  auto central = std::move(faas::store::PgLedger::Open(Server()->Url("bench"), "bench").value());
  static uint64_t next_id = 1'000'000'000;
  std::vector<InvocationRecord> rows = Rows(static_cast<std::size_t>(state.range(0)), &next_id);
  if (!central->Ship(rows, {}).ok()) {
    state.SkipWithError("first ship failed");
    return;
  }
  for (auto _ : state) {
    auto r = central->Ship(rows, {});
    if (!r.ok() || r->duplicates != rows.size()) {
      state.SkipWithError("re-ship failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CentralReship)->Arg(500)->UseRealTime();

void BM_LocalUnshippedAndMark(benchmark::State& state) {
  faas::testing::TempDir dir;
  auto local = std::move(faas::store::Ledger::Open(dir.path()).value());
  uint64_t next_id = 0;
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    for (const InvocationRecord& r : Rows(n, &next_id)) {
      (void)local->Append(r);
    }
    (void)local->Flush();
    state.ResumeTiming();
    auto rows = local->Unshipped(n);
    std::vector<std::string> ids;
    for (const InvocationRecord& r : *rows) {
      ids.push_back(r.invocation_id);
    }
    if (ids.size() != n || !local->MarkShipped(ids, 0).ok()) {
      state.SkipWithError("mark failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_LocalUnshippedAndMark)->Arg(500)->UseRealTime();

}  // namespace
