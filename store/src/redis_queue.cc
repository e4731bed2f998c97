// The queue on Redis Streams (faas/store/redis_queue.h). The state changes are the Lua scripts
// of redis_queue_scripts.h; this file holds the connections, the argument checks shared with the
// SQLite queue (queue_internal) and the decoding of the replies.
#include "faas/store/redis_queue.h"

#include <openssl/sha.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <utility>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/redis/client.h"

#include "queue_internal.h"
#include "redis_queue_scripts.h"

namespace faas::store {
namespace {

using queue_internal::CheckAsyncRecord;
using queue_internal::CheckIdempotency;
using queue_internal::CheckQueueName;
using queue_internal::HeadersFromJson;
using queue_internal::HeadersToJson;
using queue_internal::LeaseLost;
using queue_internal::LeaseVisibilityMs;
using queue_internal::Log;
using queue_internal::Quote;
using queue_internal::ToU32;
using queue_internal::ToU64;
using redis::RedisClient;
using redis::RedisReply;

// Longest XREAD BLOCK of one WaitForReady round: below the connection's read timeout, and short
// enough that a wait notices an unreachable Redis within a second or two.
constexpr int64_t kMaxBlockMs = 1000;

// A script and the SHA-1 that EVALSHA names it by.
struct Script {
  std::string text;
  std::string sha;
};

Script MakeScript(const char* body) {
  Script s;
  s.text = std::string(redis_scripts::kPrelude) + body;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.text.data()), s.text.size(), digest);
  char hex[3];
  for (unsigned char b : digest) {
    std::snprintf(hex, sizeof(hex), "%02x", b);
    s.sha += hex;
  }
  return s;
}

int64_t Int(const redisReply* r) {
  if (r == nullptr) {
    return 0;
  }
  if (r->type == REDIS_REPLY_INTEGER) {
    return r->integer;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    return std::strtoll(std::string(r->str, r->len).c_str(), nullptr, 10);
  }
  return 0;
}

QueueHeaders DecodeHeaders(const std::string& text, std::string_view what) {
  std::optional<QueueHeaders> h = HeadersFromJson(text);
  if (!h) {
    FAAS_LOG(Log(), err, "queue.headers_corrupt", {"what", what});
    return {};
  }
  return std::move(*h);
}

// The 16 ARGV values of put_record (redis_queue_scripts.h).
void AppendRecord(std::vector<std::string>& argv, const AsyncRecord& r,
                  std::chrono::milliseconds ttl) {
  argv.insert(argv.end(),
              {r.invocation_id, r.function, r.tenant, r.status, std::to_string(r.http_status),
               HeadersToJson(r.headers), r.body, r.body_truncated ? "1" : "0", r.error_code,
               r.error_message, std::to_string(r.attempts), r.callback_url, r.callback_status,
               std::to_string(r.created_unix_ms), std::to_string(r.updated_unix_ms),
               std::to_string(std::max<int64_t>(ttl.count(), 1))});
}

class RedisQueue final : public Queue {
 public:
  RedisQueue(redis::RedisAddress addr, RedisQueueOptions options)
      : addr_(std::move(addr)),
        options_(std::move(options)),
        publish_(MakeScript(redis_scripts::kPublish)),
        publish_async_(MakeScript(redis_scripts::kPublishAsync)),
        publish_async_once_(MakeScript(redis_scripts::kPublishAsyncOnce)),
        lease_(MakeScript(redis_scripts::kLease)),
        probe_(MakeScript(redis_scripts::kProbe)),
        ack_(MakeScript(redis_scripts::kAck)),
        ack_with_result_(MakeScript(redis_scripts::kAckWithResult)),
        extend_(MakeScript(redis_scripts::kExtend)),
        retry_(MakeScript(redis_scripts::kRetry)),
        dead_letter_(MakeScript(redis_scripts::kDeadLetter)),
        list_dead_(MakeScript(redis_scripts::kListDead)),
        replay_dead_(MakeScript(redis_scripts::kReplayDead)),
        stats_(MakeScript(redis_scripts::kStats)) {}

  std::string_view Backend() const override { return "redis"; }

