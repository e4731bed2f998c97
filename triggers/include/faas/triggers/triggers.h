// Queue triggers (docs/triggers.md): each trigger binds a queue, a Redis stream or an embedded
// store::Queue, to a function, and feeds its messages to the function at least once.
//
//   faas::triggers::TriggerManager mgr({.queue = embedded_queue, .invoke = run_fn});
//   FAAS_RETURN_IF_ERROR(mgr.Start());                  // resumes the stored triggers
//   FAAS_RETURN_IF_ERROR(mgr.Add(spec));                // validated, stored, started
//   std::vector<TriggerStatus> all = mgr.List();
//
// Delivery rules, for both sources:
//   - a message is acknowledged (XACK, Queue::Ack) only after `invoke` reported success, which
//     the caller returns only once the invocation's ledger row is durable;
//   - a failure is retried after an exponential backoff with jitter (Backoff below) between
//     backoff_min and backoff_max; after max_attempts the message, its last error and its attempt
//     count go to the dead-letter queue and the original is acknowledged;
//   - a message that cannot be decoded (a stream entry without a `body` field) is dead-lettered
//     at once with the reason;
//   - at most `concurrency` invocations of one trigger run at a time;
//   - Redis: one consumer group per trigger (created with MKSTREAM at the stream's start `0`
//     when missing); entries pending on a consumer that stopped for longer than the visibility
//     timeout are reclaimed with XAUTOCLAIM; the attempt number is Redis's delivery count;
//     when Redis is unreachable the trigger backs off (capped at backoff_max) and reconnects,
//     logging once per state change, never busy-looping.
//
// Redis in detail. Each trigger has a fetch thread and a writer thread, each with its own
// connection (a redisContext is never shared). The fetch thread runs XREADGROUP … COUNT batch
// BLOCK 1000 … > while fewer than `batch` fetched messages wait for a worker; new entries are
// attempt 1. The field `body` is the payload and every other field becomes a header. The
// writer batches XACKs, dead-letters, and every min(visibility_timeout/2, 1 s) runs XAUTOCLAIM
// (min-idle = visibility_timeout) and refreshes the lag (XINFO GROUPS). A failed entry stays
// pending on this consumer; when its backoff is due it is XCLAIMed again (min-idle 0, which
// increments the delivery count) and redelivered as attempt + 1. An entry reclaimed from
// another consumer gets its attempt from Redis's delivery count (XPENDING). A dead letter is
//   XADD <dlq> * [body <body>] source_id <id> error <error> attempts <n> <other fields…>
// (original fields named body/source_id/error/attempts are not copied), written together
// with the XACK of the original in one Lua script: atomic, and the XACK runs only if the XADD
// did (a failing command inside MULTI/EXEC would still let the XACK run). If the reply is
// lost the writer checks XPENDING before trying again, so a duplicate dead letter is unlikely
// but possible: the DLQ is at least once.
//
// Embedded in detail. The fetch thread leases `batch` messages (Queue::Lease, hidden for
// visibility_timeout) and sleeps in Queue::WaitForReady when none is ready; attempt =
// QueueMessage.attempt; a failure is Queue::Retry with visible_at = now + Backoff; the last one
// Queue::DeadLetter to `dlq`; lag = ready + delayed. One extender thread per trigger extends the
// lease of every held message (fetched or running) every visibility_timeout / 3 (Queue::Extend)
// until its delivery ends. A lease not ended (crash, Stop) expires and the message comes back
// with attempt + 1.
//
// Both: `concurrency` worker threads per trigger are the only callers of `invoke`. A message
// whose delivery count already exceeds max_attempts when it arrives (its earlier deliveries
// were lost, e.g. by consumers that crashed) is dead-lettered without another invocation.
// Both: one extender thread per trigger keeps every held delivery (fetched, running, waiting for
// a retry or its ack) this consumer's every visibility_timeout / 3: embedded, Queue::Extend;
// Redis, an XCLAIM … JUSTID to ourselves of the entries still pending on us (resets their idle
// time, not their delivery count), in one Lua script that leaves entries another consumer took.
// So the visibility timeout only bounds how long a dead consumer's messages wait, not how long
// an invocation may run.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/queue.h"
#include "faas/store/settings.h"

