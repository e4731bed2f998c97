// LedgerShipper (faas/store/central_ledger.h): one thread moving a node's durable ledger rows to
// the central ledger. docs/design/0020-central-ledger.md explains the design.
#include <algorithm>

#include "faas/base/log.h"
#include "faas/store/central_ledger.h"

namespace faas::store {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto log = log::Get("ledger");
  return log;
}

}  // namespace

LedgerShipper::LedgerShipper(Ledger* local, PgLedger* central, ShipperOptions options)
    : local_(local), central_(central), options_(options), thread_([this] { Loop(); }) {}

LedgerShipper::~LedgerShipper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Status LedgerShipper::Flush(std::chrono::milliseconds timeout) {
  // Rows still in the local writer's queue first: only rows in SQLite are shipped.
  FAAS_RETURN_IF_ERROR(local_->Flush());
  std::unique_lock lock(mu_);
  const uint64_t request = ++flush_requests_;
  const uint64_t failures_before = failures_;
  wake_.notify_all();
  const bool done = progress_.wait_for(lock, timeout, [&] {
    return flushed_through_ >= request || failures_ > failures_before || stopping_;
  });
  if (done && flushed_through_ >= request) {
    return OkStatus();
  }
  return UnavailableError("the central ledger has not caught up: " +
                          (last_error_.empty() ? std::string("timed out") : last_error_));
}

uint64_t LedgerShipper::UnshippedRows() const {
  std::lock_guard lock(mu_);
  return unshipped_;
}

ShipResult LedgerShipper::Totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

Status LedgerShipper::Round(std::size_t* shipped) {
  *shipped = 0;
  FAAS_ASSIGN_OR_RETURN(std::vector<InvocationRecord> rows, local_->Unshipped(options_.max_batch));
  FAAS_ASSIGN_OR_RETURN(std::vector<LogEntry> logs, local_->UnshippedLogs(options_.max_batch));
  if (rows.empty() && logs.empty()) {
    return OkStatus();
  }
  Result<ShipResult> batch = central_->Ship(rows, logs);
  if (!batch.ok() && batch.status().code() == StatusCode::kInternal) {
    // PostgreSQL refused the batch's content (not the connection): one bad value must not block
    // every row behind it, so ship one by one and set aside what it refuses alone.
    FAAS_RETURN_IF_ERROR(ShipOneByOne(rows, logs));
    *shipped = std::max(rows.size(), logs.size());
    return OkStatus();
  }
  FAAS_ASSIGN_OR_RETURN(ShipResult r, std::move(batch));
  // Committed centrally: only now marked here. A crash in between ships them again, which adds
  // nothing (ON CONFLICT DO NOTHING).
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (InvocationRecord& row : rows) {
    ids.push_back(std::move(row.invocation_id));
  }
  FAAS_RETURN_IF_ERROR(local_->MarkShipped(ids, logs.empty() ? 0 : logs.back().seq));
  *shipped = std::max(rows.size(), logs.size());
  std::lock_guard lock(mu_);
  totals_.inserted += r.inserted;
  totals_.duplicates += r.duplicates;
  totals_.conflicts += r.conflicts;
  return OkStatus();
}

Status LedgerShipper::ShipOneByOne(const std::vector<InvocationRecord>& rows,
                                   const std::vector<LogEntry>& logs) {
  ShipResult sum;
  std::vector<std::string> ids, refused;
  for (const InvocationRecord& row : rows) {
    Result<ShipResult> r = central_->Ship({row}, {});
    if (r.ok()) {
      sum.inserted += r->inserted;
      sum.duplicates += r->duplicates;
      sum.conflicts += r->conflicts;
      ids.push_back(row.invocation_id);
    } else if (r.status().code() == StatusCode::kInternal) {
      FAAS_LOG(Log(), err, "ledger.ship_refused", {"inv", row.invocation_id}, {"fn", row.function},
               {"error", r.status().message()},
               {"kept", "in the local ledger (shipped = 2); fix the value and set it to 0"});
      refused.push_back(row.invocation_id);
    } else {
      return r.status();  // the connection, not the row: retry the round later
    }
  }
  for (const LogEntry& l : logs) {  // best effort: a refused entry is skipped, and logged
    Result<ShipResult> r = central_->Ship({}, {l});
    if (!r.ok() && r.status().code() != StatusCode::kInternal) {
      return r.status();
    }
    if (!r.ok()) {
      FAAS_LOG(Log(), warn, "ledger.log_refused", {"inv", l.invocation_id},
               {"error", r.status().message()});
    }
  }
  FAAS_RETURN_IF_ERROR(local_->MarkShipped(ids, logs.empty() ? 0 : logs.back().seq));
  FAAS_RETURN_IF_ERROR(local_->SetAside(refused));
  std::lock_guard lock(mu_);
  totals_.inserted += sum.inserted;
  totals_.duplicates += sum.duplicates;
  totals_.conflicts += sum.conflicts;
  totals_.refused += refused.size();
  return OkStatus();
}

void LedgerShipper::Loop() {
  auto backoff = options_.min_backoff;
  std::chrono::steady_clock::time_point stop_deadline{};
  uint64_t failed_in_a_row = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    const uint64_t requests = flush_requests_;  // served by a round that finds nothing left
    const bool began_stopping = stopping_;      // only such a round may be the last
    const bool final_round = stopping_ && stop_deadline == std::chrono::steady_clock::time_point{};
    if (final_round) {
      stop_deadline = std::chrono::steady_clock::now() + options_.stop_flush;
    }
    lock.unlock();
    if (final_round) {
      // Rows recorded during shutdown (the scheduler's last background rows) are still in the
      // local writer's queue: into SQLite first, so the final attempt covers them.
      local_->Flush().IgnoreError();  // a failure leaves them in the journal, shipped next start
    }
    std::size_t shipped = 0;
    Status s = Round(&shipped);
    Result<uint64_t> unshipped = local_->UnshippedCount();
    lock.lock();
    if (unshipped.ok()) {
      unshipped_ = *unshipped;
    }
    if (s.ok()) {
      if (failed_in_a_row > 0) {
        FAAS_LOG(Log(), info, "ledger.ship_resumed", {"failed_rounds", failed_in_a_row});
      }
      failed_in_a_row = 0;
      backoff = options_.min_backoff;
      last_error_.clear();
      if (shipped == 0) {
        flushed_through_ = std::max(flushed_through_, requests);
        progress_.notify_all();
      }
    } else {
      ++failures_;
      ++failed_in_a_row;
      last_error_ = s.message();
      progress_.notify_all();
      FAAS_LOG(Log(), warn, "ledger.ship_failed", {"error", s.message()}, {"unshipped", unshipped_},
               {"retry_ms", static_cast<int64_t>(backoff.count())});
    }
    if (began_stopping) {
      // The final attempt: until everything is shipped, a failure, or the deadline.
      if (!s.ok() || shipped == 0 || std::chrono::steady_clock::now() >= stop_deadline) {
        if (unshipped_ > 0) {
          FAAS_LOG(Log(), warn, "ledger.ship_stopped", {"unshipped", unshipped_},
                   {"why", "they stay in the local ledger and ship after the next start"});
        }
        return;
      }
      continue;
    }
    if (stopping_) {
      continue;  // stopped during this round: the final attempt starts now
    }
    if (!s.ok()) {
      wake_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, options_.max_backoff);
    } else if (shipped < options_.max_batch) {  // a full batch: the next one at once
      wake_.wait_for(lock, options_.interval,
                     [&] { return stopping_ || flush_requests_ != requests; });
    }
  }
}

}  // namespace faas::store
