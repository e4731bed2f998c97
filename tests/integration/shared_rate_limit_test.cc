// SharedRateLimiter against a real redis-server: two limiters stand for two gateways. Time is a
// seam on both sides (the script's clock and the fallback's), so counts are exact.
#include "faas/gateway/shared_rate_limit.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "faas/base/ids.h"
#include "faas/gateway/rate_limit.h"
#include "faas/redis/client.h"

#include "redis_process.h"

namespace faas::gateway {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr int64_t kT0Us = 1'800'000'000'000'000;  // a Unix time in microseconds
const Clock::time_point kLocalT0 = Clock::time_point{} + std::chrono::hours(1000);

class SharedRateLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // hiredis writes with write(2)
    if (testing::RedisProcess::ServerPath().empty()) {
      GTEST_SKIP() << "redis-server is not installed";
    }
    std::string error;
    ASSERT_TRUE(redis_.Start(&error)) << error;
    prefix_ = "t:" + NewInvocationId() + ":";
  }

  std::unique_ptr<SharedRateLimiter> Make(const std::string& id) {
    auto l = SharedRateLimiter::Create({.redis_url = redis_.url(),
                                        .gateway_id = id,
                                        .key_prefix = prefix_,
                                        .retry_pause = milliseconds(50),
                                        .now = [this] { return local_now_.load(); },
                                        .redis_now_us = [this] { return redis_now_us_.load(); }});
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }

  // Takes `n` tokens from `key`, alternating between a and b; how many were admitted.
  static int TakeAlternating(SharedRateLimiter& a, SharedRateLimiter& b, const std::string& key,
                             int n, double rate, uint32_t burst) {
    int admitted = 0;
    for (int i = 0; i < n; ++i) {
      admitted += (i % 2 == 0 ? a : b).Take(key, rate, burst).count() == 0 ? 1 : 0;
    }
    return admitted;
  }

  static bool PollUntil(const std::function<bool()>& done, seconds limit = seconds(10)) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (done()) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(10));  // polling interval, not synchronisation
    }
    return done();
  }

  testing::RedisProcess redis_;
  std::string prefix_;
  std::atomic<int64_t> redis_now_us_{kT0Us};
  std::atomic<Clock::time_point> local_now_{kLocalT0};
};

