// The queue's schema, its group commit (SqliteQueue::Impl) and the life of a message: publish,
// lease, wait, ack, retry. Dead letters and stats are in queue_dlq.cc, async records in
// queue_async.cc, settings in queue_settings.cc.
#include "faas/store/queue.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/base/log.h"
#include "faas/base/text.h"

#include "queue_internal.h"
#include "sqlite.h"

namespace faas::store {

using sql::Blob;
using sql::Stmt;

namespace {

using Json = nlohmann::json;
using queue_internal::AckLeased;
using queue_internal::CheckQueueName;
using queue_internal::HeadersToJson;
using queue_internal::InsertMessage;
using queue_internal::kMaxVisibilityMs;
using queue_internal::LeaseLost;
using queue_internal::LeaseVisibilityMs;
using queue_internal::Log;
using queue_internal::NotNull;
using queue_internal::ReadMessage;

// One row per message, live or dead. Lease state lives in three columns:
//   visible_at_ms    the message can be leased when this is <= now. A lease sets it to the
//                    lease deadline, so an expired lease makes the message ready by itself.
//   attempt          the number of the current (or last) lease, 0 before the first;
//                    (id, attempt) names a lease.
//   leased_until_ms  > 0 while a lease is open (it may have expired); Retry, DeadLetter and
//                    ReplayDead close it, Ack deletes the row.
// Dead letters keep their row: queue = the DLQ, dead = 1, origin_queue = where they came
// from, and visible_at_ms = dead_ms so the DLQ lists in index order.
// Error texts and bodies are BLOBs: they may hold any bytes.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  queue           TEXT NOT NULL,
  body            BLOB NOT NULL,
  headers         TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  visible_at_ms   INTEGER NOT NULL,
  leased_until_ms INTEGER NOT NULL,
  enqueued_ms     INTEGER NOT NULL,
  last_error      BLOB NOT NULL,
  dead            INTEGER NOT NULL,
  dead_error      BLOB NOT NULL,
  dead_ms         INTEGER NOT NULL,
  origin_queue    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages(queue, dead, id, visible_at_ms);
CREATE INDEX IF NOT EXISTS messages_by_visible ON messages(queue, dead, visible_at_ms);
CREATE TABLE IF NOT EXISTS queue_counters (
  queue     TEXT PRIMARY KEY NOT NULL,
  published INTEGER NOT NULL,
  acked     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS async (
  invocation_id   TEXT PRIMARY KEY NOT NULL,
  function        TEXT NOT NULL,
  tenant          TEXT NOT NULL,
  status          TEXT NOT NULL,
  http_status     INTEGER NOT NULL,
  headers         TEXT NOT NULL,
  body            BLOB NOT NULL,
  body_truncated  INTEGER NOT NULL,
  error_code      TEXT NOT NULL,
  error_message   BLOB NOT NULL,
  attempts        INTEGER NOT NULL,
  callback_url    TEXT NOT NULL,
  callback_status TEXT NOT NULL,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS async_by_updated ON async(updated_ms);
CREATE TABLE IF NOT EXISTS idempotency (
  key           BLOB PRIMARY KEY NOT NULL,
  invocation_id TEXT NOT NULL,
  expires_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
  kind TEXT NOT NULL,
  key  TEXT NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (kind, key)
);
)sql";

}  // namespace

namespace queue_internal {

// Inverse of AppendJsonBytes after nlohmann decoded the escapes to UTF-8: every code point is
// below 0x100, so it is one byte, or two (0xC2/0xC3 lead).
bool BytesFromUtf8(const std::string& in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out->push_back(in[i]);
      continue;
    }
    if ((c != 0xC2 && c != 0xC3) || i + 1 >= in.size()) {
      return false;
    }
    auto c2 = static_cast<unsigned char>(in[++i]);
    if ((c2 & 0xC0) != 0x80) {
      return false;
    }
    out->push_back(static_cast<char>(((c & 0x03) << 6) | (c2 & 0x3F)));
  }
  return true;
}

std::optional<QueueHeaders> HeadersFromJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return std::nullopt;
  }
  QueueHeaders out;
  out.reserve(j.size());
  for (const Json& pair : j) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      return std::nullopt;
    }
    std::string name;
    std::string value;
    if (!BytesFromUtf8(pair[0].get_ref<const std::string&>(), &name) ||
        !BytesFromUtf8(pair[1].get_ref<const std::string&>(), &value)) {
      return std::nullopt;
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

constexpr std::size_t kMaxQueueNameBytes = 200;

std::shared_ptr<spdlog::logger> Log() {
  static auto log = faas::log::Get("store");
  return log;
}

// sql::Stmt binds a string_view with a null data pointer (a default-constructed one) as NULL;
// every text column here is NOT NULL, and "" is what the caller meant.
std::string_view NotNull(std::string_view s) {
  return s.data() != nullptr ? s : std::string_view("");
}

std::string Quote(std::string_view s) {
  return faas::QuoteForMessage(s, 64);
}

faas::Status CheckQueueName(std::string_view name, std::string_view what) {
  if (name.empty()) {
    return faas::InvalidArgumentError(std::string(what) + " is empty");
  }
  if (name.size() > kMaxQueueNameBytes) {
    return faas::InvalidArgumentError(std::string(what) + " " + Quote(name) + " is " +
                                      std::to_string(name.size()) + " bytes, above the " +
                                      std::to_string(kMaxQueueNameBytes) + "-byte limit");
  }
  return faas::OkStatus();
}

faas::Status LeaseLost(int64_t id, uint32_t attempt) {
  return faas::NotFoundError("message " + std::to_string(id) + " attempt " +
                             std::to_string(attempt) +
                             " is not leased: it was acked, retried or dead-lettered, or its "
                             "lease expired and it was leased again");
}

faas::Result<int64_t> LeaseVisibilityMs(std::chrono::milliseconds visibility) {
  if (visibility.count() <= 0) {
    return faas::InvalidArgumentError("lease visibility " + FormatDuration(visibility) +
                                      " must be positive");
  }
  return std::min<int64_t>(visibility.count(), kMaxVisibilityMs);
}

faas::Status CheckIdempotency(std::string_view key, std::chrono::milliseconds ttl) {
  if (key.empty() || key.size() > 512) {
    return faas::InvalidArgumentError("idempotency key must be 1..512 bytes, not " +
                                      std::to_string(key.size()));
  }
  if (ttl.count() <= 0) {
    return faas::InvalidArgumentError("idempotency ttl " + FormatDuration(ttl) +
                                      " must be positive");
  }
  return faas::OkStatus();
}

uint32_t ToU32(int64_t v) {
  return static_cast<uint32_t>(std::clamp<int64_t>(v, 0, int64_t{UINT32_MAX}));
}

uint64_t ToU64(int64_t v) {
  return static_cast<uint64_t>(std::max<int64_t>(v, 0));
}

// Headers are stored as a JSON array of [name, value] pairs, bytes escaped by AppendJsonBytes;
// HeadersFromJson maps the code points back to bytes.
std::string HeadersToJson(const QueueHeaders& headers) {
  std::string out = "[";
  for (const auto& [name, value] : headers) {
    if (out.size() > 1) {
      out += ',';
    }
    out += '[';
    AppendJsonBytes(out, name);
    out += ',';
    AppendJsonBytes(out, value);
    out += ']';
  }
  return out + "]";
}

// Stored headers are written only by HeadersToJson; unreadable ones mean a damaged database.
// The message is still delivered (without headers) so one bad row cannot block its queue.
QueueHeaders ReadHeaders(const Stmt& s, int col, std::string_view what) {
  std::optional<QueueHeaders> headers = HeadersFromJson(s.Text(col));
  if (!headers) {
    FAAS_LOG(Log(), err, "queue.headers_corrupt", {"what", what});
    return {};
  }
  return std::move(*headers);
}

QueueMessage ReadMessage(const Stmt& s) {
  QueueMessage m;
  m.id = s.Int(0);
  m.queue = s.Text(1);
  m.body = s.Bytes(2);
  m.headers = ReadHeaders(s, 3, "message " + std::to_string(m.id));
  m.attempt = ToU32(s.Int(4));
  m.enqueued_unix_ms = s.Int(5);
  m.last_error = s.Bytes(6);
  return m;
}

// The helpers below run inside a write transaction (Impl::Write).

faas::Result<int64_t> InsertMessage(sqlite3* db, std::string_view queue, std::string_view body,
                                    const std::string& headers_json, int64_t visible_at_unix_ms) {
  int64_t now = faas::UnixMillisNow();
  FAAS_ASSIGN_OR_RETURN(
      Stmt ins,
      Stmt::Prepare(db,
                    "INSERT INTO messages(queue, body, headers, attempt, visible_at_ms,"
                    " leased_until_ms, enqueued_ms, last_error, dead, dead_error, dead_ms,"
                    " origin_queue) VALUES (?1, ?2, ?3, 0, ?4, 0, ?5, X'', 0, X'', 0, '')",
                    {NotNull(queue), Blob{body}, headers_json,
                     std::max<int64_t>(visible_at_unix_ms, 0), now}));
  FAAS_RETURN_IF_ERROR(ins.Run());
  int64_t id = sqlite3_last_insert_rowid(db);
  FAAS_ASSIGN_OR_RETURN(
      Stmt count,
      Stmt::Prepare(db,
                    "INSERT INTO queue_counters(queue, published, acked) VALUES (?1, 1, 0)"
                    " ON CONFLICT(queue) DO UPDATE SET published = published + 1",
                    {NotNull(queue)}));
  FAAS_RETURN_IF_ERROR(count.Run());
  return id;
}

faas::Status AckLeased(sqlite3* db, int64_t id, uint32_t attempt) {
  FAAS_ASSIGN_OR_RETURN(Stmt del, Stmt::Prepare(db,
                                                "DELETE FROM messages WHERE id = ?1 AND"
                                                " attempt = ?2 AND dead = 0 AND"
                                                " leased_until_ms > 0 RETURNING queue",
                                                {id, int64_t{attempt}}));
  FAAS_ASSIGN_OR_RETURN(bool row, del.Step());
  if (!row) {
    return LeaseLost(id, attempt);
  }
  std::string queue = del.Text(0);
  FAAS_RETURN_IF_ERROR(del.Run());
  FAAS_ASSIGN_OR_RETURN(
      Stmt count,
      Stmt::Prepare(db, "UPDATE queue_counters SET acked = acked + 1 WHERE queue = ?1", {queue}));
  return count.Run();
}

}  // namespace queue_internal

