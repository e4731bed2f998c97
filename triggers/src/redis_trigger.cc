// A trigger on a Redis stream, through one consumer group.
//
// Two connections, each owned by one thread:
//   fetch:  XGROUP CREATE stream group 0 MKSTREAM (BUSYGROUP ignored), then
//           XREADGROUP GROUP group consumer COUNT batch BLOCK 1000 STREAMS stream >
//           while there is room for `batch` more jobs. New entries are attempt 1.
//   writer: everything else, so that workers never wait on Redis and never share a context:
//           - XACK of the entries whose invocation succeeded, batched into one command;
//           - dead letters: XADD dlq * body … source_id … error … attempts … <other fields>,
//             and XACK of the original, in one Lua script (see kDeadLetterScript);
//           - retries: a failed entry stays pending on us; when its backoff is due the writer
//             XCLAIMs it to us with min-idle 0 (which increments Redis's delivery count) and
//             hands it to the workers again as attempt + 1;
//           - every min(visibility/2, 1 s): XAUTOCLAIM … min-idle=visibility to take over
//             entries left pending by dead consumers (their attempt is Redis's delivery count,
//             read with XPENDING stream group id id 1), and XINFO GROUPS for the lag.
// `held_` lists the entries this trigger has fetched and not finished (queued, running,
// waiting for a retry or for the writer), so that XAUTOCLAIM, which also takes our own idle
// entries, never delivers one of them twice.
// A third connection, the extender thread's (trigger.h), keeps the held entries ours: every
// visibility / 3 it resets their idle time (kExtendScript), so another consumer's XAUTOCLAIM
// (min-idle = visibility) does not take over, and run a second time, a delivery that outlasts
// the visibility timeout. A dead consumer's entries are not extended and are taken over.
#include <algorithm>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "faas/base/log.h"
#include "faas/redis/client.h"

#include "trigger.h"

namespace faas::triggers {
namespace {

using redis::BlockSigpipeInThisThread;
using redis::FdSlot;
using redis::IsArray;
using redis::IsTransientError;
using redis::RedisAddress;
using redis::RedisClient;
using redis::RedisReply;
using redis::ReplyError;
using redis::ReplyString;
using std::chrono::milliseconds;

constexpr milliseconds kBlock{1000};  // XREADGROUP BLOCK: bounds pause latency
constexpr milliseconds kConnectTimeout{1000};
constexpr milliseconds kIoTimeout{5000};  // Redis answers in µs; this is a dead peer
constexpr milliseconds kMaxMaintenancePeriod{1000};

// Dead-letters one entry atomically: the XACK runs only if the XADD succeeded (a Lua error
// aborts the script, unlike a failed command inside MULTI/EXEC, which would still run the
// XACK and lose the message). KEYS: dlq, stream. ARGV: group, id, field, value, ….
// If the connection drops before the reply, the writer cannot tell whether the script ran;
// it asks XPENDING before running it again, so a duplicate dead letter needs the reply to be
// lost *and* the entry to be pending again (reclaimed) in between.
constexpr const char* kDeadLetterScript =
    "local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))\n"
    "redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])\n"
    "return id\n";

// Resets the idle time of the entries still pending on this consumer: XCLAIM to ourselves with
// min-idle 0 and JUSTID, which leaves the delivery count alone. An entry that another consumer
// took over (or that was acknowledged) is left alone and returned, so it is never taken back.
// Atomic, so nothing is claimed between the check and the claim. KEYS: stream. ARGV: group,
// consumer, id, ….
constexpr const char* kExtendScript =
    "local lost = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])\n"
    "  if #p > 0 then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
    "  else\n"
    "    lost[#lost + 1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "return lost\n";
// Entries extended per script call, so one call never blocks Redis for long.
constexpr std::size_t kExtendChunk = 256;

// Field names of a dead-letter entry; an original field of the same name is not copied.
bool IsReservedField(std::string_view name) {
  return name == "body" || name == "source_id" || name == "error" || name == "attempts";
}

class RedisTrigger final : public Trigger {
 public:
  RedisTrigger(TriggerSpec spec, TriggerEnv env, RedisAddress addr)
      : Trigger(std::move(spec), std::move(env)), addr_(std::move(addr)) {
    maintenance_period_ =
        std::clamp(spec_.visibility_timeout / 2, milliseconds(10), kMaxMaintenancePeriod);
  }

