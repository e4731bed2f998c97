// Token-bucket rate limits at the gateway edge (docs/http-api.md "rate_limited"), keyed by any
// string: an API key id, a function name ("fn:resize"), ...
//
//   faas::gateway::RateLimiter limiter;
//   std::chrono::nanoseconds wait = limiter.Take(principal.key_id, 10.0, 20);
//   if (wait.count() > 0) {
//     auto s = std::chrono::ceil<std::chrono::seconds>(wait).count();  // Retry-After: s
//     res = MakeErrorResponse(429, "rate_limited", "...", inv, static_cast<int>(s));
//   }
//   limiter.Prune(faas::Clock::now());  // now and then, e.g. once a minute
//
// A bucket holds up to `burst` tokens and gains `rate_per_sec` tokens per second; each admitted
// request takes one. It is kept as the generic cell rate algorithm (GCRA, as in ATM traffic
// policing and redis-cell): one "theoretical arrival time" per key, in integer nanoseconds, so
// the answers are exact (taking a token at now + Take's answer succeeds) and a bucket is 8 bytes
// of state. A new key starts with a full bucket.
//
// Limiter is what the edge checks call: RateLimiter here counts in this process;
// SharedRateLimiter (shared_rate_limit.h) counts in Redis for all gateways of a cluster.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "faas/base/time.h"

namespace faas::gateway {

// One token per admitted request, from the bucket `key`. Implementations are thread-safe.
class Limiter {
 public:
  virtual ~Limiter() = default;
  // Returns 0 when admitted, else how long until a token will be available (for Retry-After);
  // a refused request takes nothing. rate_per_sec <= 0 (or NaN) means unlimited. burst 0 with a
  // rate means max(1, ceil(rate)), as store::EffectiveBurst. Never fails: a limiter whose
  // backing store is unreachable answers from a local fallback.
  virtual std::chrono::nanoseconds Take(std::string_view key, double rate_per_sec,
                                        uint32_t burst) = 0;
};

// Thread-safe. Keys are spread over kShards shards (a mutex and a hash map each), so connection
// threads taking tokens for different keys rarely contend; taking from an existing key does
// not allocate.
class RateLimiter : public Limiter {
 public:
  RateLimiter() = default;
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token from the bucket `key` (created full with `burst` tokens, refilled at
  // `rate_per_sec`). Returns 0 when admitted, else how long until a token will be available (for
  // Retry-After; round up to whole seconds at the call site); a refused request takes nothing.
  // rate_per_sec <= 0 (or NaN) means unlimited: always admitted, and no bucket is kept. burst 0
  // with a rate means max(1, ceil(rate)), as store::EffectiveBurst. A key's rate and burst may
  // change between calls (a config change); the new values apply from that call on. `now` may be
  // older than another thread's `now` for the same key (both read the clock before locking): the
  // bucket then looks emptier by that difference, never fuller.
  std::chrono::nanoseconds Take(std::string_view key, double rate_per_sec, uint32_t burst,
                                Clock::time_point now);
  // The same at Clock::now().
  std::chrono::nanoseconds Take(std::string_view key, double rate_per_sec,
                                uint32_t burst) override {
    return Take(key, rate_per_sec, burst, Clock::now());
  }

  // Drops the buckets that are full at `now`: forgetting them changes no future answer, since a
  // missing key starts full. Takes each shard's lock in turn.
  void Prune(Clock::time_point now);

  // Buckets currently kept (for metrics and tests).
  std::size_t Size() const;

 private:
  // 16: well above the 2..8 connection threads that run at once here, and a small fixed cost for
  // Prune and Size.
  static constexpr std::size_t kShards = 16;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Bucket {
    // When the bucket will be full again if nothing more is taken ("theoretical arrival time"),
    // in Clock nanoseconds. At or before now: full.
    int64_t full_at_ns = 0;
  };
  // alignas: one cache line per shard, so their mutexes do not falsely share.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket, Hash, std::equal_to<>> buckets;  // guarded by mu
  };

  std::array<Shard, kShards> shards_;
};

}  // namespace faas::gateway
