#include "faas/store/queue.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/base/log.h"
#include "faas/base/text.h"

#include "sqlite.h"

namespace faas::store {
namespace {

using Json = nlohmann::json;
using sql::Blob;
using sql::Stmt;

constexpr std::size_t kMaxQueueNameBytes = 200;
// Longest lease: a year. Larger visibilities are clamped so now + visibility cannot overflow.
constexpr int64_t kMaxVisibilityMs = int64_t{365} * 24 * 3600 * 1000;

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
CREATE TABLE IF NOT EXISTS settings (
  kind TEXT NOT NULL,
  key  TEXT NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (kind, key)
);
)sql";

// Columns 0..6 of a leased or listed message, read by ReadMessage.
#define FAAS_MESSAGE_COLUMNS "id, queue, body, headers, attempt, enqueued_ms, last_error"

#define FAAS_ASYNC_COLUMNS                                                                \
  "invocation_id, function, tenant, status, http_status, headers, body, body_truncated, " \
  "error_code, error_message, attempts, callback_url, callback_status, created_ms, updated_ms"

auto Log() {
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

faas::Status CheckQueueName(std::string_view name, std::string_view what = "queue name") {
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

faas::Status CheckAsyncRecord(const AsyncRecord& r) {
  std::string problems;
  auto add = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  if (r.invocation_id.empty()) {
    add("invocation_id is empty");
  }
  if (r.status != "queued" && r.status != "running" && r.status != "succeeded" &&
      r.status != "failed") {
    add("status " + Quote(r.status) + " must be queued, running, succeeded or failed");
  }
  if (!problems.empty()) {
    return faas::InvalidArgumentError("async record: " + problems);
  }
  return faas::OkStatus();
}

faas::Status LeaseLost(int64_t id, uint32_t attempt) {
  return faas::NotFoundError("message " + std::to_string(id) + " attempt " +
                             std::to_string(attempt) +
                             " is not leased: it was acked, retried or dead-lettered, or its "
                             "lease expired and it was leased again");
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

AsyncRecord ReadAsync(const Stmt& s) {
  AsyncRecord r;
  r.invocation_id = s.Text(0);
  r.function = s.Text(1);
  r.tenant = s.Text(2);
  r.status = s.Text(3);
  r.http_status = static_cast<int>(std::clamp<int64_t>(s.Int(4), INT32_MIN, INT32_MAX));
  r.headers = ReadHeaders(s, 5, "async record " + r.invocation_id);
  r.body = s.Bytes(6);
  r.body_truncated = s.Int(7) != 0;
  r.error_code = s.Text(8);
  r.error_message = s.Bytes(9);
  r.attempts = ToU32(s.Int(10));
  r.callback_url = s.Text(11);
  r.callback_status = s.Text(12);
  r.created_unix_ms = s.Int(13);
  r.updated_unix_ms = s.Int(14);
  return r;
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

faas::Status PutAsyncRecord(sqlite3* db, const AsyncRecord& r) {
  int64_t now = faas::UnixMillisNow();
  std::string headers_json = HeadersToJson(r.headers);
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(
          db,
          "INSERT INTO async(" FAAS_ASYNC_COLUMNS
          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
          " CASE WHEN ?14 != 0 THEN ?14 ELSE ?16 END, ?15)"
          " ON CONFLICT(invocation_id) DO UPDATE SET function = excluded.function,"
          " tenant = excluded.tenant, status = excluded.status, http_status = excluded.http_status,"
          " headers = excluded.headers, body = excluded.body,"
          " body_truncated = excluded.body_truncated, error_code = excluded.error_code,"
          " error_message = excluded.error_message, attempts = excluded.attempts,"
          " callback_url = excluded.callback_url, callback_status = excluded.callback_status,"
          " created_ms = CASE WHEN ?14 != 0 THEN ?14 ELSE created_ms END,"
          " updated_ms = excluded.updated_ms",
          {NotNull(r.invocation_id), NotNull(r.function), NotNull(r.tenant), NotNull(r.status),
           int64_t{r.http_status}, headers_json, Blob{r.body}, int64_t{r.body_truncated ? 1 : 0},
           NotNull(r.error_code), Blob{r.error_message}, int64_t{r.attempts},
           NotNull(r.callback_url), NotNull(r.callback_status), r.created_unix_ms,
           r.updated_unix_ms != 0 ? r.updated_unix_ms : now, now}));
  return st.Run();
}

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

struct Queue::Impl {
  sqlite3* db = nullptr;

  std::mutex db_mu;  // the one connection: reads and write batches take turns

  // Group commit. Every write is a function run inside a transaction. A caller queues its
  // function; whoever finds no batch running becomes the leader, takes everything queued
  // (its own and what arrived meanwhile) and commits it in one transaction, one fsync.
  struct WriteOp {
    const std::function<Status(sqlite3*)>* fn = nullptr;
    Status status;
    bool done = false;
  };
  std::mutex write_mu;  // guards pending, writing and each op's done/status after queueing
  std::condition_variable write_done;
  std::vector<WriteOp*> pending;
  bool writing = false;

  // WaitForReady: bumped when a message may have become ready, and by WakeAll.
  std::mutex ready_mu;
  std::condition_variable ready_cv;
  uint64_t ready_generation = 0;
  uint64_t wake_generation = 0;

  // Runs `fn` in a durable transaction; returns once it committed (or failed). `fn` sees the
  // effects of the batch's earlier functions and must not touch the database outside `db`.
  Status Write(const std::function<Status(sqlite3*)>& fn) {
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

  void RunBatch(const std::vector<WriteOp*>& batch) {
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

  void NotifyReady() {
    {
      std::lock_guard lock(ready_mu);
      ++ready_generation;
    }
    ready_cv.notify_all();
  }

  // The smallest visible_at_ms of the live messages of `queue`, nullopt when it has none.
  Result<std::optional<int64_t>> EarliestVisible(std::string_view queue) {
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
};

Queue::Queue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Queue::~Queue() {
  int rc = sqlite3_close(impl_->db);
  if (rc != SQLITE_OK) {
    FAAS_LOG(Log(), err, "queue.close_failed", {"error", sqlite3_errstr(rc)});
  }
}

Result<std::unique_ptr<Queue>> Queue::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  // FULL: in WAL mode, NORMAL may lose the last commits on power loss; Publish promises that a
  // returned message is durable. Group commit (Impl::Write) amortises the extra fsync. Without
  // WAL (queue.no_wal) it is still durable, only slower.
  FAAS_ASSIGN_OR_RETURN(impl->db,
                        sql::Open(path, {.synchronous = "FULL", .no_wal_event = "queue.no_wal"}));
  std::unique_ptr<Queue> queue(new Queue(std::move(impl)));  // owns the handle now
  sqlite3* db = queue->impl_->db;
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
  return queue;
}

Result<int64_t> Queue::Publish(std::string_view queue, std::string_view body,
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

Result<std::vector<QueueMessage>> Queue::Lease(std::string_view queue, uint32_t max,
                                               std::chrono::milliseconds visibility) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  if (visibility.count() <= 0) {
    return InvalidArgumentError("lease visibility " + FormatDuration(visibility) +
                                " must be positive");
  }
  std::vector<QueueMessage> out;
  if (max == 0) {
    return out;
  }
  int64_t visibility_ms = std::min<int64_t>(visibility.count(), kMaxVisibilityMs);
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

void Queue::WaitForReady(std::string_view queue, Clock::time_point deadline) {
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

void Queue::WakeAll() {
  {
    std::lock_guard lock(impl_->ready_mu);
    ++impl_->wake_generation;
  }
  impl_->ready_cv.notify_all();
}

Status Queue::Ack(int64_t id, uint32_t attempt) {
  auto op = [&](sqlite3* db) { return AckLeased(db, id, attempt); };
  return impl_->Write(op);
}

Status Queue::Retry(int64_t id, uint32_t attempt, int64_t visible_at_unix_ms,
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

Status Queue::DeadLetter(int64_t id, uint32_t attempt, std::string_view dlq,
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

Result<QueueStats> Queue::Stats(std::string_view queue) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  std::lock_guard lock(impl_->db_mu);
  return StatsOf(impl_->db, queue, UnixMillisNow());
}

Result<std::vector<QueueStats>> Queue::ListQueues() {
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

Result<std::vector<store::DeadLetter>> Queue::ListDead(std::string_view dlq, uint32_t limit) {
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

Result<uint64_t> Queue::ReplayDead(std::string_view dlq) {
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

Result<int64_t> Queue::PublishAsync(std::string_view queue, const AsyncRecord& record,
                                    std::string_view body, const QueueHeaders& headers) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  std::string headers_json = HeadersToJson(headers);
  int64_t id = 0;
  auto op = [&](sqlite3* db) -> Status {
    FAAS_RETURN_IF_ERROR(PutAsyncRecord(db, record));
    FAAS_ASSIGN_OR_RETURN(id, InsertMessage(db, queue, body, headers_json, 0));
    return OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  impl_->NotifyReady();
  return id;
}

Status Queue::PutAsync(const AsyncRecord& record) {
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  auto op = [&](sqlite3* db) { return PutAsyncRecord(db, record); };
  return impl_->Write(op);
}

Result<AsyncRecord> Queue::GetAsync(std::string_view invocation_id) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(impl_->db, "SELECT " FAAS_ASYNC_COLUMNS " FROM async WHERE invocation_id = ?1",
                    {NotNull(invocation_id)}));
  FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFoundError("async invocation " + Quote(invocation_id) +
                         " does not exist or has expired");
  }
  return ReadAsync(st);
}

Status Queue::AckWithResult(int64_t id, uint32_t attempt, const AsyncRecord& record) {
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  auto op = [&](sqlite3* db) -> Status {
    FAAS_RETURN_IF_ERROR(AckLeased(db, id, attempt));
    return PutAsyncRecord(db, record);
  };
  return impl_->Write(op);
}

Result<uint64_t> Queue::ExpireAsync(int64_t before_unix_ms) {
  uint64_t deleted = 0;
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(Stmt st,
                          Stmt::Prepare(db,
                                        "DELETE FROM async WHERE status IN ('succeeded', 'failed')"
                                        " AND updated_ms < ?1",
                                        {before_unix_ms}));
    FAAS_RETURN_IF_ERROR(st.Run());
    deleted = ToU64(sqlite3_changes64(db));
    return OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  return deleted;
}

Status Queue::PutSetting(std::string_view kind, std::string_view key, std::string_view json) {
  std::string problems;
  if (kind.empty()) {
    problems += "setting kind is empty; ";
  }
  if (key.empty()) {
    problems += "setting key is empty; ";
  }
  if (!Json::accept(json)) {
    problems += "setting " + Quote(key) + " is not valid JSON; ";
  }
  if (!problems.empty()) {
    problems.resize(problems.size() - 2);
    return InvalidArgumentError(problems);
  }
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(Stmt st, Stmt::Prepare(db,
                                                 "INSERT OR REPLACE INTO settings(kind, key, json)"
                                                 " VALUES (?1, ?2, ?3)",
                                                 {kind, key, json}));
    return st.Run();
  };
  return impl_->Write(op);
}

Status Queue::DeleteSetting(std::string_view kind, std::string_view key) {
  if (kind.empty() || key.empty()) {
    return InvalidArgumentError(kind.empty() ? "setting kind is empty" : "setting key is empty");
  }
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(
        Stmt st,
        Stmt::Prepare(db, "DELETE FROM settings WHERE kind = ?1 AND key = ?2", {kind, key}));
    return st.Run();
  };
  return impl_->Write(op);
}

Result<std::vector<std::pair<std::string, std::string>>> Queue::ListSettings(
    std::string_view kind) {
  if (kind.empty()) {
    return InvalidArgumentError("setting kind is empty");
  }
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(impl_->db, "SELECT key, json FROM settings WHERE kind = ?1 ORDER BY key",
                    {kind}));
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) {
      return out;
    }
    out.emplace_back(st.Text(0), st.Text(1));
  }
}

}  // namespace faas::store