Status SqliteQueue::Impl::Write(const std::function<Status(sqlite3*)>& fn) {
  WriteOp op;
  op.fn = &fn;
  std::unique_lock lock(write_mu);
  pending.push_back(&op);
  while (!op.done) {
    if (writing) {
      write_done.wait(lock);
      continue;
    }
    writing = true;
    // Let the callers the previous commit just woke queue their next write first, so they
    // share this fsync (measured: ~25% fewer commits with 8 writing threads on 2 cores).
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
    std::vector<WriteOp*> batch;
    batch.swap(pending);
    lock.unlock();
    RunBatch(batch);
    lock.lock();
    for (WriteOp* o : batch) {
      o->done = true;
    }
    writing = false;
    write_done.notify_all();
  }
  return op.status;
}

void SqliteQueue::Impl::RunBatch(const std::vector<WriteOp*>& batch) {
  std::lock_guard lock(db_mu);
  // A failure of the whole transaction replaces the result of every op that had succeeded.
  auto fail_all = [&](const Status& s) {
    for (WriteOp* op : batch) {
      if (op->status.ok()) {
        op->status = s;
      }
    }
  };
  Result<sql::Transaction> tx = sql::Transaction::Begin(db);
  if (!tx.ok()) {
    fail_all(tx.status());
    return;
  }
  for (WriteOp* op : batch) {
    // One savepoint per op: a failed op (a lost lease, a bad row) undoes only its own writes.
    Status s = sql::Exec(db, "SAVEPOINT op");
    if (s.ok()) {
      op->status = (*op->fn)(db);
      if (!op->status.ok()) {
        // Some errors (SQLITE_FULL, IOERR, NOMEM) end the whole transaction by themselves.
        s = sqlite3_get_autocommit(db) != 0 ? op->status : sql::Exec(db, "ROLLBACK TO op");
      }
    }
    if (s.ok()) {
      s = sql::Exec(db, "RELEASE op");
    }
    if (!s.ok()) {
      fail_all(s);
      return;  // ~Transaction rolls back the rest
    }
  }
  Status committed = tx->Commit();
  if (!committed.ok()) {
    fail_all(committed);
  }
}