 private:
  // One outcome for the writer to apply.
  struct Op {
    enum class Kind { kAck, kDrop, kDeadLetter };
    Kind kind = Kind::kAck;
    std::string id;
    uint32_t attempt = 0;
    bool has_body = false;
    std::string body;
    std::vector<std::pair<std::string, std::string>> fields;  // the other fields
    std::string error;
    bool sent = false;  // a previous try may have run (reply lost)
  };
  struct RetryItem {
    std::string id;
    uint32_t attempt = 0;  // of the failed delivery
  };

  // ---- fetch thread ----

  void FetchLoop() override {
    BlockSigpipeInThisThread();
    RedisClient conn;
    uint32_t failures = 0;
    bool group_ready = false;
    // Records the failure and sleeps the backoff; false when stopping.
    auto fail = [&](const std::string& error) {
      group_ready = false;
      if (stopping_) {
        return false;
      }
      SetUnhealthy(kFetcher, error);
      return BackoffWait(++failures);
    };
    while (WaitForRoom()) {
      if (!conn.Connected()) {
        if (Status s = conn.Connect(addr_, {.connect = kConnectTimeout, .io = kBlock + kIoTimeout},
                                    &fetch_slot_);
            !s.ok()) {
          if (!fail(s.message())) {
            break;
          }
          continue;
        }
      }
      if (!group_ready) {
        auto r = conn.Command({"XGROUP", "CREATE", spec_.stream, spec_.group, "0", "MKSTREAM"});
        if (!r.ok()) {
          if (!fail(r.status().message())) {
            break;
          }
          continue;
        }
        if (std::string err = ReplyError(r->get()); !err.empty() && !err.starts_with("BUSYGROUP")) {
          if (!fail("XGROUP CREATE " + spec_.stream + " " + spec_.group + ": " + err)) {
            break;
          }
          continue;
        }
        group_ready = true;
      }
      auto r = conn.Command({"XREADGROUP", "GROUP", spec_.group, env_.consumer_name, "COUNT",
                             std::to_string(spec_.batch), "BLOCK", std::to_string(kBlock.count()),
                             "STREAMS", spec_.stream, ">"});
      if (!r.ok()) {
        if (!fail(r.status().message())) {
          break;
        }
        continue;
      }
      if (std::string err = ReplyError(r->get()); !err.empty()) {
        // NOGROUP: the stream or the group was deleted; the next round creates it again.
        if (!fail("XREADGROUP " + spec_.stream + ": " + err)) {
          break;
        }
        continue;
      }
      failures = 0;
      SetHealthy(kFetcher);
      if (IsArray(r->get())) {
        TakeEntries(**r, /*attempt=*/1, /*skip_held=*/true);
      }
    }
  }

  // Turns the [[stream, [[id, [field, value, …]], …]]] of XREADGROUP into jobs.
  void TakeEntries(const redisReply& streams, uint32_t attempt, bool skip_held) {
    std::vector<std::pair<const redisReply*, uint32_t>> entries;
    for (std::size_t i = 0; i < streams.elements; ++i) {
      const redisReply* s = streams.element[i];
      if (IsArray(s) && s->elements == 2 && IsArray(s->element[1])) {
        for (std::size_t k = 0; k < s->element[1]->elements; ++k) {
          entries.emplace_back(s->element[1]->element[k], attempt);
        }
      }
    }
    Dispatch(entries, skip_held);
  }

