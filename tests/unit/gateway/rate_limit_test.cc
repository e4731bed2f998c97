// RateLimiter with explicit time points: no sleeps, exact answers.
#include "faas/gateway/rate_limit.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace faas::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// An arbitrary fixed origin, well after the clock's epoch.
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1000);

TEST(RateLimiter, AdmitsTheBurstThenRefillsAtTheRate) {
  RateLimiter limiter;
  // 2 per second, burst 3: three at once, then one every 500 ms.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Take("k", 2, 3, kT0), nanoseconds(0)) << i;
  }
  EXPECT_EQ(limiter.Take("k", 2, 3, kT0), milliseconds(500));
  EXPECT_EQ(limiter.Take("k", 2, 3, kT0 + milliseconds(200)), milliseconds(300));
  EXPECT_EQ(limiter.Take("k", 2, 3, kT0 + milliseconds(500)), nanoseconds(0));
  EXPECT_EQ(limiter.Take("k", 2, 3, kT0 + milliseconds(500)), milliseconds(500));
  // After 1.5 s idle the bucket is full again, and holds no more than the burst.
  const auto later = kT0 + seconds(10);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Take("k", 2, 3, later), nanoseconds(0)) << i;
  }
  EXPECT_GT(limiter.Take("k", 2, 3, later), nanoseconds(0));
}

TEST(RateLimiter, RetryAfterIsExact) {
  RateLimiter limiter;
  // 3 per second does not divide a second evenly: the answer must still be enough.
  ASSERT_EQ(limiter.Take("k", 3, 1, kT0), nanoseconds(0));
  const nanoseconds wait = limiter.Take("k", 3, 1, kT0);
  EXPECT_GT(wait, milliseconds(333));
  EXPECT_LT(wait, milliseconds(334));
  EXPECT_GT(limiter.Take("k", 3, 1, kT0 + wait - nanoseconds(1)), nanoseconds(0));
  EXPECT_EQ(limiter.Take("k", 3, 1, kT0 + wait), nanoseconds(0));
  // For Retry-After, rounded up to whole seconds at the call site.
  EXPECT_EQ(std::chrono::ceil<seconds>(wait).count(), 1);
}

TEST(RateLimiter, SlowRatesGiveLongWaits) {
  RateLimiter limiter;
  // One per minute.
  ASSERT_EQ(limiter.Take("k", 1.0 / 60, 1, kT0), nanoseconds(0));
  const nanoseconds wait = limiter.Take("k", 1.0 / 60, 1, kT0 + seconds(15));
  EXPECT_EQ(std::chrono::round<milliseconds>(wait), seconds(45));
  EXPECT_EQ(std::chrono::ceil<seconds>(wait).count(), 45);
}