void SqliteQueue::Impl::NotifyReady() {
  {
    std::lock_guard lock(ready_mu);
    ++ready_generation;
  }
  ready_cv.notify_all();
}

Result<std::optional<int64_t>> SqliteQueue::Impl::EarliestVisible(std::string_view queue) {
  std::lock_guard lock(db_mu);
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(db, "SELECT MIN(visible_at_ms) FROM messages WHERE queue = ?1 AND dead = 0",
                    {NotNull(queue)}));
  FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) {
    return std::optional<int64_t>();
  }
  return std::optional<int64_t>(st.Int(0));
}

SqliteQueue::SqliteQueue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteQueue::~SqliteQueue() {
  int rc = sqlite3_close(impl_->db);
  if (rc != SQLITE_OK) {
    FAAS_LOG(Log(), err, "queue.close_failed", {"error", sqlite3_errstr(rc)});
  }
}

Result<std::unique_ptr<Queue>> Queue::Open(const std::string& path) {
  auto impl = std::make_unique<SqliteQueue::Impl>();
  // FULL: in WAL mode, NORMAL may lose the last commits on power loss; Publish promises that a
  // returned message is durable. Group commit (Impl::Write) amortises the extra fsync. Without
  // WAL (queue.no_wal) it is still durable, only slower.
  FAAS_ASSIGN_OR_RETURN(impl->db,
                        sql::Open(path, {.synchronous = "FULL", .no_wal_event = "queue.no_wal"}));
  auto queue = std::make_unique<SqliteQueue>(std::move(impl));  // owns the handle now
  sqlite3* db = queue->impl().db;
  // One transaction: one fsync for the whole schema instead of one per statement.
  FAAS_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::Begin(db));
  FAAS_RETURN_IF_ERROR(sql::Exec(db, kSchema));
  // One process owns the file, so every open lease belongs to a consumer that no longer exists
  // (the previous faasd): make those messages ready now instead of after their visibility
  // timeout, which can be minutes. Their holders can no longer end the leases.
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt release,
      sql::Stmt::Prepare(db,
                         "UPDATE messages SET visible_at_ms = ?1, leased_until_ms = 0"
                         " WHERE dead = 0 AND leased_until_ms > 0 AND visible_at_ms > ?1",
                         {UnixMillisNow()}));
  FAAS_RETURN_IF_ERROR(release.Run());
  FAAS_RETURN_IF_ERROR(tx.Commit());
  return std::unique_ptr<Queue>(std::move(queue));
}