  // Hands entries ([id, fields]) to the workers, or to the DLQ when they have no body.
  void Dispatch(const std::vector<std::pair<const redisReply*, uint32_t>>& entries,
                bool skip_held) {
    std::vector<Job> jobs;
    std::vector<Op> ops;
    {
      std::lock_guard lock(mu_);
      for (const auto& [e, attempt] : entries) {
        if (!IsArray(e) || e->elements < 2) {
          continue;
        }
        std::string id = ReplyString(e->element[0]);
        if (id.empty() || (!held_.insert(id).second && skip_held)) {
          continue;
        }
        Op op;
        op.id = id;
        op.attempt = attempt;
        const redisReply* f = e->element[1];
        if (!IsArray(f)) {
          // Deleted from the stream while pending: nothing to deliver, only the PEL to clean.
          op.kind = Op::Kind::kDrop;
          ops.push_back(std::move(op));
          continue;
        }
        for (std::size_t i = 0; i + 1 < f->elements; i += 2) {
          std::string name = ReplyString(f->element[i]);
          std::string value = ReplyString(f->element[i + 1]);
          if (name == "body" && !op.has_body) {
            op.has_body = true;
            op.body = std::move(value);
          } else {
            op.fields.emplace_back(std::move(name), std::move(value));
          }
        }
        if (!op.has_body) {
          op.kind = Op::Kind::kDeadLetter;
          op.error = "undecodable: no body field";
          FAAS_LOG(log_, warn, "trigger.undecodable", {"trigger", spec_.name}, {"id", id},
                   {"error", op.error});
          ops.push_back(std::move(op));
          continue;
        }
        Job j;
        j.delivery.trigger = spec_.name;
        j.delivery.function = spec_.function;
        j.delivery.queue = spec_.stream;
        j.delivery.message_id = std::move(op.id);
        j.delivery.attempt = attempt;
        j.delivery.body = std::move(op.body);
        j.delivery.headers = std::move(op.fields);
        jobs.push_back(std::move(j));
      }
      for (auto& op : ops) {
        ops_.push_back(std::move(op));
      }
    }
    if (!ops.empty()) {
      writer_cv_.notify_all();
    }
    Enqueue(std::move(jobs));
  }

  // ---- worker side: hand outcomes to the writer ----

  void Ack(const Job& job) override {
    Op op;
    op.kind = Op::Kind::kAck;
    op.id = job.delivery.message_id;
    Push(std::move(op));
  }

  void DeadLetter(const Job& job, const std::string& error) override {
    Op op;
    op.kind = Op::Kind::kDeadLetter;
    op.id = job.delivery.message_id;
    op.attempt = job.delivery.attempt;
    op.has_body = true;
    op.body = job.delivery.body;
    op.fields = job.delivery.headers;
    op.error = error;
    Push(std::move(op));
  }

  void RetryLater(const Job& job, const std::string& /*error*/,
                  std::chrono::milliseconds delay) override {
    {
      std::lock_guard lock(mu_);
      retries_.emplace(Clock::now() + delay,
                       RetryItem{job.delivery.message_id, job.delivery.attempt});
    }
    writer_cv_.notify_all();
  }

  void Push(Op op) {
    {
      std::lock_guard lock(mu_);
      ops_.push_back(std::move(op));
    }
    writer_cv_.notify_all();
  }

  void WakeFetcher() override {
    writer_cv_.notify_all();  // pause holds back retries and reclaims
    if (stopping_) {
      fetch_slot_.Shutdown();  // ends a blocking XREADGROUP now
    }
  }

  int64_t Lag() const override { return lag_; }

  // ---- extender thread ----

