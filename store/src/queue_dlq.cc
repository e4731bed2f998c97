// Dead letters (DeadLetter, ListDead), their redrive (ReplayDead) and the per-queue counts
// (Stats, ListQueues). A dead letter keeps its row in `messages`: see the schema in queue.cc.
#include <mutex>

#include "faas/base/time.h"
#include "faas/store/queue.h"

#include "queue_internal.h"
#include "sqlite.h"

namespace faas::store {
namespace {

using queue_internal::CheckQueueName;
using queue_internal::LeaseLost;
using queue_internal::NotNull;
using queue_internal::ReadMessage;
using queue_internal::ToU64;
using sql::Blob;
using sql::Stmt;

// Counts of one queue; the caller holds the connection.
faas::Result<QueueStats> StatsOf(sqlite3* db, std::string_view queue, int64_t now) {
  QueueStats stats;
  stats.queue = std::string(queue);
  {
    // A leased message has visible_at_ms = leased_until_ms, so the three live states partition:
    // visible now -> ready; hidden by an open lease -> in flight; hidden otherwise -> delayed.
    FAAS_ASSIGN_OR_RETURN(
        Stmt st,
        Stmt::Prepare(db,
                      "SELECT COALESCE(SUM(dead = 0 AND visible_at_ms <= ?2), 0),"
                      " COALESCE(SUM(dead = 0 AND visible_at_ms > ?2 AND leased_until_ms <= ?2),"
                      " 0), COALESCE(SUM(dead = 0 AND visible_at_ms > ?2 AND"
                      " leased_until_ms > ?2), 0), COALESCE(SUM(dead = 1), 0),"
                      " MIN(CASE WHEN dead = 0 AND visible_at_ms <= ?2 THEN enqueued_ms END)"
                      " FROM messages WHERE queue = ?1",
                      {NotNull(queue), now}));
    FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) {
      stats.ready = ToU64(st.Int(0));
      stats.delayed = ToU64(st.Int(1));
      stats.in_flight = ToU64(st.Int(2));
      stats.dead = ToU64(st.Int(3));
      stats.oldest_ready_unix_ms = st.IsNull(4) ? 0 : st.Int(4);
    }
  }
  FAAS_ASSIGN_OR_RETURN(
      Stmt st, Stmt::Prepare(db, "SELECT published, acked FROM queue_counters WHERE queue = ?1",
                             {NotNull(queue)}));
  FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (row) {
    stats.published = ToU64(st.Int(0));
    stats.acked = ToU64(st.Int(1));
  }
  return stats;
}

}  // namespace

Status SqliteQueue::DeadLetter(int64_t id, uint32_t attempt, std::string_view dlq,
                               std::string_view error) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
  auto op = [&](sqlite3* db) -> Status {
    int64_t now = UnixMillisNow();
    // SET expressions see the row as it was, so origin_queue gets the old queue.
    FAAS_ASSIGN_OR_RETURN(
        Stmt st,
        Stmt::Prepare(db,
                      "UPDATE messages SET dead = 1, origin_queue = queue, queue = ?3,"
                      " dead_error = ?4, dead_ms = ?5, visible_at_ms = ?5, leased_until_ms = 0"
                      " WHERE id = ?1 AND attempt = ?2 AND dead = 0 AND leased_until_ms > 0",
                      {id, int64_t{attempt}, NotNull(dlq), Blob{error}, now}));
    FAAS_RETURN_IF_ERROR(st.Run());
    if (sqlite3_changes(db) == 0) {
      return LeaseLost(id, attempt);
    }
    FAAS_ASSIGN_OR_RETURN(Stmt count, Stmt::Prepare(db,
                                                    "INSERT OR IGNORE INTO queue_counters(queue,"
                                                    " published, acked) VALUES (?1, 0, 0)",
                                                    {NotNull(dlq)}));
    return count.Run();
  };
  return impl_->Write(op);
}

Result<QueueStats> SqliteQueue::Stats(std::string_view queue) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  std::lock_guard lock(impl_->db_mu);
  return StatsOf(impl_->db, queue, UnixMillisNow());
}

Result<std::vector<QueueStats>> SqliteQueue::ListQueues() {
  std::lock_guard lock(impl_->db_mu);
  int64_t now = UnixMillisNow();
  std::vector<std::string> names;
  {
    FAAS_ASSIGN_OR_RETURN(
        Stmt st, Stmt::Prepare(impl_->db, "SELECT queue FROM queue_counters ORDER BY queue"));
    for (;;) {
      FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) {
        break;
      }
      names.push_back(st.Text(0));
    }
  }
  std::vector<QueueStats> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    FAAS_ASSIGN_OR_RETURN(QueueStats stats, StatsOf(impl_->db, name, now));
    out.push_back(std::move(stats));
  }
  return out;
}

Result<std::vector<store::DeadLetter>> SqliteQueue::ListDead(std::string_view dlq, uint32_t limit) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
  std::lock_guard lock(impl_->db_mu);
  // Dead letters have visible_at_ms = dead_ms: this is dead-letter order, on an index.
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(impl_->db,
                    "SELECT id, origin_queue, body, headers, attempt, enqueued_ms, last_error,"
                    " dead_error, dead_ms FROM messages WHERE queue = ?1 AND dead = 1"
                    " ORDER BY visible_at_ms, id LIMIT ?2",
                    {NotNull(dlq), int64_t{limit}}));
  std::vector<store::DeadLetter> out;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) {
      return out;
    }
    store::DeadLetter d;
    d.message = ReadMessage(st);
    d.origin_queue = d.message.queue;
    d.error = st.Bytes(7);
    d.dead_unix_ms = st.Int(8);
    out.push_back(std::move(d));
  }
}

Result<uint64_t> SqliteQueue::ReplayDead(std::string_view dlq) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
  uint64_t moved = 0;
  auto op = [&](sqlite3* db) -> Status {
    int64_t now = UnixMillisNow();
    FAAS_ASSIGN_OR_RETURN(
        Stmt counters, Stmt::Prepare(db,
                                     "INSERT OR IGNORE INTO queue_counters(queue, published, acked)"
                                     " SELECT DISTINCT origin_queue, 0, 0 FROM messages"
                                     " WHERE queue = ?1 AND dead = 1 AND origin_queue != ''",
                                     {NotNull(dlq)}));
    FAAS_RETURN_IF_ERROR(counters.Run());
    FAAS_ASSIGN_OR_RETURN(
        Stmt st, Stmt::Prepare(db,
                               "UPDATE messages SET queue = origin_queue, dead = 0, attempt = 0,"
                               " visible_at_ms = ?2, leased_until_ms = 0, last_error = dead_error,"
                               " dead_error = X'', dead_ms = 0, origin_queue = ''"
                               " WHERE queue = ?1 AND dead = 1 AND origin_queue != ''",
                               {NotNull(dlq), now}));
    FAAS_RETURN_IF_ERROR(st.Run());
    moved = ToU64(sqlite3_changes64(db));
    return OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  if (moved > 0) {
    impl_->NotifyReady();
  }
  return moved;
}

}  // namespace faas::store