namespace faas::triggers {

struct TriggerSpec {
  std::string name;  // [a-z][a-z0-9-]{0,62}
  std::string function;
  std::string source;         // "redis://HOST:PORT[/DB]" or "embedded"
  std::string stream;         // redis: the stream key
  std::string group;          // redis: consumer group; default "faas-<name>"
  std::string queue;          // embedded: the queue name
  uint32_t batch = 16;        // messages fetched per read
  uint32_t concurrency = 1;   // invocations in flight, 1..1024
  uint32_t max_attempts = 5;  // 1..100
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{30'000};
  std::string dlq;  // default "<stream>.dlq" / "<queue>.dlq"
  // A delivery not finished within this is presumed lost and redelivered (XAUTOCLAIM
  // min-idle-time, embedded lease). Must exceed the function's timeout; default 0 means
  // "function timeout + 30 s", filled in by the caller of Add (NormalizeSpec falls back to
  // 40 s, the default function timeout + 30 s). 100ms..24h; for a redis source it must also
  // exceed backoff_max, because a retry waits out its backoff pending on this consumer.
  std::chrono::milliseconds visibility_timeout{0};
  bool paused = false;  // stored; Pause/Resume change it
};

// Validates and fills defaults (group, dlq, visibility_timeout). InvalidArgument naming every
// problem with its value ("name "Foo" must match …; concurrency 0 must be 1..1024"). Bounds:
// batch 1..1000, backoff 1ms..1h with min <= max, queue and dlq names of an embedded source
// 1..200 bytes, dlq different from the stream/queue.
Status NormalizeSpec(TriggerSpec& spec);
// The stored form: a JSON object with the fields above (durations as *_ms integers).
std::string SpecToJson(const TriggerSpec& spec);
// Parses SpecToJson's output; absent fields keep their defaults. InvalidArgument for non-JSON
// or a field of the wrong type. Does not validate: call NormalizeSpec.
Result<TriggerSpec> SpecFromJson(std::string_view json);

// One delivery of one message to the function.
struct Delivery {
  std::string trigger;
  std::string function;
  std::string queue;       // stream key or embedded queue name
  std::string message_id;  // Redis entry id ("1700000000000-0") or embedded id (decimal)
  uint32_t attempt = 1;    // 1-based
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // other stream fields / headers
};

struct DeliveryResult {
  bool ok = false;
  std::string error;  // for the retry's last_error and the DLQ entry
};

// Runs one delivery to completion (the scheduler invocation, billed and journaled). Called
// concurrently from trigger threads.
using InvokeFn = std::function<DeliveryResult(const Delivery&)>;

struct TriggerStatus {
  TriggerSpec spec;
  // running | paused | disconnected (the source failed: Redis unreachable or answering errors,
  // or the queue database failing; see last_error) | stopped (by Stop). paused wins over
  // disconnected.
  std::string state;
  std::string last_error;  // of the source (e.g. Redis unreachable), "" if healthy
  // Messages not yet delivered (-1: unknown). Redis: the group's XINFO "lag" (refreshed every
  // min(visibility/2, 1 s)); embedded: ready + delayed.
  int64_t lag = -1;
  uint32_t in_flight = 0;
  uint64_t delivered = 0;  // acknowledged after success
  uint64_t failed = 0;     // failed attempts
  uint64_t dead_lettered = 0;
};

struct ManagerOptions {
  // Embedded queues; not owned; must outlive the manager. Null: Redis triggers only.
  store::Queue* queue = nullptr;
  // Where the definitions are stored; not owned; must outlive the manager. Null: the embedded
  // queue's settings table (queue->Settings()) when there is one, else nothing is stored. A
  // cluster passes the PostgreSQL one (store::OpenPgSettings).
  store::SettingsStore* settings = nullptr;
  InvokeFn invoke;            // required; called concurrently from trigger threads
  std::string consumer_name;  // Redis consumer name; default "faasd-<hostname>-<pid>"
  // The settings kind the definitions are stored under (PutSetting/ListSettings), so two
  // managers on one database (user triggers, the gateway's internal async machinery) keep
  // separate lists.
  std::string settings_kind = "trigger";
  // > 0: Start() also runs Resync() this often, for definitions stored where other processes
  // change them too. 0: never (faasd's gateways call Resync when PostgreSQL announces a change,
  // and on --registry-resync, instead: daemon/src/follow.h).
  std::chrono::milliseconds resync_interval{0};
};

// Threads per trigger: 1 fetch + `concurrency` workers (+ 1 writer for Redis).
class TriggerManager {
 public:
  explicit TriggerManager(ManagerOptions options);
  // Stop(0), then waits for invocations that Stop abandoned to return (their outcome is
  // dropped): `invoke` must return eventually, as the scheduler's deadlines guarantee.
  ~TriggerManager();
  TriggerManager(const TriggerManager&) = delete;
  TriggerManager& operator=(const TriggerManager&) = delete;

  // Loads and starts the stored triggers (those not running yet). A
  // stored definition that no longer validates is logged (trigger.bad_definition) and skipped.
  // Errors: the database's; FailedPrecondition after Stop.
  Status Start();
  // Validates, stores and starts a trigger. InvalidArgument (NormalizeSpec), AlreadyExists
  // for a taken name, FailedPrecondition for an embedded source without ManagerOptions.queue
  // or after Stop. An unreachable Redis is not an error: the trigger starts "disconnected".
  Status Add(TriggerSpec spec);
  // NotFound for an unknown name. Both are stored. Pause stops fetching and returns once the
  // fetch loop has parked (a Redis read already blocking ends first, ≤ ~1 s); deliveries
  // already fetched still run and finish, and retries wait until Resume.
  Status Pause(const std::string& name);
  Status Resume(const std::string& name);
  // Stops the trigger, waits for its deliveries in flight, forgets it (and its stored
  // definition). Its consumer group and messages stay in Redis. NotFound for an unknown name.
  Status Delete(const std::string& name);
  // Makes the running triggers match the stored definitions, as changed by another process on a
  // shared store: starts the new ones, stops and forgets the deleted ones, restarts the changed
  // ones, and pauses or resumes those whose `paused` differs (nothing is written). Errors: the
  // store's (nothing changes then); FailedPrecondition after Stop.
  Status Resync();
  // Sorted by name. Stopped triggers stay listed (state "stopped").
  std::vector<TriggerStatus> List() const;
  // NotFound for an unknown name.
  Result<TriggerStatus> Get(const std::string& name) const;
  // Stops fetching, waits up to `grace` for deliveries in flight (and, for Redis, for their
  // acks to be written); unfinished ones stay unacknowledged and are redelivered later.
  // Fetched messages not yet started are not delivered. Final: later control calls answer
  // FailedPrecondition. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Exponential backoff with jitter before retrying after failed attempt `attempt` (1-based;
// 0 counts as 1): d = min(max_delay, min_delay * 2^(attempt-1)); uniform in
// [max(min_delay, d/2), d]. Never overflows. Thread-safe.
std::chrono::milliseconds Backoff(uint32_t attempt, std::chrono::milliseconds min_delay,
                                  std::chrono::milliseconds max_delay);

}  // namespace faas::triggers