  Result<int64_t> Publish(std::string_view queue, std::string_view body,
                          const QueueHeaders& headers, int64_t visible_at_unix_ms) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
    FAAS_ASSIGN_OR_RETURN(
        RedisReply r, Eval(publish_, {std::string(queue), std::string(body), HeadersToJson(headers),
                                      std::to_string(visible_at_unix_ms)}));
    return Int(r.get());
  }

  Result<std::vector<QueueMessage>> Lease(std::string_view queue, uint32_t max,
                                          std::chrono::milliseconds visibility) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
    FAAS_ASSIGN_OR_RETURN(const int64_t visibility_ms, LeaseVisibilityMs(visibility));
    std::vector<QueueMessage> out;
    if (max == 0) {
      return out;
    }
    FAAS_ASSIGN_OR_RETURN(RedisReply r,
                          Eval(lease_, {std::string(queue), std::to_string(max),
                                        std::to_string(visibility_ms), options_.consumer}));
    if (!redis::IsArray(r.get())) {
      return out;
    }
    for (std::size_t i = 0; i + 6 <= r->elements; i += 6) {
      QueueMessage m;
      m.id = Int(r->element[i]);
      m.queue = std::string(queue);
      m.body = redis::ReplyString(r->element[i + 1]);
      m.headers =
          DecodeHeaders(redis::ReplyString(r->element[i + 2]), "message " + std::to_string(m.id));
      m.attempt = ToU32(Int(r->element[i + 3]));
      m.enqueued_unix_ms = Int(r->element[i + 4]);
      m.last_error = redis::ReplyString(r->element[i + 5]);
      out.push_back(std::move(m));
    }
    return out;
  }

  void WaitForReady(std::string_view queue, Clock::time_point deadline) override;
  void WakeAll() override;

  Status Extend(int64_t id, uint32_t attempt, std::chrono::milliseconds visibility) override {
    FAAS_ASSIGN_OR_RETURN(const int64_t visibility_ms, LeaseVisibilityMs(visibility));
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(extend_, {std::to_string(id), std::to_string(attempt),
                                                       std::to_string(visibility_ms)}));
    return Int(r.get()) == 1 ? OkStatus() : LeaseLost(id, attempt);
  }

  Status Ack(int64_t id, uint32_t attempt) override {
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(ack_, {std::to_string(id), std::to_string(attempt)}));
    return Int(r.get()) == 1 ? OkStatus() : LeaseLost(id, attempt);
  }

  Status Retry(int64_t id, uint32_t attempt, int64_t visible_at_unix_ms,
               std::string_view error) override {
    FAAS_ASSIGN_OR_RETURN(RedisReply r,
                          Eval(retry_, {std::to_string(id), std::to_string(attempt),
                                        std::to_string(visible_at_unix_ms), std::string(error)}));
    return Int(r.get()) == 1 ? OkStatus() : LeaseLost(id, attempt);
  }

  Status DeadLetter(int64_t id, uint32_t attempt, std::string_view dlq,
                    std::string_view error) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
    FAAS_ASSIGN_OR_RETURN(RedisReply r,
                          Eval(dead_letter_, {std::to_string(id), std::to_string(attempt),
                                              std::string(dlq), std::string(error)}));
    return Int(r.get()) == 1 ? OkStatus() : LeaseLost(id, attempt);
  }

  Result<QueueStats> Stats(std::string_view queue) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(stats_, {std::string(queue)}));
    QueueStats s;
    s.queue = std::string(queue);
    if (redis::IsArray(r.get()) && r->elements == 7) {
      s.ready = ToU64(Int(r->element[0]));
      s.delayed = ToU64(Int(r->element[1]));
      s.in_flight = ToU64(Int(r->element[2]));
      s.dead = ToU64(Int(r->element[3]));
      s.published = ToU64(Int(r->element[4]));
      s.acked = ToU64(Int(r->element[5]));
      s.oldest_ready_unix_ms = Int(r->element[6]);
    }
    return s;
  }

  Result<std::vector<QueueStats>> ListQueues() override {
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Command({"SMEMBERS", options_.prefix + "queues"}));
    std::vector<std::string> names;
    if (redis::IsArray(r.get())) {
      for (std::size_t i = 0; i < r->elements; ++i) {
        names.push_back(redis::ReplyString(r->element[i]));
      }
    }
    std::sort(names.begin(), names.end());
    std::vector<QueueStats> out;
    out.reserve(names.size());
    for (const std::string& name : names) {
      FAAS_ASSIGN_OR_RETURN(QueueStats s, Stats(name));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<std::vector<store::DeadLetter>> ListDead(std::string_view dlq, uint32_t limit) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
    std::vector<store::DeadLetter> out;
    if (limit == 0) {
      return out;
    }
    FAAS_ASSIGN_OR_RETURN(RedisReply r,
                          Eval(list_dead_, {std::string(dlq), std::to_string(limit)}));
    if (!redis::IsArray(r.get())) {
      return out;
    }
    for (std::size_t i = 0; i + 9 <= r->elements; i += 9) {
      store::DeadLetter d;
      d.message.id = Int(r->element[i]);
      d.origin_queue = redis::ReplyString(r->element[i + 1]);
      d.message.queue = d.origin_queue;
      d.message.body = redis::ReplyString(r->element[i + 2]);
      d.message.headers = DecodeHeaders(redis::ReplyString(r->element[i + 3]),
                                        "dead letter " + std::to_string(d.message.id));
      d.message.attempt = ToU32(Int(r->element[i + 4]));
      d.message.enqueued_unix_ms = Int(r->element[i + 5]);
      d.message.last_error = redis::ReplyString(r->element[i + 6]);
      d.error = redis::ReplyString(r->element[i + 7]);
      d.dead_unix_ms = Int(r->element[i + 8]);
      out.push_back(std::move(d));
    }
    return out;
  }

  Result<uint64_t> ReplayDead(std::string_view dlq) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(dlq, "dead-letter queue name"));
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(replay_dead_, {std::string(dlq)}));
    return ToU64(Int(r.get()));
  }

  Result<int64_t> PublishAsync(std::string_view queue, const AsyncRecord& record,
                               std::string_view body, const QueueHeaders& headers) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
    FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
    std::vector<std::string> argv{std::string(queue), std::string(body), HeadersToJson(headers)};
    AppendRecord(argv, record, options_.async_retention);
    FAAS_ASSIGN_OR_RETURN(Stamped r,
                          EvalStamped(publish_async_, std::move(argv), record.invocation_id));
    return r.reply != nullptr ? Int(r.reply.get()) : r.found_id;
  }

  Result<AsyncPublish> PublishAsyncOnce(std::string_view queue, std::string_view key,
                                        std::chrono::milliseconds ttl, const AsyncRecord& record,
                                        std::string_view body,
                                        const QueueHeaders& headers) override {
    FAAS_RETURN_IF_ERROR(CheckQueueName(queue));
    FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
    FAAS_RETURN_IF_ERROR(CheckIdempotency(key, ttl));
    std::vector<std::string> argv{std::string(queue), std::string(body), HeadersToJson(headers),
                                  std::string(key), std::to_string(ttl.count())};
    AppendRecord(argv, record, options_.async_retention);
    FAAS_ASSIGN_OR_RETURN(Stamped s,
                          EvalStamped(publish_async_once_, std::move(argv), record.invocation_id));
    AsyncPublish out;
    const redisReply* r = s.reply.get();
    if (r == nullptr) {
      out.id = s.found_id;  // its own write, found after the reply was lost
      out.invocation_id = record.invocation_id;
    } else if (redis::IsArray(r) && r->elements == 2) {
      out.id = Int(r->element[0]);
      out.invocation_id = redis::ReplyString(r->element[1]);
      out.duplicate = out.id == 0;
    }
    return out;
  }

  Status PutAsync(const AsyncRecord& record) override {
    FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
    // The prelude's put_record, alone: a script with an empty body around it.
    static const Script put = MakeScript("put_record(2, now_ms()) return 1");
    std::vector<std::string> argv;
    AppendRecord(argv, record, options_.async_retention);
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(put, std::move(argv)));
    return OkStatus();
  }

  Result<AsyncRecord> GetAsync(std::string_view invocation_id) override {
    FAAS_ASSIGN_OR_RETURN(
        RedisReply r,
        Command({"HMGET", options_.prefix + "a:" + std::string(invocation_id), "fn", "tn", "st",
                 "hs", "hdr", "body", "bt", "ec", "em", "at", "cu", "cs", "cr", "up"}));
    if (!redis::IsArray(r.get()) || r->elements != 14 || redis::IsNil(r->element[2])) {
      return NotFoundError("async invocation " + Quote(invocation_id) +
                           " does not exist or has expired");
    }
    auto str = [&](std::size_t i) { return redis::ReplyString(r->element[i]); };
    AsyncRecord a;
    a.invocation_id = std::string(invocation_id);
    a.function = str(0);
    a.tenant = str(1);
    a.status = str(2);
    a.http_status = static_cast<int>(std::clamp<int64_t>(Int(r->element[3]), INT32_MIN, INT32_MAX));
    a.headers = DecodeHeaders(str(4), "async record " + a.invocation_id);
    a.body = str(5);
    a.body_truncated = str(6) == "1";
    a.error_code = str(7);
    a.error_message = str(8);
    a.attempts = ToU32(Int(r->element[9]));
    a.callback_url = str(10);
    a.callback_status = str(11);
    a.created_unix_ms = Int(r->element[12]);
    a.updated_unix_ms = Int(r->element[13]);
    return a;
  }

  Status AckWithResult(int64_t id, uint32_t attempt, const AsyncRecord& record) override {
    FAAS_RETURN_IF_ERROR(CheckAsyncRecord(record));
    std::vector<std::string> argv{std::to_string(id), std::to_string(attempt)};
    AppendRecord(argv, record, options_.async_retention);
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Eval(ack_with_result_, std::move(argv)));
    return Int(r.get()) == 1 ? OkStatus() : LeaseLost(id, attempt);
  }

  // Records and keys expire by their TTL.
  Result<uint64_t> ExpireAsync(int64_t /*before_unix_ms*/) override { return uint64_t{0}; }

  Status Ping() {
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Command({"PING"}));
    return OkStatus();
  }

 private:
  // A waiting connection and the slot through which WakeAll shuts its socket.
  struct Waiter {
    redis::FdSlot slot;
    RedisClient client;
  };

  redis::RedisTimeouts Timeouts() const {
    return {.connect = options_.connect_timeout, .io = options_.io_timeout};
  }

  // A connected client from the pool, or a new one.
  Result<std::unique_ptr<RedisClient>> Acquire() {
    // hiredis writes with write(2): a Redis that went away must be EPIPE, not SIGPIPE, whatever
    // thread calls (faasd ignores SIGPIPE; tests and tools may not).
    redis::BlockSigpipeInThisThread();
    {
      std::lock_guard lock(pool_mu_);
      if (!pool_.empty()) {
        auto c = std::move(pool_.back());
        pool_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<RedisClient>();
    FAAS_RETURN_IF_ERROR(c->Connect(addr_, Timeouts()));
    return c;
  }

  void Release(std::unique_ptr<RedisClient> c) {
    std::lock_guard lock(pool_mu_);
    if (c->Connected() && pool_.size() < 16) {
      pool_.push_back(std::move(c));
    }
  }

  // A broken connection usually means Redis restarted or went away: the pooled ones are broken
  // too, so they are dropped instead of failing one call each later.
  void DropPool() {
    std::lock_guard lock(pool_mu_);
    pool_.clear();
  }

  // Maps an error reply: transient ones (LOADING, BUSY, OOM…) are Unavailable, so callers back
  // off and retry; others are our bug (a script error).
  static Status ReplyStatus(const redisReply* r, std::string_view what) {
    std::string err = redis::ReplyError(r);
    if (err.empty()) {
      return OkStatus();
    }
    if (redis::IsTransientError(err)) {
      return UnavailableError("redis " + std::string(what) + ": " + err);
    }
    return InternalError("redis " + std::string(what) + ": " + err);
  }

  Result<RedisReply> Command(const std::vector<std::string>& argv) {
    FAAS_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> c, Acquire());
    Result<RedisReply> r = c->Command(argv);
    if (!r.ok()) {
      DropPool();
      return r.status();
    }
    Release(std::move(c));
    FAAS_RETURN_IF_ERROR(ReplyStatus(r->get(), argv.front()));
    return r;
  }

  // The EVALSHA command line of `script` with `args` (moved: bodies may be large).
  std::vector<std::string> ScriptArgv(const Script& script, std::vector<std::string> args) const {
    std::vector<std::string> argv;
    argv.reserve(args.size() + 4);
    argv.insert(argv.end(), {"EVALSHA", script.sha, "0", options_.prefix});
    for (std::string& a : args) {
      argv.push_back(std::move(a));
    }
    return argv;
  }

  // Runs `argv` (from ScriptArgv) on `c`, as EVAL (which caches the script) when the server
  // does not know it yet; `argv` is left as the command that ran. A failed Status when the
  // connection broke (the script may have run); an error reply is a reply.
  static Result<RedisReply> EvalOn(RedisClient& c, const Script& script,
                                   std::vector<std::string>& argv) {
    Result<RedisReply> r = c.Command(argv);
    if (r.ok() && redis::ReplyError(r->get()).starts_with("NOSCRIPT")) {
      argv[0] = "EVAL";
      argv[1] = script.text;
      r = c.Command(argv);
    }
    return r;
  }

  Result<RedisReply> Eval(const Script& script, std::vector<std::string> args) {
    FAAS_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> c, Acquire());
    std::vector<std::string> argv = ScriptArgv(script, std::move(args));
    Result<RedisReply> r = EvalOn(*c, script, argv);
    if (!r.ok()) {
      DropPool();
      return r.status();
    }
    Release(std::move(c));
    FAAS_RETURN_IF_ERROR(ReplyStatus(r->get(), "script"));
    return r;
  }

  struct Stamped {
    RedisReply reply;      // the script's, or null when its stamp was found instead
    int64_t found_id = 0;  // the message id the found stamp names
  };

  // Eval for a script that publishes an async invocation and stamps its record (pw, see
  // redis_queue_scripts.h) with a fresh token, where the answer must be true both ways: a
  // caller told "unavailable" retries under a new invocation id, so if the first one ran
  // after all, the work runs twice. When the connection breaks after the script may have
  // left, Redis may well have run it (it runs what it read before it closes a connection; a
  // SIGTERM shutdown does just that), so a fresh connection reads the stamp: ours means it
  // ran; anything else means it did not, and it runs once more there. Unknown when that cannot
  // be asked or the second run breaks too; Unavailable only when nothing was sent.
  Result<Stamped> EvalStamped(const Script& script, std::vector<std::string> args,
                              const std::string& invocation_id) {
    const std::string token = NewInvocationId();
    args.push_back(token);
    std::vector<std::string> argv = ScriptArgv(script, std::move(args));
    FAAS_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> c, Acquire());
    Result<RedisReply> r = EvalOn(*c, script, argv);
    if (r.ok()) {
      Release(std::move(c));
      FAAS_RETURN_IF_ERROR(ReplyStatus(r->get(), "script"));
      return Stamped{.reply = std::move(r).value()};
    }
    c.reset();
    DropPool();
    auto unknown = [&](const Status& why) {
      return UnknownError("the connection to Redis broke after the invocation was sent (" +
                          r.status().message() + "), and Redis cannot tell now whether it ran (" +
                          why.message() + "): it may have been queued");
    };
    auto fresh = std::make_unique<RedisClient>();
    if (Status s = fresh->Connect(addr_, Timeouts()); !s.ok()) {
      return unknown(s);
    }
    Result<RedisReply> stamp =
        fresh->Command({"HGET", options_.prefix + "a:" + invocation_id, "pw"});
    if (stamp.ok()) {
      if (Status s = ReplyStatus(stamp->get(), "HGET"); !s.ok()) {
        stamp = s;  // LOADING after a restart, say
      }
    }
    if (!stamp.ok()) {
      return unknown(stamp.status());
    }
    if (std::string pw = redis::ReplyString(stamp->get()); pw.starts_with(token + ":")) {
      FAAS_LOG(Log(), info, "queue.publish_found", {"inv", invocation_id},
               {"error", r.status().message()});
      Release(std::move(fresh));
      return Stamped{.reply = nullptr,
                     .found_id = std::strtoll(pw.c_str() + token.size() + 1, nullptr, 10)};
    }
    FAAS_LOG(Log(), info, "queue.publish_again", {"inv", invocation_id},
             {"error", r.status().message()});
    Result<RedisReply> again = EvalOn(*fresh, script, argv);
    if (!again.ok()) {
      return unknown(again.status());
    }
    Release(std::move(fresh));
    FAAS_RETURN_IF_ERROR(ReplyStatus(again->get(), "script"));
    return Stamped{.reply = std::move(again).value()};
  }

  redis::RedisAddress addr_;
  RedisQueueOptions options_;
  const Script publish_, publish_async_, publish_async_once_, lease_, probe_, ack_,
      ack_with_result_, extend_, retry_, dead_letter_, list_dead_, replay_dead_, stats_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<RedisClient>> pool_;

  // WaitForReady: the connections blocked in XREAD now, for WakeAll.
  std::mutex wait_mu_;
  std::condition_variable wake_cv_;  // the pause after a failed probe
  std::set<Waiter*> waiters_;
  uint64_t wake_generation_ = 0;
};