Result<int64_t> SqliteQueue::Publish(std::string_view queue, std::string_view body,
                                     const QueueHeaders& headers, int64_t visible_at_unix_ms) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  std::string headers_json = HeadersToJson(headers);
  int64_t id = 0;
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(id, InsertMessage(db, queue, body, headers_json, visible_at_unix_ms));
    return OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  impl_->NotifyReady();
  return id;
}

Result<std::vector<QueueMessage>> SqliteQueue::Lease(std::string_view queue, uint32_t max,
                                                     std::chrono::milliseconds visibility) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  FAAS_ASSIGN_OR_RETURN(const int64_t visibility_ms, LeaseVisibilityMs(visibility));
  std::vector<QueueMessage> out;
  if (max == 0) {
    return out;
  }
  auto op = [&](sqlite3* db) -> Status {
    int64_t now = UnixMillisNow();
    // The subquery walks the queue in id order on a covering index and stops after `max`
    // ready rows; it skips only leased and delayed messages.
    FAAS_ASSIGN_OR_RETURN(
        Stmt st, Stmt::Prepare(db,
                               "UPDATE messages SET attempt = attempt + 1, visible_at_ms = ?3,"
                               " leased_until_ms = ?3 WHERE id IN (SELECT id FROM messages"
                               " INDEXED BY messages_by_id WHERE queue = ?1 AND dead = 0 AND"
                               " visible_at_ms <= ?2 ORDER BY id LIMIT ?4)"
                               " RETURNING " FAAS_MESSAGE_COLUMNS,
                               {NotNull(queue), now, now + visibility_ms, int64_t{max}}));
    out.clear();
    for (;;) {
      FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadMessage(st));
    }
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  // RETURNING yields rows in no particular order.
  std::sort(out.begin(), out.end(),
            [](const QueueMessage& a, const QueueMessage& b) { return a.id < b.id; });
  return out;
}