  void ExtendHeld() override {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(mu_);
      ids.assign(held_.begin(), held_.end());
    }
    for (std::size_t at = 0; at < ids.size(); at += kExtendChunk) {
      if (!extend_conn_.Connected()) {
        if (Status s = extend_conn_.Connect(addr_, {.connect = kConnectTimeout, .io = kIoTimeout});
            !s.ok()) {
          return;  // the fetcher and writer report the outage; next round tries again
        }
      }
      std::vector<std::string> argv = {"EVAL",       kExtendScript, "1",
                                       spec_.stream, spec_.group,   env_.consumer_name};
      const std::size_t end = std::min(ids.size(), at + kExtendChunk);
      argv.insert(argv.end(), ids.begin() + static_cast<std::ptrdiff_t>(at),
                  ids.begin() + static_cast<std::ptrdiff_t>(end));
      auto r = extend_conn_.Command(argv);
      if (!r.ok()) {
        return;
      }
      if (std::string err = ReplyError(r->get()); !err.empty()) {
        FAAS_LOG(log_, warn, "trigger.extend_failed", {"trigger", spec_.name}, {"error", err});
        return;
      }
      if (!IsArray(r->get())) {
        continue;
      }
      for (std::size_t i = 0; i < (*r)->elements; ++i) {
        // Acknowledged meanwhile (the writer's XACK raced us), or taken over: either way no
        // longer ours to extend; the writer forgets it when its delivery ends.
        FAAS_LOG(log_, debug, "trigger.extend_lost", {"trigger", spec_.name},
                 {"id", ReplyString((*r)->element[i])});
      }
    }
  }

  // ---- writer thread ----

  void StartExtra() override {
    writer_ = std::thread([this] { WriterLoop(); });
  }

  bool DrainedLocked() const override { return ops_.empty() && !applying_; }

  void StopExtra() override {
    {
      std::lock_guard lock(mu_);
      writer_stop_ = true;
    }
    writer_cv_.notify_all();
    writer_slot_.Shutdown();
    if (writer_.joinable()) {
      writer_.join();
    }
  }

  void WriterLoop() {
    BlockSigpipeInThisThread();
    RedisClient conn;
    uint32_t failures = 0;
    Clock::time_point next_maintenance = Clock::now();
    std::string cursor = "0-0";
    std::unique_lock lock(mu_);
    for (;;) {
      auto next_wake = [&] {
        Clock::time_point t = stopping_ ? Clock::time_point::max() : next_maintenance;
        if (!retries_.empty() && !paused_ && !stopping_) {
          t = std::min(t, retries_.begin()->first);
        }
        return t;
      };
      while (!writer_stop_ && ops_.empty() && Clock::now() < next_wake()) {
        if (Clock::time_point t = next_wake(); t == Clock::time_point::max()) {
          writer_cv_.wait(lock);
        } else {
          writer_cv_.wait_until(lock, t);
        }
      }
      if (writer_stop_) {
        return;  // FinishStop: anything left is abandoned and will be redelivered
      }
      std::deque<Op> ops = std::move(ops_);
      ops_.clear();
      std::vector<RetryItem> due;
      Clock::time_point now = Clock::now();
      if (!paused_ && !stopping_) {
        while (!retries_.empty() && retries_.begin()->first <= now) {
          due.push_back(std::move(retries_.begin()->second));
          retries_.erase(retries_.begin());
        }
      }
      bool maintain = !stopping_ && now >= next_maintenance;
      applying_ = true;
      lock.unlock();

      Status s =
          conn.Connected()
              ? OkStatus()
              : conn.Connect(addr_, {.connect = kConnectTimeout, .io = kIoTimeout}, &writer_slot_);
      if (s.ok()) {
        s = ApplyOps(conn, ops);
      }
      if (s.ok()) {
        s = ClaimRetries(conn, due);
      }
      if (s.ok() && maintain) {
        bool more = false;
        s = Maintain(conn, cursor, more);
        if (s.ok()) {
          next_maintenance = Clock::now() + (more ? milliseconds(10) : maintenance_period_);
        }
      }
      if (s.ok()) {
        failures = 0;
        SetHealthy(kWriter);
      } else if (!writer_stop_) {
        SetUnhealthy(kWriter, s.message());
      }

      lock.lock();
      applying_ = false;
      if (!s.ok()) {
        if (stopping_) {
          // Shutting down with Redis away: leave the rest pending; it is redelivered later.
          ops.clear();
        }
        for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
          ops_.push_front(std::move(*it));
        }
        for (auto& item : due) {
          retries_.emplace(now, std::move(item));
        }
        state_cv_.notify_all();
        // Stopping cuts the backoff short: the next round drops what cannot be written.
        writer_cv_.wait_for(lock, Backoff(++failures, spec_.backoff_min, spec_.backoff_max),
                            [&] { return writer_stop_ || stopping_; });
        continue;
      }
      state_cv_.notify_all();  // maybe drained
    }
  }

