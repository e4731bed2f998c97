#include "faas/gateway/rate_limit.h"

#include <algorithm>
#include <cmath>

#include "faas/store/config.h"

namespace faas::gateway {
namespace {

// Caps keep every sum below INT64_MAX (9.2e18 ns) for any rate and burst: the emission
// interval at 1e18 ns (31 years per token), the whole bucket at 2e18 ns, and steady_clock
// readings (time since boot) are far smaller.
constexpr int64_t kMaxIntervalNs = 1'000'000'000'000'000'000;
constexpr int64_t kMaxBucketNs = 2'000'000'000'000'000'000;

// Nanoseconds between two tokens at `rate_per_sec` (> 0), at least 1.
int64_t IntervalNs(double rate_per_sec) {
  const double ns = std::round(1e9 / rate_per_sec);
  if (!(ns < static_cast<double>(kMaxIntervalNs))) {
    return kMaxIntervalNs;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(ns));
}

}  // namespace

std::chrono::nanoseconds RateLimiter::Take(std::string_view key, double rate_per_sec,
                                           uint32_t burst, Clock::time_point now) {
  if (!(rate_per_sec > 0)) {
    return std::chrono::nanoseconds(0);
  }
  const int64_t interval = IntervalNs(rate_per_sec);
  int64_t capacity = 0;  // burst * interval: how far full_at may run ahead of now
  if (__builtin_mul_overflow(int64_t{store::EffectiveBurst(rate_per_sec, burst)}, interval,
                             &capacity) ||
      capacity > kMaxBucketNs) {
    capacity = kMaxBucketNs;
  }
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();

  const std::size_t hash = Hash{}(key);
  // Fibonacci hashing: the top 4 bits of the product pick the shard, independent of the low
  // bits the map uses for its own buckets.
  Shard& shard = shards_[(static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >> 60];
  static_assert(kShards == 16, "the shift above takes 4 bits");

  std::lock_guard lock(shard.mu);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    it = shard.buckets.try_emplace(std::string(key), Bucket{now_ns}).first;  // full
  }
  Bucket& b = it->second;
  // GCRA: taking a token moves full_at one interval later; refuse when that would put it more
  // than the whole bucket ahead of now (no token left).
  const int64_t after = std::max(b.full_at_ns, now_ns) + interval;
  if (after - now_ns > capacity) {
    return std::chrono::nanoseconds(after - now_ns - capacity);
  }
  b.full_at_ns = after;
  return std::chrono::nanoseconds(0);
}

void RateLimiter::Prune(Clock::time_point now) {
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    std::erase_if(shard.buckets,
                  [&](const auto& entry) { return entry.second.full_at_ns <= now_ns; });
  }
}

std::size_t RateLimiter::Size() const {
  std::size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.buckets.size();
  }
  return n;
}

}  // namespace faas::gateway