void RedisQueue::WaitForReady(std::string_view queue, Clock::time_point deadline) {
  uint64_t generation;
  {
    std::lock_guard lock(wait_mu_);
    generation = wake_generation_;
  }
  const std::string stream = options_.prefix + "s:" + std::string(queue);
  auto waiter = std::make_unique<Waiter>();
  bool registered = false;
  auto unregister = [&] {
    if (registered) {
      std::lock_guard lock(wait_mu_);
      waiters_.erase(waiter.get());
      registered = false;
    }
  };
  while (Clock::now() < deadline) {
    Result<RedisReply> probe = Eval(probe_, {std::string(queue)});
    if (!probe.ok() || !redis::IsArray(probe->get()) || (*probe)->elements != 3) {
      // Redis is unreachable (or answered nonsense): let the caller's Lease report it after a
      // pause, instead of spinning here.
      std::unique_lock lock(wait_mu_);
      Clock::time_point until = std::min(deadline, Clock::now() + std::chrono::seconds(1));
      wake_cv_.wait_until(lock, until, [&] { return wake_generation_ != generation; });
      break;
    }
    const redisReply* p = probe->get();
    if (Int(p->element[0]) == 1) {
      break;
    }
    int64_t block_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    int64_t due_ms = Int(p->element[1]);
    if (due_ms >= 0) {
      block_ms = std::min(block_ms, due_ms);
    }
    block_ms = std::clamp<int64_t>(block_ms, 1, kMaxBlockMs);
    if (!waiter->client.Connected()) {
      {
        std::lock_guard lock(wait_mu_);
        if (wake_generation_ != generation) {
          break;
        }
        waiters_.insert(waiter.get());
        registered = true;
      }
      redis::BlockSigpipeInThisThread();
      if (!waiter->client.Connect(addr_, Timeouts(), &waiter->slot).ok()) {
        break;  // a WakeAll shut the slot, or Redis went away: the caller's Lease decides
      }
    }
    Result<RedisReply> r =
        waiter->client.Command({"XREAD", "BLOCK", std::to_string(block_ms), "STREAMS", stream,
                                redis::ReplyString(p->element[2])});
    {
      std::lock_guard lock(wait_mu_);
      if (wake_generation_ != generation) {
        break;
      }
    }
    if (!r.ok()) {
      break;
    }
    if (!redis::IsNil(r->get())) {
      break;  // a new entry: ready (or leased already by another consumer; the caller retries)
    }
  }
  unregister();
}

void RedisQueue::WakeAll() {
  std::lock_guard lock(wait_mu_);
  ++wake_generation_;
  for (Waiter* w : waiters_) {
    w->slot.Shutdown();
  }
  wake_cv_.notify_all();
}

}  // namespace

Result<std::unique_ptr<Queue>> OpenRedisQueue(const RedisQueueOptions& options) {
  FAAS_ASSIGN_OR_RETURN(redis::RedisAddress addr, redis::ParseRedisUrl(options.url));
  if (options.consumer.empty()) {
    return InvalidArgumentError("redis queue: the consumer name is empty");
  }
  auto q = std::make_unique<RedisQueue>(std::move(addr), options);
  FAAS_RETURN_IF_ERROR(q->Ping());
  return std::unique_ptr<Queue>(std::move(q));
}

}  // namespace faas::store
