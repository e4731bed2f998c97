// Async invocation records (the `async` table): written with the message that runs them
// (PublishAsync) or with its ack (AckWithResult), read by GetAsync, expired by ExpireAsync.
#include <algorithm>
#include <mutex>

#include "faas/base/time.h"
#include "faas/store/queue.h"

#include "queue_internal.h"
#include "sqlite.h"

namespace faas::store {

namespace queue_internal {

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

}  // namespace queue_internal

namespace {

using queue_internal::AckLeased;
using queue_internal::CheckAsyncRecord;
using queue_internal::CheckIdempotency;
using queue_internal::CheckQueueName;
using queue_internal::HeadersToJson;
using queue_internal::InsertMessage;
using queue_internal::NotNull;
using queue_internal::Quote;
using queue_internal::ReadHeaders;
using queue_internal::ToU32;
using queue_internal::ToU64;
using sql::Blob;
using sql::Stmt;

#define FAAS_ASYNC_COLUMNS                                                                \
  "invocation_id, function, tenant, status, http_status, headers, body, body_truncated, " \
  "error_code, error_message, attempts, callback_url, callback_status, created_ms, updated_ms"

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

}  // namespace

Result<int64_t> SqliteQueue::PublishAsync(std::string_view queue, const AsyncRecord& record,
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

Result<AsyncPublish> SqliteQueue::PublishAsyncOnce(std::string_view queue, std::string_view key,
                                                   std::chrono::milliseconds ttl,
                                                   const AsyncRecord& record, std::string_view body,
                                                   const QueueHeaders& headers) {
  FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  FAAS_RETURN_IF_ERROR(CheckIdempotency(key, ttl));
  std::string headers_json = HeadersToJson(headers);
  AsyncPublish out;
  auto op = [&](sqlite3* db) -> Status {
    int64_t now = faas::UnixMillisNow();
    // A key past its expiry is free again, as a Redis key whose TTL ran out.
    FAAS_ASSIGN_OR_RETURN(
        Stmt claim,
        Stmt::Prepare(db,
                      "INSERT INTO idempotency(key, invocation_id, expires_ms) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT(key) DO UPDATE SET invocation_id = excluded.invocation_id,"
                      " expires_ms = excluded.expires_ms WHERE expires_ms <= ?4",
                      {Blob{key}, NotNull(record.invocation_id), now + ttl.count(), now}));
    FAAS_RETURN_IF_ERROR(claim.Run());
    if (sqlite3_changes(db) == 0) {
      FAAS_ASSIGN_OR_RETURN(
          Stmt held,
          Stmt::Prepare(db, "SELECT invocation_id FROM idempotency WHERE key = ?1", {Blob{key}}));
      FAAS_ASSIGN_OR_RETURN(bool row, held.Step());
      out = AsyncPublish{.id = 0, .invocation_id = row ? held.Text(0) : "", .duplicate = true};
      return OkStatus();
    }
    FAAS_RETURN_IF_ERROR(PutAsyncRecord(db, record));
    FAAS_ASSIGN_OR_RETURN(out.id, InsertMessage(db, queue, body, headers_json, 0));
    out.invocation_id = record.invocation_id;
    return OkStatus();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  if (!out.duplicate) {
    impl_->NotifyReady();
  }
  return out;
}

Status SqliteQueue::PutAsync(const AsyncRecord& record) {
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  auto op = [&](sqlite3* db) { return PutAsyncRecord(db, record); };
  return impl_->Write(op);
}

Result<AsyncRecord> SqliteQueue::GetAsync(std::string_view invocation_id) {
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

Status SqliteQueue::AckWithResult(int64_t id, uint32_t attempt, const AsyncRecord& record) {
  FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
  auto op = [&](sqlite3* db) -> Status {
    FAAS_RETURN_IF_ERROR(AckLeased(db, id, attempt));
    return PutAsyncRecord(db, record);
  };
  return impl_->Write(op);
}

Result<uint64_t> SqliteQueue::ExpireAsync(int64_t before_unix_ms) {
  uint64_t deleted = 0;
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(Stmt st,
                          Stmt::Prepare(db,
                                        "DELETE FROM async WHERE status IN ('succeeded', 'failed')"
                                        " AND updated_ms < ?1",
                                        {before_unix_ms}));
    FAAS_RETURN_IF_ERROR(st.Run());
    deleted = ToU64(sqlite3_changes64(db));
    FAAS_ASSIGN_OR_RETURN(
        Stmt keys,
        Stmt::Prepare(db, "DELETE FROM idempotency WHERE expires_ms <= ?1", {before_unix_ms}));
    return keys.Run();
  };
  FAAS_RETURN_IF_ERROR(impl_->Write(op));
  return deleted;
}

}  // namespace faas::store