  // Applies (and removes from `ops`) acks, then dead letters in order. On a connection error
  // the rest stays in `ops`.
  Status ApplyOps(RedisClient& conn, std::deque<Op>& ops) {
    std::vector<std::string> xack = {"XACK", spec_.stream, spec_.group};
    uint64_t acked = 0;
    for (const Op& op : ops) {
      if (op.kind != Op::Kind::kDeadLetter) {
        xack.push_back(op.id);
        acked += op.kind == Op::Kind::kAck ? 1 : 0;
      }
    }
    if (xack.size() > 3) {
      FAAS_ASSIGN_OR_RETURN(RedisReply r, conn.Command(xack));
      if (std::string err = ReplyError(r.get()); IsTransientError(err)) {
        return UnavailableError("XACK " + spec_.stream + ": " + err);  // kept, tried again
      } else if (!err.empty()) {
        // The group or stream is gone (or is no stream): nothing is left to acknowledge.
        FAAS_LOG(log_, warn, "trigger.ack_failed", {"trigger", spec_.name}, {"error", err});
      }
      std::lock_guard lock(mu_);
      for (std::size_t i = 3; i < xack.size(); ++i) {
        held_.erase(xack[i]);
      }
      delivered_ += acked;
      std::erase_if(ops, [](const Op& op) { return op.kind != Op::Kind::kDeadLetter; });
    }
    while (!ops.empty()) {
      Op& op = ops.front();
      FAAS_RETURN_IF_ERROR(DeadLetterOne(conn, op));
      ops.pop_front();
    }
    return OkStatus();
  }

  Status DeadLetterOne(RedisClient& conn, Op& op) {
    if (op.sent) {
      // The previous try lost its reply: if the entry is no longer pending, the script ran.
      FAAS_ASSIGN_OR_RETURN(
          RedisReply p, conn.Command({"XPENDING", spec_.stream, spec_.group, op.id, op.id, "1"}));
      if (IsArray(p.get()) && p->elements == 0) {
        Finish(op, "");
        return OkStatus();
      }
    }
    std::vector<std::string> argv = {"EVAL",       kDeadLetterScript, "2",  spec_.dlq,
                                     spec_.stream, spec_.group,       op.id};
    if (op.has_body) {
      argv.insert(argv.end(), {"body", op.body});
    }
    argv.insert(argv.end(),
                {"source_id", op.id, "error", op.error, "attempts", std::to_string(op.attempt)});
    for (const auto& [name, value] : op.fields) {
      if (!IsReservedField(name)) {
        argv.insert(argv.end(), {name, value});
      }
    }
    op.sent = true;
    FAAS_ASSIGN_OR_RETURN(RedisReply r, conn.Command(argv));
    std::string err = ReplyError(r.get());
    if (IsTransientError(err)) {
      return UnavailableError("dead-letter " + op.id + " to " + spec_.dlq + ": " + err);
    }
    Finish(op, err);
    return OkStatus();
  }

  // A dead letter is done (or failed with an error reply, and then the entry stays pending to
  // be reclaimed and tried again after the visibility timeout).
  void Finish(const Op& op, const std::string& err) {
    {
      std::lock_guard lock(mu_);
      held_.erase(op.id);
    }
    if (!err.empty()) {
      FAAS_LOG(log_, err, "trigger.dead_letter_failed", {"trigger", spec_.name}, {"id", op.id},
               {"dlq", spec_.dlq}, {"error", err});
      return;
    }
    ++dead_lettered_;
    FAAS_LOG(log_, info, "trigger.dead_lettered", {"trigger", spec_.name}, {"id", op.id},
             {"attempts", op.attempt}, {"dlq", spec_.dlq}, {"error", op.error});
  }

