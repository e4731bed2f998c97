// The central ledger of a cluster: every node's invocation rows and function logs in PostgreSQL,
// shipped from each node's local ledger (docs/design/0020-central-ledger.md, docs/metering.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto central, PgLedger::Open("postgresql:///faas", "node-1"));
//   LedgerShipper shipper(local_ledger, central.get());   // ships until destroyed
//   auto bill = central->Bill({.by = "day"});             // the same reads as the local ledger
//
// A row is shipped only once it is durable in the local ledger (in its SQLite file), in batches
// (about every 200 ms or 500 rows) in one PostgreSQL transaction, and marked shipped locally only
// after the COMMIT. Inserts are idempotent (ON CONFLICT DO NOTHING on the invocation id), so a
// batch shipped again after a crash, or a node restarted with an old ledger, adds nothing; a
// duplicate id with different content is logged (ledger.ship_conflict) and never overwrites.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/ledger.h"

struct pg_conn;  // libpq's PGconn

namespace faas::store {

// What one Ship call did.
struct ShipResult {
  uint64_t inserted = 0;    // new rows
  uint64_t duplicates = 0;  // ids already there with the same content (a re-ship)
  uint64_t conflicts = 0;   // ids already there with other content: logged, not overwritten
  uint64_t refused = 0;     // LedgerShipper: rows PostgreSQL refused alone, set aside locally
};

// The PostgreSQL side: idempotent batch inserts and the LedgerReader queries. Connects lazily
// (and again after the server went away), running the schema migrations on first connect, so a
// node starts while PostgreSQL is down. Thread-safe: one connection behind a mutex.
class PgLedger final : public LedgerReader {
 public:
  // `url`: a libpq URI (InvalidArgument for another scheme). `node`: stored with each row this
  // process ships; "" means the host name.
  static Result<std::unique_ptr<PgLedger>> Open(const std::string& url, std::string node = "");
  ~PgLedger() override;
  PgLedger(const PgLedger&) = delete;
  PgLedger& operator=(const PgLedger&) = delete;

  // Inserts `rows` and `logs` in one transaction. Unavailable when PostgreSQL is down (nothing
  // was committed then; ship again later).
  Result<ShipResult> Ship(const std::vector<InvocationRecord>& rows,
                          const std::vector<LogEntry>& logs);

  // Runs the sync hook (LedgerShipper::Flush on a node that ships; OK without one).
  Status Sync() override;
  // Set once, before reads start (the daemon sets the shipper's Flush).
  void SetSyncHook(std::function<Status()> hook) { sync_hook_ = std::move(hook); }
  Result<std::vector<BillRow>> Bill(const BillQuery& query) override;
  // Newest first; equal start times newest id first (ids are time-ordered).
  Result<std::vector<InvocationRecord>> List(const std::string& function, uint32_t last,
                                             const std::string& outcome = "") override;
  // seq is the central ledger's own (one sequence for all nodes).
  Result<std::vector<LogEntry>> Logs(const std::string& function, const std::string& invocation_id,
                                     uint32_t last, uint64_t after_seq) override;

  // Log entries kept per function (the oldest beyond it are deleted as new ones arrive).
  static constexpr int64_t kMaxLogEntriesPerFunction = 1000;

 private:
  PgLedger(std::string url, std::string node);
  Status ConnectLocked();  // connects and migrates; Unavailable when the server is down

  const std::string url_;
  const std::string node_;
  std::function<Status()> sync_hook_;
  std::mutex mu_;
  pg_conn* conn_ = nullptr;  // guarded by mu_; owned
  bool migrated_ = false;    // guarded by mu_
};

struct ShipperOptions {
  std::chrono::milliseconds interval{200};  // a batch at least this often while rows wait
  std::size_t max_batch = 500;              // rows per transaction
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{5000};  // after failures, retries double up to this
  std::chrono::milliseconds stop_flush{2000};   // the destructor's final attempt gives up after
};

// One thread that moves rows from a local Ledger to a PgLedger. PostgreSQL down: rows stay
// unshipped locally and are retried with exponential backoff (ledger.ship_failed in the log);
// nothing is lost or duplicated. Thread-safe. Both ledgers must outlive it.
class LedgerShipper {
 public:
  LedgerShipper(Ledger* local, PgLedger* central, ShipperOptions options = {});
  // Makes a final attempt to ship what is left (bounded by stop_flush), then stops.
  ~LedgerShipper();
  LedgerShipper(const LedgerShipper&) = delete;
  LedgerShipper& operator=(const LedgerShipper&) = delete;

  // Returns once every row appended to the local ledger before the call is in PostgreSQL.
  // Unavailable (with the last error) when that did not happen within `timeout`.
  Status Flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // faas_ledger_unshipped_rows: local rows not yet committed centrally, as of the last round.
  uint64_t UnshippedRows() const;
  // Totals since start, for tests and logs.
  ShipResult Totals() const;

 private:
  void Loop();
  // After PostgreSQL refused a batch's content (Internal): each row in its own transaction;
  // those refused alone are set aside (Ledger::SetAside) and logged (ledger.ship_refused).
  Status ShipOneByOne(const std::vector<InvocationRecord>& rows, const std::vector<LogEntry>& logs);
  // Ships one batch; `*shipped`: its size (rows or log entries, the larger), 0 when none waited.
  Status Round(std::size_t* shipped);

  Ledger* const local_;
  PgLedger* const central_;
  const ShipperOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable progress_;
  bool stopping_ = false;
  uint64_t flush_requests_ = 0;   // Flush calls so far
  uint64_t flushed_through_ = 0;  // flush requests served by an empty round that began after them
  uint64_t failures_ = 0;         // failed rounds so far
  uint64_t unshipped_ = 0;
  std::string last_error_;
  ShipResult totals_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace faas::store
