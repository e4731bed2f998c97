// Durable named queues with leases, retries and dead letters, the stored results of async
// invocations, and (embedded only) a small settings table (docs/triggers.md). Two backends: the
// embedded one, one SQLite database (WAL) that needs no external service, and Redis Streams shared
// by the gateways of a cluster (faas/store/redis_queue.h, docs/design/0021-cluster-queues.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto q, faas::store::Queue::Open(data_dir + "/queue.db"));
//   FAAS_ASSIGN_OR_RETURN(int64_t id, q->Publish("emails", body));        // durable on return
//   FAAS_ASSIGN_OR_RETURN(auto batch, q->Lease("emails", 16, 30s));      // hidden for 30 s
//   for (auto& m : batch) { ...; FAAS_RETURN_IF_ERROR(q->Ack(m.id, m.attempt)); }
//
// Delivery is at least once. Lease hands out ready messages (visible_at <= now) oldest first,
// increments their attempt and hides them until now + visibility; a consumer that dies
// without Ack/Retry/DeadLetter loses its lease when visibility passes and the message is
// leased again with attempt + 1; a live consumer keeps a long job's lease with Extend. Ack, Retry
// and DeadLetter take the attempt of the lease they end: a lease that expired and was handed out
// again answers NotFound (the other consumer now owns it), so a slow consumer can never ack a
// message it no longer holds. (A lease that expired but was not handed out again can still be ended
// by its holder.) Thread-safe. SQLite: one process owns a database file at a time; writes from
// concurrent callers are group-committed: each call still returns only after its own transaction is
// durable, but callers that arrive while a commit is in progress share the next fsync. Redis:
// any number of processes share the keys; every state change is one Lua script (atomic).
// Queue names are 1..200 bytes; every method taking one answers InvalidArgument otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"

namespace faas::store {

class SettingsStore;  // faas/store/settings.h

using QueueHeaders = std::vector<std::pair<std::string, std::string>>;

struct QueueMessage {
  int64_t id = 0;  // unique in the database, increasing in publish order
  std::string queue;
  std::string body;      // bytes, any content
  QueueHeaders headers;  // publisher metadata (async invocations keep their request here)
  uint32_t attempt = 0;  // of the current lease, 1-based (0: never leased)
  int64_t enqueued_unix_ms = 0;
  std::string last_error;  // of the previous failed attempt, "" if none
};

struct DeadLetter {
  QueueMessage message;      // attempt = the attempts it had; queue = the queue it came from
  std::string origin_queue;  // the queue it was dead-lettered from (ReplayDead's target)
  std::string error;         // why it was dead-lettered (last error, or "undecodable: …")
  int64_t dead_unix_ms = 0;
};

struct QueueStats {
  std::string queue;
  uint64_t ready = 0;                // visible now
  uint64_t delayed = 0;              // waiting for a retry backoff
  uint64_t in_flight = 0;            // leased, lease not expired
  uint64_t dead = 0;                 // in the dead-letter list
  uint64_t published = 0;            // ever, since the queue was first used
  uint64_t acked = 0;                // ever
  int64_t oldest_ready_unix_ms = 0;  // enqueue time of the oldest ready message, 0 if none
};

// State of an async invocation (docs/http-api.md GET /invocations/{id}).
struct AsyncRecord {
  std::string invocation_id;
  std::string function;
  std::string tenant;    // of the API key that queued it ("" = public function)
  std::string status;    // queued | running | succeeded | failed
  int http_status = 0;   // the function's status, or the error's (0 while not done)
  QueueHeaders headers;  // response headers
  std::string body;      // response body (truncated to the store's limit)
  bool body_truncated = false;
  std::string error_code;  // failed only: stable code, e.g. function_timeout
  std::string error_message;
  uint32_t attempts = 0;
  std::string callback_url;     // "" = none
  std::string callback_status;  // "" | pending | delivered | failed
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

// The result of PublishAsyncOnce.
struct AsyncPublish {
  int64_t id = 0;             // the message carrying the request (0 for a duplicate)
  std::string invocation_id;  // the record's id, or the first one's for a duplicate
  bool duplicate = false;     // the key was already used: nothing was queued
};

// The queue contract. Two backends implement it: the embedded SQLite file (Queue::Open) and
// Redis Streams for a cluster of gateways (OpenRedisQueue in faas/store/redis_queue.h). Both
// pass the same tests (tests/integration/queue_test.cc); where they differ, the method says so.
class Queue {
 public:
  // Opens or creates the embedded (SQLite) queue at `path`. One process owns the file, so leases
  // left open by a previous process are released: their messages are ready at once (with
  // attempt + 1 on the next lease) instead of waiting for their visibility deadline.
  static Result<std::unique_ptr<Queue>> Open(const std::string& path);
  virtual ~Queue() = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // "sqlite" or "redis", for logs and metrics.
  virtual std::string_view Backend() const = 0;

  // Appends a message; it is durable when this returns (SQLite: committed with synchronous=FULL;
  // Redis: acknowledged by the server, as durable as its appendfsync setting).
  // `visible_at_unix_ms` > now delays the first delivery. Wakes WaitForReady callers.
  // InvalidArgument for an empty or over-long (> 200 bytes) queue name. Headers are stored
  // exactly (any bytes), in order. Unavailable when the backend cannot be reached.
  virtual Result<int64_t> Publish(std::string_view queue, std::string_view body,
                                  const QueueHeaders& headers = {},
                                  int64_t visible_at_unix_ms = 0) = 0;

