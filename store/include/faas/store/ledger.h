// The invocation ledger: one row per invocation id, durable before the client sees a response
// (docs/metering.md, docs/design/0002-ledger-durability.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto ledger, Ledger::Open(data_dir));
//   FAAS_RETURN_IF_ERROR(ledger->Append(record));   // then answer the client
//   auto rows = ledger->Bill({.function = "resize", .by = "day"});
//
// Append writes the record to an append-only journal with one write(2) (the page cache keeps it
// if faasd dies, even by SIGKILL) and queues it; a writer thread moves queued records into SQLite
// (WAL) in batches, then deletes the journal generation they came from. Open replays journals
// left by a crashed daemon; replay is idempotent (the invocation id is the primary key).
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "faas/base/status.h"

namespace faas::store {

struct InvocationRecord {
  std::string invocation_id;
  std::string function;
  uint32_t version = 0;
  std::string trigger;              // http | async | queue | background
  std::string kind = "invocation";  // invocation | background
  int64_t start_unix_ms = 0;
  uint64_t wall_ns = 0;
  uint64_t cpu_ns = 0;
  uint64_t billed_ms = 0;
  int64_t cost_micros = 0;
  uint64_t peak_memory_bytes = 0;
  bool cold_start = false;
  std::string outcome;     // scheduler outcome name ("ok", "function_timeout", ...)
  std::string error_code;  // empty when ok
  uint64_t queue_ns = 0, spawn_ns = 0, load_ns = 0, init_ns = 0, exec_ns = 0;
  std::string tenant;      // the API key's tenant; "" for public functions and the control API
  std::string queue;       // queue triggers: the stream or queue name; "" otherwise
  std::string message_id;  // queue triggers and async: the message's id; "" otherwise
};

struct BillQuery {
  std::string function;  // empty: all functions
  int64_t since_unix_ms = 0;
  int64_t until_unix_ms = 0;  // 0: no upper bound
  std::string by;             // "" | function | tenant | day | hour
};

struct BillRow {
  std::string key;           // per `by`; "" for the total
  uint64_t invocations = 0;  // kind=invocation rows only
  uint64_t cpu_ns = 0;       // all rows, background included
  uint64_t billed_ms = 0;
  int64_t cost_micros = 0;
  uint64_t cold_starts = 0;
  uint64_t errors = 0;  // invocations whose outcome is not ok
};

// Adds each of `row`'s sums to `total`'s (not the key): the last row of a bill, as both ledgers
// (SQLite and the central PostgreSQL one) build it.
void AddToTotal(const BillRow& row, BillRow* total);

struct LogEntry {
  uint64_t seq = 0;
  std::string invocation_id;
  std::string function;
  int64_t start_unix_ms = 0;
  std::string text;
};

// What the control API reads (Bill, ListInvocations, GetLogs): the local SQLite ledger
// (Ledger) or the central one in PostgreSQL (PgLedger, faas/store/central_ledger.h). Both answer
// the same queries with the same results (tests/integration/ledger_pg_test.cc runs one suite on
// both). Thread-safe.
class LedgerReader {
 public:
  virtual ~LedgerReader() = default;
  // Makes every row appended on this node before the call visible to the reads below (the
  // local writer's batch; for the central ledger also the shipper's). Errors: DeadlineExceeded,
  // Unavailable (PostgreSQL down).
  virtual Status Sync() = 0;
  // Totals per `by` key (sorted by key), and the grand total last with key "".
  virtual Result<std::vector<BillRow>> Bill(const BillQuery& query) = 0;
  // The newest `last` records of a function (newest first), optionally of one outcome.
  virtual Result<std::vector<InvocationRecord>> List(const std::string& function, uint32_t last,
                                                     const std::string& outcome = "") = 0;
  // Newest `last` entries (oldest first) with seq > after_seq, of a function or one invocation.
  virtual Result<std::vector<LogEntry>> Logs(const std::string& function,
                                             const std::string& invocation_id, uint32_t last,
                                             uint64_t after_seq) = 0;
};

struct LedgerOptions {
  std::size_t max_log_entries_per_function = 1000;
  std::chrono::milliseconds flush_interval{50};
  std::size_t max_batch = 2000;
};

class Ledger final : public LedgerReader {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const std::string& data_dir,
                                              LedgerOptions options = {});
  ~Ledger() override;  // flushes everything queued, stops the writer
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Durable against a crash of this process when it returns OK. Call before answering. The
  // rvalue form moves the record into the writer's queue once its journal line is written (on
  // failure it is left as it was).
  Status Append(const InvocationRecord& record) { return Append(InvocationRecord(record)); }
  Status Append(InvocationRecord&& record);
  // Returns once every record appended before the call is in SQLite.
  Status Flush();
  Status Sync() override { return Flush(); }
  Result<std::vector<BillRow>> Bill(const BillQuery& query) override;
  Result<std::vector<InvocationRecord>> List(const std::string& function, uint32_t last,
                                             const std::string& outcome = "") override;
  // Function output of one invocation: best effort (not journaled), kept for the newest
  // max_log_entries_per_function invocations of each function. Thread-safe.
  void AppendLog(LogEntry entry);
  Result<std::vector<LogEntry>> Logs(const std::string& function, const std::string& invocation_id,
                                     uint32_t last, uint64_t after_seq) override;
  // Rows in SQLite (after Flush, every appended record).
  Result<uint64_t> Count();

  // Shipping to the central ledger (LedgerShipper, docs/design/0020-central-ledger.md). Only
  // rows already in SQLite are shipped: they are durable here, and stay marked unshipped until
  // MarkShipped, which the shipper calls only after the central COMMIT.
  //
  // Up to `limit` unshipped rows, oldest first.
  Result<std::vector<InvocationRecord>> Unshipped(std::size_t limit);
  // Up to `limit` log entries not shipped yet (seq above the shipped mark), oldest first.
  Result<std::vector<LogEntry>> UnshippedLogs(std::size_t limit);
  // Marks rows `ids` shipped, and every log entry up to `logs_through_seq` (0: unchanged), in
  // one SQLite transaction.
  Status MarkShipped(const std::vector<std::string>& ids, uint64_t logs_through_seq);
  // Sets rows `ids` aside: PostgreSQL refused them (a value it cannot store). They stay here,
  // are no longer offered by Unshipped, and are not counted as unshipped.
  Status SetAside(const std::vector<std::string>& ids);
  // Rows appended and not yet shipped: in SQLite unmarked, plus those still in the writer's queue.
  Result<uint64_t> UnshippedCount();

 private:
  struct Impl;
  explicit Ledger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::store
