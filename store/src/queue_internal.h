// Private to store/src/queue*.cc: Queue::Impl (the one connection and its group commit) and the
// helpers the queue's files share. queue.cc holds the schema, the group commit and the message
// lifecycle (publish, lease, ack, retry); queue_dlq.cc dead letters, redrive and stats;
// queue_async.cc async invocation records; queue_settings.cc the settings table.
#pragma once

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

#include "sqlite.h"

// Columns 0..6 of a leased or listed message, read by ReadMessage.
#define FAAS_MESSAGE_COLUMNS "id, queue, body, headers, attempt, enqueued_ms, last_error"

namespace faas::store {

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

// InvalidArgument when `name` is empty or longer than 200 bytes; `what` names it in the message.
faas::Status CheckQueueName(std::string_view name, std::string_view what = "queue name");

// NotFound: lease (id, attempt) is no longer open.
faas::Status LeaseLost(int64_t id, uint32_t attempt);

// A stored count, clamped to the type (a damaged row cannot wrap it).
uint32_t ToU32(int64_t v);
uint64_t ToU64(int64_t v);

// Headers are stored as a JSON array of [name, value] pairs, bytes escaped by AppendJsonBytes.
std::string HeadersToJson(const QueueHeaders& headers);
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