  // Leases up to `max` ready messages of `queue`, oldest (lowest id) first (see the top of this
  // file), atomically. Empty when none is ready. InvalidArgument for visibility <= 0.
  virtual Result<std::vector<QueueMessage>> Lease(std::string_view queue, uint32_t max,
                                                  std::chrono::milliseconds visibility) = 0;
  // Blocks until `queue` may have a ready message (a Publish, a Retry or a lease expiry is
  // due) or `deadline`; returns at once when one is ready now. Never a busy loop. When the
  // backend cannot be reached it returns early (at most a second later), so the caller's Lease
  // reports the error and the caller backs off.
  virtual void WaitForReady(std::string_view queue, Clock::time_point deadline) = 0;
  // Wakes every WaitForReady caller (shutdown). Not sticky: a call that starts waiting
  // afterwards sleeps until its own deadline, so check your stop flag before waiting.
  virtual void WakeAll() = 0;

  // Keeps the lease open longer: its deadline becomes now + `visibility` (Redis: the server's
  // clock), whether that is earlier or later than before. A consumer whose work may outlast the
  // visibility calls it periodically (the trigger runners do, every visibility / 3), so a short
  // visibility still covers a long invocation while a dead consumer's work is taken over soon.
  // NotFound when the lease was lost (the same rule as Ack); InvalidArgument for visibility <= 0.
  virtual Status Extend(int64_t id, uint32_t attempt, std::chrono::milliseconds visibility) = 0;
  // Ends the lease: the message is gone. NotFound when the lease was lost (see above).
  virtual Status Ack(int64_t id, uint32_t attempt) = 0;
  // Ends the lease with a failure: the message becomes ready again at `visible_at_unix_ms`
  // with last_error = `error`. NotFound when the lease was lost.
  virtual Status Retry(int64_t id, uint32_t attempt, int64_t visible_at_unix_ms,
                       std::string_view error) = 0;
  // Ends the lease by moving the message to `dlq` (another queue name, whose dead-letter list
  // it joins) with `error`. NotFound when the lease was lost. Dead letters are never leased;
  // they leave the list only by ReplayDead.
  virtual Status DeadLetter(int64_t id, uint32_t attempt, std::string_view dlq,
                            std::string_view error) = 0;

  // Counts for `queue`; all zero for a queue never used.
  virtual Result<QueueStats> Stats(std::string_view queue) = 0;
  // Every queue that has or had messages, sorted by name.
  virtual Result<std::vector<QueueStats>> ListQueues() = 0;
  // The dead letters of `dlq`, oldest (first dead-lettered) first, at most `limit`.
  // (store:: because the DeadLetter method above hides the struct in this scope.)
  virtual Result<std::vector<store::DeadLetter>> ListDead(std::string_view dlq, uint32_t limit) = 0;
  // Moves every dead letter of `dlq` back to the queue it came from, ready now with attempt 0
  // (its id is kept, and last_error = the dead-letter error). Returns how many moved. Replays
  // do not count as published.
  virtual Result<uint64_t> ReplayDead(std::string_view dlq) = 0;

  // Async invocation records. PutAsync creates or replaces one; the message carrying the
  // request and its record are written atomically by PublishAsync. InvalidArgument for
  // an empty invocation_id or a status other than queued|running|succeeded|failed.
  // created_unix_ms 0 keeps the stored creation time (now for a new record); updated_unix_ms 0
  // means now. Body and error_message are stored as bytes, exactly. Redis keeps each record
  // for the backend's retention after its last write (a TTL); SQLite until ExpireAsync.
  virtual Result<int64_t> PublishAsync(std::string_view queue, const AsyncRecord& record,
                                       std::string_view body, const QueueHeaders& headers) = 0;
  // PublishAsync guarded by an Idempotency-Key: `key` (already scoped by the caller, e.g.
  // tenant + function + the header's value) is claimed for `ttl` together with the publish, in
  // one transaction/script. When the key is still held, nothing is queued and the answer names
  // the invocation that claimed it (duplicate = true). InvalidArgument for an empty key or a
  // ttl <= 0, besides PublishAsync's checks.
  virtual Result<AsyncPublish> PublishAsyncOnce(std::string_view queue, std::string_view key,
                                                std::chrono::milliseconds ttl,
                                                const AsyncRecord& record, std::string_view body,
                                                const QueueHeaders& headers) = 0;
  virtual Status PutAsync(const AsyncRecord& record) = 0;
  // NotFound for an unknown or expired id.
  virtual Result<AsyncRecord> GetAsync(std::string_view invocation_id) = 0;
  // Ack(id, attempt) and PutAsync(record) atomically, so a finished invocation is
  // never run again after a crash and its result is never lost. NotFound when the lease was
  // lost, and then the record is not written either.
  virtual Status AckWithResult(int64_t id, uint32_t attempt, const AsyncRecord& record) = 0;
  // Deletes finished (succeeded or failed) async records last updated before `before_unix_ms`,
  // and Idempotency-Keys claimed before it. Returns how many records. Redis expires both by
  // TTL and answers 0.
  virtual Result<uint64_t> ExpireAsync(int64_t before_unix_ms) = 0;

  // The embedded backend's settings table (faas/store/settings.h), which lives in the same file;
  // null for Redis, which holds no definitions (a cluster keeps them in PostgreSQL,
  // docs/design/0029-trigger-definitions.md). Owned by the queue.
  virtual SettingsStore* Settings() { return nullptr; }

 protected:
  Queue() = default;
};

}  // namespace faas::store
