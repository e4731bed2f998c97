// Private to store/src/queue*.cc: Queue::Impl (the one connection and its group commit) and the
// helpers the queue's files share. queue.cc holds the schema, the group commit and the message
// lifecycle (publish, lease, ack, retry); queue_dlq.cc dead letters, redrive and stats;
// queue_async.cc async invocation records; queue_settings.cc the settings table.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/log.h"
#include "faas/store/queue.h"
#include "faas/store/settings.h"

#include "sqlite.h"

// Columns 0..6 of a leased or listed message, read by ReadMessage.
#define FAAS_MESSAGE_COLUMNS "id, queue, body, headers, attempt, enqueued_ms, last_error"

namespace faas::store {

// The embedded backend (Queue::Open), which also keeps the settings table (Settings()).
class SqliteQueue final : public Queue, public SettingsStore {
 public:
  struct Impl;
  explicit SqliteQueue(std::unique_ptr<Impl> impl);
  ~SqliteQueue() override;

  std::string_view Backend() const override { return "sqlite"; }
  Result<int64_t> Publish(std::string_view queue, std::string_view body,
                          const QueueHeaders& headers, int64_t visible_at_unix_ms) override;
  Result<std::vector<QueueMessage>> Lease(std::string_view queue, uint32_t max,
                                          std::chrono::milliseconds visibility) override;
  void WaitForReady(std::string_view queue, Clock::time_point deadline) override;
  void WakeAll() override;
  Status Extend(int64_t id, uint32_t attempt, std::chrono::milliseconds visibility) override;
  Status Ack(int64_t id, uint32_t attempt) override;
  Status Retry(int64_t id, uint32_t attempt, int64_t visible_at_unix_ms,
               std::string_view error) override;
  Status DeadLetter(int64_t id, uint32_t attempt, std::string_view dlq,
                    std::string_view error) override;
  Result<QueueStats> Stats(std::string_view queue) override;
  Result<std::vector<QueueStats>> ListQueues() override;
  Result<std::vector<store::DeadLetter>> ListDead(std::string_view dlq, uint32_t limit) override;
  Result<uint64_t> ReplayDead(std::string_view dlq) override;
  Result<int64_t> PublishAsync(std::string_view queue, const AsyncRecord& record,
                               std::string_view body, const QueueHeaders& headers) override;
  Result<AsyncPublish> PublishAsyncOnce(std::string_view queue, std::string_view key,
                                        std::chrono::milliseconds ttl, const AsyncRecord& record,
                                        std::string_view body,
                                        const QueueHeaders& headers) override;
  Status PutAsync(const AsyncRecord& record) override;
  Result<AsyncRecord> GetAsync(std::string_view invocation_id) override;
  Status AckWithResult(int64_t id, uint32_t attempt, const AsyncRecord& record) override;
  Result<uint64_t> ExpireAsync(int64_t before_unix_ms) override;
  SettingsStore* Settings() override { return this; }
  Status PutSetting(std::string_view kind, std::string_view key, std::string_view json) override;
  Status DeleteSetting(std::string_view kind, std::string_view key) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(
      std::string_view kind) override;

  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct SqliteQueue::Impl {
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
  Status Write(const std::function<Status(sqlite3*)>& fn);
  void RunBatch(const std::vector<WriteOp*>& batch);
  // Wakes WaitForReady: a message may have become ready.
  void NotifyReady();
  // The smallest visible_at_ms of the live messages of `queue`, nullopt when it has none.
  Result<std::optional<int64_t>> EarliestVisible(std::string_view queue);
};

namespace queue_internal {

// The "store" logger.
std::shared_ptr<spdlog::logger> Log();

// sql::Stmt binds a string_view with a null data pointer (a default-constructed one) as NULL;
// every text column here is NOT NULL, and "" is what the caller meant.
std::string_view NotNull(std::string_view s);

// A user-given name for an error message, quoted and cut at 64 bytes.
std::string Quote(std::string_view s);

// Longest lease: a year. Larger visibilities are clamped so now + visibility cannot overflow.
inline constexpr int64_t kMaxVisibilityMs = int64_t{365} * 24 * 3600 * 1000;

// A lease's visibility (Lease, Extend) in milliseconds, clamped to kMaxVisibilityMs;
// InvalidArgument unless it is positive.
faas::Result<int64_t> LeaseVisibilityMs(std::chrono::milliseconds visibility);

// InvalidArgument when `name` is empty or longer than 200 bytes; `what` names it in the message.
faas::Status CheckQueueName(std::string_view name, std::string_view what = "queue name");

// NotFound: lease (id, attempt) is no longer open.
faas::Status LeaseLost(int64_t id, uint32_t attempt);

// InvalidArgument for an empty or over-long (> 512 bytes) idempotency key or a ttl <= 0.
faas::Status CheckIdempotency(std::string_view key, std::chrono::milliseconds ttl);

// InvalidArgument naming every problem of an async record (empty id, unknown status).
faas::Status CheckAsyncRecord(const AsyncRecord& r);

// A stored count, clamped to the type (a damaged row cannot wrap it).
uint32_t ToU32(int64_t v);
uint64_t ToU64(int64_t v);

// Headers are stored as a JSON array of [name, value] pairs, bytes escaped by AppendJsonBytes.
std::string HeadersToJson(const QueueHeaders& headers);
// The inverse of HeadersToJson; nullopt for text it did not write.
std::optional<QueueHeaders> HeadersFromJson(const std::string& text);
// Reads the headers column `col` written by HeadersToJson; unreadable ones (a damaged database)
// are logged with `what` and read as none, so one bad row cannot block its queue.
QueueHeaders ReadHeaders(const sql::Stmt& s, int col, std::string_view what);

// A message from columns 0..6 (FAAS_MESSAGE_COLUMNS).
QueueMessage ReadMessage(const sql::Stmt& s);

// The helpers below run inside a write transaction (Impl::Write).

// Inserts a message and counts it as published; returns its id.
faas::Result<int64_t> InsertMessage(sqlite3* db, std::string_view queue, std::string_view body,
                                    const std::string& headers_json, int64_t visible_at_unix_ms);
// Deletes the message leased as (id, attempt) and counts it as acked; LeaseLost when that lease
// is no longer open.
faas::Status AckLeased(sqlite3* db, int64_t id, uint32_t attempt);

}  // namespace queue_internal
}  // namespace faas::store