TEST_F(SharedRateLimitTest, TwoGatewaysAdmitTheGlobalRateNotTwice) {
  auto a = Make("gw-a");
  auto b = Make("gw-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  EXPECT_EQ(b->Gateways(), 2);
  // 1 per second, burst 10: the two together admit 10, not 20.
  EXPECT_EQ(TakeAlternating(*a, *b, "f:fn", 40, 1.0, 10), 10);
  // The refusal says when: one interval after the bucket ran dry.
  EXPECT_EQ(a->Take("f:fn", 1.0, 10), seconds(1));
  redis_now_us_ += 400'000;
  EXPECT_EQ(b->Take("f:fn", 1.0, 10), milliseconds(600));
  redis_now_us_ += 600'000;
  EXPECT_EQ(TakeAlternating(*a, *b, "f:fn", 10, 1.0, 10), 1);  // refilled one token
  redis_now_us_ += 3'000'000;
  EXPECT_EQ(TakeAlternating(*b, *a, "f:fn", 10, 1.0, 10), 3);
  // Keys are independent.
  EXPECT_EQ(TakeAlternating(*a, *b, "k:key1", 10, 1.0, 4), 4);
  EXPECT_EQ(a->GetStats().fallback_takes + b->GetStats().fallback_takes, 0u);
  EXPECT_TRUE(a->UsingRedis());
}

TEST_F(SharedRateLimitTest, AnswersAsTheLocalLimiterDoes) {
  auto a = Make("gw-a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Start().ok());
  RateLimiter local;
  // The same sequence of (time, take) through both: 3 per second, burst 2, at uneven steps.
  const int64_t steps_us[] = {0, 0, 0, 100'000, 250'000, 333'333, 1'000'000, 0, 0, 5'000'000};
  int64_t t = 0;
  for (int64_t step : steps_us) {
    t += step;
    redis_now_us_ = kT0Us + t;
    const nanoseconds want = local.Take("f:x", 3.0, 2, kLocalT0 + microseconds(t));
    // Redis counts whole microseconds, the local limiter nanoseconds: the interval 1/3 s
    // rounds to 333333 us against 333333333 ns.
    EXPECT_NEAR(static_cast<double>(a->Take("f:x", 3.0, 2).count()),
                static_cast<double>(want.count()), 2'000)
        << "at +" << t << " us";
  }
}

TEST_F(SharedRateLimitTest, BucketKeyExpiresWhenFull) {
  auto a = Make("gw-a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Start().ok());
  // 2 per second: one token puts the bucket 500 ms from full.
  ASSERT_EQ(a->Take("f:ttl", 2.0, 5), nanoseconds(0));
  redis::RedisClient c;
  ASSERT_TRUE(c.Connect(*redis::ParseRedisUrl(redis_.url()), {}).ok());
  auto pttl = c.Command({"PTTL", prefix_ + "f:ttl"});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT((*pttl)->integer, 0);
  EXPECT_LE((*pttl)->integer, 500);
  // Unlimited takes keep no key.
  EXPECT_EQ(a->Take("f:free", 0, 0), nanoseconds(0));
  auto exists = c.Command({"EXISTS", prefix_ + "f:free"});
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ((*exists)->integer, 0);
}

TEST_F(SharedRateLimitTest, RedisDownEachFallsBackToItsShareThenSharesAgain) {
  auto a = Make("gw-a");
  auto b = Make("gw-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(a->Probe());  // a learns G = 2 too
  ASSERT_EQ(a->Gateways(), 2);
  ASSERT_EQ(TakeAlternating(*a, *b, "f:warm", 4, 1.0, 10), 4);  // pooled connections exist

  redis_.Kill();
  // Each gateway now enforces half: burst 10 / 2 gateways = 5 each, 10 in all.
  int admitted_a = 0;
  int admitted_b = 0;
  for (int i = 0; i < 20; ++i) {
    admitted_a += a->Take("f:fn", 1.0, 10).count() == 0 ? 1 : 0;
    admitted_b += b->Take("f:fn", 1.0, 10).count() == 0 ? 1 : 0;
  }
  EXPECT_EQ(admitted_a, 5);
  EXPECT_EQ(admitted_b, 5);
  EXPECT_FALSE(a->UsingRedis());
  EXPECT_FALSE(b->UsingRedis());
  EXPECT_EQ(a->GetStats().trips, 1u);
  // The share refills at rate / 2: one token every 2 s.
  local_now_ = local_now_.load() + seconds(1);
  EXPECT_GT(a->Take("f:fn", 1.0, 10).count(), 0);
  local_now_ = local_now_.load() + seconds(1);
  EXPECT_EQ(a->Take("f:fn", 1.0, 10).count(), 0);

  std::string error;
  ASSERT_TRUE(redis_.Restart(&error)) << error;
  ASSERT_TRUE(PollUntil([&] { return a->UsingRedis() && b->UsingRedis(); }))
      << "the heartbeat did not find Redis again";
  EXPECT_EQ(TakeAlternating(*a, *b, "f:after", 40, 1.0, 10), 10);
}

TEST_F(SharedRateLimitTest, AHungRedisDoesNotStallTheCaller) {
  auto a = Make("gw-a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_EQ(a->Take("f:fn", 1.0, 4), nanoseconds(0));
  ASSERT_EQ(::kill(redis_.pid(), SIGSTOP), 0);
  const auto t0 = Clock::now();
  EXPECT_EQ(a->Take("f:fn", 1.0, 4), nanoseconds(0));  // the fallback's fresh bucket
  const auto took = Clock::now() - t0;
  const auto t1 = Clock::now();
  for (int i = 0; i < 10; ++i) {
    (void)a->Take("f:fn", 1.0, 4);
  }
  const auto ten_more = Clock::now() - t1;
  ::kill(redis_.pid(), SIGCONT);
  // One io timeout (50 ms) for the call that found Redis hung, then none: the breaker is open.
  // The bounds are loose for a busy machine; a stall would be the full 5 s hiredis default.
  EXPECT_LT(took, seconds(1));
  EXPECT_LT(ten_more, milliseconds(100));
  EXPECT_FALSE(a->UsingRedis());
  ASSERT_TRUE(PollUntil([&] { return a->UsingRedis(); }));
}

TEST_F(SharedRateLimitTest, AGatewayThatLeavesNoLongerCounts) {
  auto a = Make("gw-a");
  auto b = Make("gw-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(a->Probe());
  EXPECT_EQ(a->Gateways(), 2);
  b->Stop();
  ASSERT_TRUE(a->Probe());
  EXPECT_EQ(a->Gateways(), 1);
}

}  // namespace
}  // namespace faas::gateway
