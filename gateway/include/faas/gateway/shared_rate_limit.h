// Rate limits shared by every gateway of a cluster, counted in Redis
// (docs/design/0023-shared-limits-and-retries.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto limiter, SharedRateLimiter::Create({.redis_url = url}));
//   limiter->Start().IgnoreError();  // Redis down at start: the fallback answers meanwhile
//   std::chrono::nanoseconds wait = limiter->Take("f:resize", 10.0, 20);  // as RateLimiter
//
// Each Take runs the same GCRA as RateLimiter as one Lua script (EVALSHA) on a Redis connection
// borrowed from a small pool, so N gateways together admit the limit, not N times it. The
// script reads Redis's own clock (TIME): gateways on different machines share one time line,
// and a gateway's clock skew cannot fill or drain a bucket. A bucket's key expires when the
// bucket is full again, so idle keys cost nothing.
//
// Breaker: a Take whose Redis call fails (refused, reset, past the short io timeout) answers
// from a local RateLimiter instead, and so does every Take after it until Redis answers again.
// That local limiter enforces limit ÷ G: rate/G and burst/G (at least 1), where G is the number
// of live gateways, learnt while Redis was up: every gateway refreshes its entry in one sorted
// set (member = gateway id, score = expiry in Redis time) each `heartbeat`, and the reply is the
// count of unexpired entries. While Redis is down, a background thread tries it again every
// `retry_pause`; the first success closes the breaker. A gateway that never reached Redis counts
// G = 1 (docs/operations.md).
//
// Which thread calls Take: the gateway's event-loop threads for sync invocations and blocking
// threads for async ones. A Redis call blocks the caller for one round trip (about 0.1 ms on a
// local network; bench/micro/rate_limit_bench.cc); the io timeout bounds the worst case, and
// the breaker makes it happen once per outage, not once per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/gateway/rate_limit.h"

namespace faas::gateway {

struct SharedLimitOptions {
  std::string redis_url = {};           // redis://HOST:PORT[/DB]
  std::string gateway_id = {};          // unique per gateway process; "" = host/pid/random
  std::string key_prefix = "faas:rl:";  // buckets are PREFIX+key, the gateway set PREFIX+"gw"
  // Short, because a loop thread waits for them: a Redis that does not answer in this time is
  // treated as down.
  std::chrono::milliseconds connect_timeout{100};
  std::chrono::milliseconds io_timeout{50};
  std::chrono::milliseconds heartbeat{1000};   // membership refresh while Redis is up
  std::chrono::milliseconds retry_pause{250};  // how often a down Redis is tried again
  std::chrono::milliseconds member_ttl{3500};  // a gateway silent this long no longer counts
  std::size_t max_idle_connections = 8;        // pooled; more callers open more, closed after
  // Test seams. `now`: the fallback's clock (default Clock::now). `redis_now_us`: the time the
  // script uses in microseconds (default: Redis TIME).
  std::function<Clock::time_point()> now = {};
  std::function<int64_t()> redis_now_us = {};
};

class SharedRateLimiter : public Limiter {
 public:
  // InvalidArgument for a malformed URL. Does not connect: call Start().
  static Result<std::unique_ptr<SharedRateLimiter>> Create(SharedLimitOptions options);
  ~SharedRateLimiter() override;  // Stop()
  SharedRateLimiter(const SharedRateLimiter&) = delete;
  SharedRateLimiter& operator=(const SharedRateLimiter&) = delete;

  // Joins the gateway set once, synchronously (so G is known before the first request), then
  // starts the heartbeat thread. Unavailable when Redis cannot be reached now; the limiter works
  // anyway (fallback) and keeps trying. Call once.
  Status Start();
  // Leaves the gateway set (best effort, so the others' G drops at once) and joins the thread.
  // Idempotent. Take keeps working afterwards.
  void Stop();

  // Limiter::Take. Thread-safe; blocks for one Redis round trip while Redis is up.
  std::chrono::nanoseconds Take(std::string_view key, double rate_per_sec, uint32_t burst) override;

  // Whether Takes go to Redis now (the breaker is closed).
  bool UsingRedis() const;
  // G: the live gateways counted at the last successful heartbeat (1 before any).
  int Gateways() const;
  // Tries Redis now (as the heartbeat does); true when it answered. For tests and Start().
  bool Probe();

  struct Stats {
    uint64_t redis_takes = 0;     // answered by Redis
    uint64_t fallback_takes = 0;  // answered by the local limiter
    uint64_t trips = 0;           // times the breaker opened
  };
  Stats GetStats() const;

 private:
  struct Impl;
  explicit SharedRateLimiter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::gateway