  // XCLAIMs due retries (min-idle 0: ours anyway) and redelivers them. Claimed ones leave
  // `due`; on a connection error the rest stays.
  Status ClaimRetries(RedisClient& conn, std::vector<RetryItem>& due) {
    if (due.empty()) {
      return OkStatus();
    }
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(due.size());
    for (const RetryItem& item : due) {
      cmds.push_back({"XCLAIM", spec_.stream, spec_.group, env_.consumer_name, "0", item.id});
    }
    FAAS_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, conn.Pipeline(cmds));
    std::vector<std::pair<const redisReply*, uint32_t>> entries;
    std::vector<std::string> gone;
    std::vector<RetryItem> again;
    std::string transient;
    for (std::size_t i = 0; i < due.size(); ++i) {
      const redisReply* r = replies[i].get();
      if (IsArray(r) && r->elements > 0) {
        // Tracked rather than read back: our own XAUTOCLAIM may have bumped Redis's count
        // while the entry waited here.
        entries.emplace_back(r->element[0], due[i].attempt + 1);
      } else if (std::string err = ReplyError(r); IsTransientError(err)) {
        transient = err;
        again.push_back(std::move(due[i]));
      } else {
        // Acknowledged or deleted meanwhile (or an error reply): nothing to redeliver.
        if (!err.empty()) {
          FAAS_LOG(log_, warn, "trigger.claim_failed", {"trigger", spec_.name}, {"id", due[i].id},
                   {"error", err});
        }
        gone.push_back(due[i].id);
      }
    }
    {
      std::lock_guard lock(mu_);
      for (const auto& id : gone) {
        held_.erase(id);
      }
    }
    Dispatch(entries, /*skip_held=*/false);
    due = std::move(again);
    if (!due.empty()) {
      return UnavailableError("XCLAIM " + spec_.stream + ": " + transient);
    }
    return OkStatus();
  }

  // XAUTOCLAIM one page of entries idle for the visibility timeout, then refresh the lag.
  // `more` is set when another page should follow soon.
  Status Maintain(RedisClient& conn, std::string& cursor, bool& more) {
    bool room = false;
    {
      std::lock_guard lock(mu_);
      room = !paused_ && jobs_.size() < spec_.batch;
    }
    if (room) {
      FAAS_ASSIGN_OR_RETURN(
          RedisReply r, conn.Command({"XAUTOCLAIM", spec_.stream, spec_.group, env_.consumer_name,
                                      std::to_string(spec_.visibility_timeout.count()), cursor,
                                      "COUNT", std::to_string(spec_.batch)}));
      // Redis 7: [next cursor, [[id, fields], …], [deleted ids]]; 6.2 has no third element.
      if (IsArray(r.get()) && r->elements >= 2 && IsArray(r->element[1])) {
        cursor = ReplyString(r->element[0]);
        if (cursor.empty()) {
          cursor = "0-0";
        }
        more = cursor != "0-0";
        FAAS_RETURN_IF_ERROR(Reclaim(conn, *r->element[1]));
      } else if (std::string err = ReplyError(r.get()); !err.empty()) {
        // NOGROUP before the fetch loop created the group: nothing to reclaim yet.
        FAAS_LOG(log_, debug, "trigger.autoclaim_failed", {"trigger", spec_.name}, {"error", err});
        cursor = "0-0";
      }
    }
    return RefreshLag(conn);
  }

  Status Reclaim(RedisClient& conn, const redisReply& claimed) {
    std::vector<const redisReply*> fresh;
    {
      std::lock_guard lock(mu_);
      for (std::size_t i = 0; i < claimed.elements; ++i) {
        const redisReply* e = claimed.element[i];
        if (IsArray(e) && e->elements >= 2 && !held_.contains(ReplyString(e->element[0]))) {
          fresh.push_back(e);
        }
      }
    }
    if (fresh.empty()) {
      return OkStatus();
    }
    // The attempt of an entry a dead consumer left behind is Redis's delivery count, which
    // XAUTOCLAIM just incremented.
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(fresh.size());
    for (const redisReply* e : fresh) {
      std::string id = ReplyString(e->element[0]);
      cmds.push_back({"XPENDING", spec_.stream, spec_.group, id, id, "1"});
    }
    FAAS_ASSIGN_OR_RETURN(std::vector<RedisReply> counts, conn.Pipeline(cmds));
    std::vector<std::pair<const redisReply*, uint32_t>> entries;
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      uint32_t attempt = 1;
      const redisReply* c = counts[i].get();
      if (IsArray(c) && c->elements == 1 && IsArray(c->element[0]) &&
          c->element[0]->elements == 4 && c->element[0]->element[3]->type == REDIS_REPLY_INTEGER) {
        attempt = static_cast<uint32_t>(
            std::clamp<long long>(c->element[0]->element[3]->integer, 1, UINT32_MAX));
      }
      entries.emplace_back(fresh[i], attempt);
    }
    FAAS_LOG(log_, info, "trigger.reclaimed", {"trigger", spec_.name}, {"count", fresh.size()});
    Dispatch(entries, /*skip_held=*/true);
    return OkStatus();
  }

  // XINFO GROUPS: "lag" (Redis 7; nil when Redis cannot tell), else XLEN - "entries-read",
  // else unknown.
  Status RefreshLag(RedisClient& conn) {
    FAAS_ASSIGN_OR_RETURN(
        std::vector<RedisReply> r,
        conn.Pipeline({{"XINFO", "GROUPS", spec_.stream}, {"XLEN", spec_.stream}}));
    int64_t lag = -1;
    const redisReply* groups = r[0].get();
    for (std::size_t g = 0; IsArray(groups) && g < groups->elements; ++g) {
      const redisReply* info = groups->element[g];
      if (!IsArray(info)) {
        continue;
      }
      const redisReply* lag_field = nullptr;
      const redisReply* read_field = nullptr;
      bool ours = false;
      for (std::size_t i = 0; i + 1 < info->elements; i += 2) {
        std::string key = ReplyString(info->element[i]);
        const redisReply* v = info->element[i + 1];
        if (key == "name") {
          ours = ReplyString(v) == spec_.group;
        } else if (key == "lag") {
          lag_field = v;
        } else if (key == "entries-read") {
          read_field = v;
        }
      }
      if (!ours) {
        continue;
      }
      if (lag_field != nullptr && lag_field->type == REDIS_REPLY_INTEGER) {
        lag = lag_field->integer;
      } else if (read_field != nullptr && read_field->type == REDIS_REPLY_INTEGER &&
                 r[1]->type == REDIS_REPLY_INTEGER) {
        lag = std::max<int64_t>(0, r[1]->integer - read_field->integer);
      }
    }
    lag_ = lag;
    return OkStatus();
  }

  const RedisAddress addr_;
  milliseconds maintenance_period_;
  FdSlot fetch_slot_;
  FdSlot writer_slot_;
  RedisClient extend_conn_;  // the extender thread's own
  std::thread writer_;
  std::condition_variable writer_cv_;  // with mu_: ops, due retries, pause, stop
  // Guarded by mu_:
  std::unordered_set<std::string> held_;
  std::deque<Op> ops_;
  bool applying_ = false;
  std::multimap<Clock::time_point, RetryItem> retries_;
  std::atomic<bool> writer_stop_{false};
  std::atomic<int64_t> lag_{-1};
};

}  // namespace

std::unique_ptr<Trigger> MakeRedisTrigger(TriggerSpec spec, TriggerEnv env) {
  auto addr = redis::ParseRedisUrl(spec.source);
  FAAS_CHECK(addr.ok());  // NormalizeSpec accepted it
  return std::make_unique<RedisTrigger>(std::move(spec), std::move(env), std::move(addr).value());
}

}  // namespace faas::triggers
