// A blocking hiredis 0.14 connection owned by one thread (triggers, the cluster's queues, rate
// limits). Nothing here knows what the keys mean.
//
//   RedisClient c;
//   FAAS_RETURN_IF_ERROR(c.Connect(addr, {.connect = 1s, .io = 5s}, &slot));
//   FAAS_ASSIGN_OR_RETURN(RedisReply r, c.Command({"XLEN", "jobs"}));
//
// A redisContext is never shared: each thread that talks to Redis owns its RedisClient. The
// one cross-thread operation is FdSlot::Shutdown(), which another thread may call to make a
// blocking read (XREADGROUP BLOCK) return at once; that is a plain shutdown(2) on the socket,
// done under the slot's mutex so the fd cannot be closed and reused meanwhile.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "faas/base/status.h"

namespace faas::redis {

// "redis://HOST:PORT[/DB]", HOST possibly an IPv6 address in brackets.
struct RedisAddress {
  std::string host;
  int port = 0;
  int db = 0;
};
// Why `url` is not "redis://HOST:PORT[/DB]" (a phrase to follow the quoted value, e.g. "needs a
// port: redis://HOST:PORT[/DB]"), or "" when it is one; fills `addr` then.
std::string RedisUrlProblem(std::string_view url, RedisAddress& addr);
// InvalidArgument quoting `url` and the problem when it is not of that form.
Result<RedisAddress> ParseRedisUrl(std::string_view url);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

// The socket of one connection, for another thread to shut down. Sticky: after Shutdown(),
// a new connection registering here is refused.
class FdSlot {
 public:
  bool Set(int fd);  // false after Shutdown()
  void Clear();
  void Shutdown();

 private:
  std::mutex mu_;
  int fd_ = -1;
  bool shut_ = false;
};

struct RedisTimeouts {
  std::chrono::milliseconds connect{1000};
  std::chrono::milliseconds io{5000};  // each read and write; must exceed any BLOCK used
};

class RedisClient {
 public:
  RedisClient() = default;
  ~RedisClient() { Close(); }
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Connects (and SELECTs the db). Unavailable with the reason when Redis cannot be reached.
  // `slot`, if given, learns the socket until Close().
  Status Connect(const RedisAddress& addr, RedisTimeouts timeouts, FdSlot* slot = nullptr);
  bool Connected() const { return ctx_ != nullptr; }
  void Close();

  // Runs one command. An error reply (-ERR …) is a reply, not a failed Status: check with
  // ReplyError(). Unavailable when the connection broke; it is closed then.
  Result<RedisReply> Command(const std::vector<std::string>& argv);
  // Sends every command, then reads every reply, in order (one round trip).
  Result<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& cmds);

 private:
  Status Broken(std::string_view what);

  redisContext* ctx_ = nullptr;
  FdSlot* slot_ = nullptr;
  std::string where_;  // "redis://host:port" for messages
};

// hiredis writes with write(2), so a peer that went away raises SIGPIPE, which kills a process
// that did not ignore it. Each thread owning a RedisClient calls this first: a blocked SIGPIPE
// from write(2) stays pending on that thread, and the write fails with EPIPE instead.
void BlockSigpipeInThisThread();

// The text of an error reply, "" for any other reply.
std::string ReplyError(const redisReply* r);
// The reply's string value ("" unless a string or status).
std::string ReplyString(const redisReply* r);
// An error reply that says "not now" rather than "never" (LOADING after a restart, BUSY
// script, failover, OOM): the command is retried after a backoff instead of given up.
bool IsTransientError(std::string_view error);
bool IsArray(const redisReply* r);
bool IsNil(const redisReply* r);

}  // namespace faas::redis