void SqliteQueue::WaitForReady(std::string_view queue, Clock::time_point deadline) {
  std::unique_lock lock(impl_->ready_mu);
  const uint64_t wake_generation = impl_->wake_generation;
  for (;;) {
    // Read the generation before querying: a Publish that lands after the query bumps it,
    // so the wait below cannot miss it.
    const uint64_t generation = impl_->ready_generation;
    lock.unlock();
    if (Clock::now() >= deadline) {
      return;
    }
    Clock::time_point until = deadline;
    Result<std::optional<int64_t>> earliest = impl_->EarliestVisible(queue);
    if (!earliest.ok()) {
      // Wait for the next change or the deadline; never spin on a failing query.
      FAAS_LOG(Log(), warn, "queue.wait_query_failed", {"error", earliest.status().message()});
    } else if (earliest->has_value()) {
      int64_t due_in_ms = **earliest - UnixMillisNow();
      if (due_in_ms <= 0) {
        return;
      }
      // Wall-clock due time, waited for on the steady clock; capped so the sum cannot overflow.
      Clock::time_point due =
          Clock::now() + std::chrono::milliseconds(std::min(due_in_ms, kMaxVisibilityMs));
      until = std::min(until, due);
    }
    lock.lock();
    impl_->ready_cv.wait_until(lock, until, [&] {
      return impl_->ready_generation != generation || impl_->wake_generation != wake_generation;
    });
    if (impl_->wake_generation != wake_generation) {
      return;
    }
  }
}

void SqliteQueue::WakeAll() {
  {
    std::lock_guard lock(impl_->ready_mu);
    ++impl_->wake_generation;
  }
  impl_->ready_cv.notify_all();
}

Status SqliteQueue::Extend(int64_t id, uint32_t attempt, std::chrono::milliseconds visibility) {
  FAAS_ASSIGN_OR_RETURN(const int64_t visibility_ms, LeaseVisibilityMs(visibility));
  auto op = [&](sqlite3* db) -> Status {
    int64_t until = UnixMillisNow() + visibility_ms;
    FAAS_ASSIGN_OR_RETURN(
        Stmt st, Stmt::Prepare(db,
                               "UPDATE messages SET visible_at_ms = ?3, leased_until_ms = ?3"
                               " WHERE id = ?1 AND attempt = ?2 AND dead = 0"
                               " AND leased_until_ms > 0",
                               {id, int64_t{attempt}, until}));
    FAAS_RETURN_IF_ERROR(st.Run());
    return sqlite3_changes(db) == 0 ? LeaseLost(id, attempt) : OkStatus();
  };
  return impl_->Write(op);
}

Status SqliteQueue::Ack(int64_t id, uint32_t attempt) {
  auto op = [&](sqlite3* db) { return AckLeased(db, id, attempt); };
  return impl_->Write(op);
}

Status SqliteQueue::Retry(int64_t id, uint32_t attempt, int64_t visible_at_unix_ms,
                          std::string_view error) {
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(
        Stmt st, Stmt::Prepare(db,
                               "UPDATE messages SET visible_at_ms = ?3, leased_until_ms = 0,"
                               " last_error = ?4 WHERE id = ?1 AND attempt = ?2 AND dead = 0"
                               " AND leased_until_ms > 0",
                               {id, int64_t{attempt}, std::max<int64_t>(visible_at_unix_ms, 0),
                                Blob{error}}));
    FAAS_RETURN_IF_ERROR(st.Run());
    return sqlite3_changes(db) == 0 ? LeaseLost(id, attempt) : OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  impl_->NotifyReady();
  return OkStatus();
}

}  // namespace faas::store