TEST(RateLimiter, RefusedRequestsTakeNothing) {
  RateLimiter limiter;
  ASSERT_EQ(limiter.Take("k", 1, 1, kT0), nanoseconds(0));
  for (int i = 0; i < 100; ++i) {
    EXPECT_GT(limiter.Take("k", 1, 1, kT0 + milliseconds(10 * i)), nanoseconds(0));
  }
  EXPECT_EQ(limiter.Take("k", 1, 1, kT0 + seconds(1)), nanoseconds(0));
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter;
  ASSERT_EQ(limiter.Take("a", 1, 1, kT0), nanoseconds(0));
  EXPECT_GT(limiter.Take("a", 1, 1, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take("b", 1, 1, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take(std::string(1000, 'x'), 1, 1, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Size(), 3u);
}

TEST(RateLimiter, ZeroRateIsUnlimitedAndKeepsNoBucket) {
  RateLimiter limiter;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(limiter.Take("k", 0, 0, kT0), nanoseconds(0));
  }
  EXPECT_EQ(limiter.Take("k", -1, 1, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take("k", std::nan(""), 1, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Size(), 0u);
}

TEST(RateLimiter, ZeroBurstWithARateMeansTheRateRoundedUp) {
  RateLimiter limiter;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Take("k", 2.5, 0, kT0), nanoseconds(0)) << i;
  }
  EXPECT_GT(limiter.Take("k", 2.5, 0, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take("slow", 0.1, 0, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take("slow", 0.1, 0, kT0), seconds(10));
}

TEST(RateLimiter, EarlierTimeFromARacingThreadNeverAdmitsMore) {
  RateLimiter limiter;
  const auto t = kT0 + seconds(5);
  ASSERT_EQ(limiter.Take("k", 1, 2, t), nanoseconds(0));
  // A thread that read the clock 1 ms earlier arrives second: the bucket looks 1 ms emptier to
  // it (0.999 tokens), so it waits that 1 ms; it is never given a token that does not exist.
  EXPECT_EQ(limiter.Take("k", 1, 2, t - milliseconds(1)), milliseconds(1));
  EXPECT_EQ(limiter.Take("k", 1, 2, t), nanoseconds(0));
  EXPECT_EQ(limiter.Take("k", 1, 2, t), seconds(1));
}

TEST(RateLimiter, ExtremeValuesDoNotOverflow) {
  RateLimiter limiter;
  EXPECT_EQ(limiter.Take("tiny", 1e-30, UINT32_MAX, kT0), nanoseconds(0));
  EXPECT_EQ(limiter.Take("huge", 1e300, UINT32_MAX, kT0), nanoseconds(0));
  ASSERT_EQ(limiter.Take("one", 1e-30, 1, kT0), nanoseconds(0));
  const nanoseconds wait = limiter.Take("one", 1e-30, 1, kT0);
  EXPECT_GT(wait, std::chrono::hours(24 * 365));
  EXPECT_LT(std::chrono::ceil<seconds>(wait).count(), INT64_MAX / 2);
}

TEST(RateLimiter, ConcurrentTakersGetExactlyTheBurst) {
  RateLimiter limiter;
  constexpr int kThreads = 8;
  constexpr int kTriesEach = 500;
  constexpr uint32_t kBurst = 1000;
  std::atomic<int> admitted{0};
  std::atomic<int> other_admitted{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string other = "other-" + std::to_string(t);
      start.arrive_and_wait();
      for (int i = 0; i < kTriesEach; ++i) {
        if (limiter.Take("shared", 5, kBurst, kT0) == nanoseconds(0)) {
          admitted.fetch_add(1);
        }
        if (limiter.Take(other, 5, kBurst, kT0) == nanoseconds(0)) {
          other_admitted.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(admitted.load(), static_cast<int>(kBurst));     // 4000 tries, 1000 tokens
  EXPECT_EQ(other_admitted.load(), kThreads * kTriesEach);  // 500 tries each, 1000 tokens
  EXPECT_EQ(limiter.Size(), static_cast<std::size_t>(kThreads) + 1);
}

TEST(RateLimiter, PruneDropsOnlyFullBuckets) {
  RateLimiter limiter;
  ASSERT_EQ(limiter.Take("drained", 1, 2, kT0), nanoseconds(0));
  ASSERT_EQ(limiter.Take("drained", 1, 2, kT0), nanoseconds(0));
  ASSERT_EQ(limiter.Take("half", 1, 2, kT0), nanoseconds(0));
  ASSERT_EQ(limiter.Size(), 2u);

  limiter.Prune(kT0);  // both owe tokens
  EXPECT_EQ(limiter.Size(), 2u);
  limiter.Prune(kT0 + milliseconds(1500));  // "half" refilled at +1 s, "drained" needs +2 s
  EXPECT_EQ(limiter.Size(), 1u);
  // The pruned key starts full again, as it would have been.
  EXPECT_EQ(limiter.Take("half", 1, 2, kT0 + milliseconds(1500)), nanoseconds(0));
  EXPECT_EQ(limiter.Take("half", 1, 2, kT0 + milliseconds(1500)), nanoseconds(0));
  EXPECT_GT(limiter.Take("half", 1, 2, kT0 + milliseconds(1500)), nanoseconds(0));
  // "drained" kept its state: one token back at +1.5 s, not two.
  EXPECT_EQ(limiter.Take("drained", 1, 2, kT0 + milliseconds(1500)), nanoseconds(0));
  EXPECT_EQ(limiter.Take("drained", 1, 2, kT0 + milliseconds(1500)), milliseconds(500));

  limiter.Prune(kT0 + seconds(60));
  EXPECT_EQ(limiter.Size(), 0u);
}

}  // namespace
}  // namespace faas::gateway
