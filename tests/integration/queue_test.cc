#include "faas/store/queue.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "faas/store/redis_queue.h"
#include "faas/store/settings.h"

#include "redis_process.h"
#include "subprocess.h"
#include "tcp_proxy.h"

namespace faas::store {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr milliseconds kLong = 60s;  // a lease that never expires during a test

// Every test runs on both backends: the embedded SQLite file and Redis Streams (one real
// redis-server per test binary; each test has its own key prefix).
class QueueTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (faas::testing::RedisProcess::ServerPath().empty()) {
      return;
    }
    redis_ = new faas::testing::RedisProcess();
    std::string error;
    if (!redis_->Start(&error)) {
      ADD_FAILURE() << "redis-server: " << error;
    }
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    if (Redis() && redis_ == nullptr) {
      GTEST_SKIP() << "redis-server is not installed";
    }
    static int next_prefix = 0;
    prefix_ = "t" + std::to_string(++next_prefix) + ":";
    q_ = OpenQueue();
    ASSERT_NE(q_, nullptr);
  }

  bool Redis() const { return GetParam() == "redis"; }

  // A queue on this test's store; `consumer` names the Redis consumer (a gateway instance).
  // `url` overrides the Redis server's (a proxy in front of it).
  std::unique_ptr<Queue> OpenQueue(const std::string& consumer = "gw-1", std::string url = "") {
    Result<std::unique_ptr<Queue>> q =
        Redis() ? OpenRedisQueue({.url = url.empty() ? redis_->url() : url,
                                  .prefix = prefix_,
                                  .consumer = consumer,
                                  .async_retention = std::chrono::hours(1)})
                : Queue::Open(path_);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  int64_t Pub(std::string_view queue, std::string_view body, const QueueHeaders& headers = {},
              int64_t visible_at_unix_ms = 0) {
    auto id = q_->Publish(queue, body, headers, visible_at_unix_ms);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : -1;
  }

  std::vector<QueueMessage> LeaseNow(std::string_view queue, uint32_t max,
                                     milliseconds visibility = kLong) {
    auto batch = q_->Lease(queue, max, visibility);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    return batch.ok() ? std::move(batch).value() : std::vector<QueueMessage>{};
  }

  // Waits (through WaitForReady, never a sleep) until a lease of `queue` returns something, or
  // `within` passes.
  std::vector<QueueMessage> LeaseWithin(std::string_view queue, uint32_t max,
                                        milliseconds within = 5s, milliseconds visibility = kLong) {
    Clock::time_point deadline = Clock::now() + within;
    for (;;) {
      q_->WaitForReady(queue, deadline);
      std::vector<QueueMessage> batch = LeaseNow(queue, max, visibility);
      if (!batch.empty() || Clock::now() >= deadline) {
        return batch;
      }
    }
  }

  QueueStats StatsOf(std::string_view queue) {
    auto stats = q_->Stats(queue);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    return stats.ok() ? *stats : QueueStats{};
  }

  static milliseconds Since(Clock::time_point t0) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  }

  static faas::testing::RedisProcess* redis_;
  faas::testing::TempDir tmp_;
  std::string path_ = tmp_.path() + "/queue.db";
  std::string prefix_;
  std::unique_ptr<Queue> q_;
};

faas::testing::RedisProcess* QueueTest::redis_ = nullptr;

std::vector<std::string> Bodies(const std::vector<QueueMessage>& batch) {
  std::vector<std::string> out;
  out.reserve(batch.size());
  for (const auto& m : batch) {
    out.push_back(m.body);
  }
  return out;
}

TEST_P(QueueTest, LeasesOldestFirstAndAcksEachLeaseOnce) {
  int64_t before = UnixMillisNow();
  std::vector<int64_t> ids;
  for (std::string body : {"a", "b", "c", "d", "e"}) {
    ids.push_back(Pub("jobs", body));
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 5u);

  std::vector<QueueMessage> first = LeaseNow("jobs", 3);
  EXPECT_EQ(Bodies(first), (std::vector<std::string>{"a", "b", "c"}));
  for (const auto& m : first) {
    EXPECT_EQ(m.queue, "jobs");
    EXPECT_EQ(m.attempt, 1u);
    EXPECT_GE(m.enqueued_unix_ms, before);
    EXPECT_EQ(m.last_error, "");
  }
  std::vector<QueueMessage> rest = LeaseNow("jobs", 10);
  EXPECT_EQ(Bodies(rest), (std::vector<std::string>{"d", "e"}));
  EXPECT_TRUE(LeaseNow("jobs", 10).empty());
  EXPECT_TRUE(LeaseNow("other", 10).empty());

  QueueStats mid = StatsOf("jobs");
  EXPECT_EQ(mid.in_flight, 5u);
  EXPECT_EQ(mid.ready, 0u);

  for (const auto& batch : {first, rest}) {
    for (const auto& m : batch) {
      EXPECT_TRUE(q_->Ack(m.id, m.attempt).ok());
      EXPECT_EQ(q_->Ack(m.id, m.attempt).code(), StatusCode::kNotFound);
    }
  }
  QueueStats s = StatsOf("jobs");
  EXPECT_EQ(s.published, 5u);
  EXPECT_EQ(s.acked, 5u);
  EXPECT_EQ(s.ready + s.in_flight + s.delayed + s.dead, 0u);
  EXPECT_EQ(q_->Ack(12345, 1).code(), StatusCode::kNotFound);
  EXPECT_TRUE(LeaseNow("jobs", 0).empty());
}

TEST_P(QueueTest, BodiesAndHeadersKeepArbitraryBytes) {
  std::string body;
  for (int i = 0; i < 65536; ++i) {
    body.push_back(static_cast<char>(i % 256));  // every byte value, NULs included
  }
  QueueHeaders headers = {
      {"content-type", "application/octet-stream"},
      {"x-bin", std::string("\0\x01\x7f\x80\xfe\xff\"\\", 8)},
      {"x-utf8", "h\xc3\xa9llo \xe2\x9c\x93"},
      {"x-dup", "1"},
      {"x-dup", "2"},
      {"", ""},
  };
  Pub("bin", body, headers);
  Pub("bin", "");
  Pub("bin", std::string("\0", 1));
  std::vector<QueueMessage> batch = LeaseNow("bin", 10);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].body.size(), body.size());
  EXPECT_TRUE(batch[0].body == body);
  EXPECT_EQ(batch[0].headers, headers);
  EXPECT_EQ(batch[1].body, "");
  EXPECT_TRUE(batch[1].headers.empty());
  EXPECT_EQ(batch[2].body, std::string("\0", 1));

  // Error texts are bytes too.
  std::string error("exit \0 \xff", 8);
  ASSERT_TRUE(q_->Retry(batch[2].id, 1, 0, error).ok());
  std::vector<QueueMessage> again = LeaseWithin("bin", 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].last_error, error);
}

TEST_P(QueueTest, RejectsBadNamesAndArguments) {
  std::string longest(200, 'q');
  EXPECT_TRUE(q_->Publish(longest, "x").ok());
  EXPECT_EQ(q_->Publish(longest + "q", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->Publish("", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->Lease("", 1, 1s).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->Lease("q", 1, 0ms).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->Stats("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->ListDead("", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->ReplayDead(std::string(201, 'd')).status().code(), StatusCode::kInvalidArgument);

  std::vector<QueueMessage> batch = LeaseNow(longest, 1);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(q_->DeadLetter(batch[0].id, 1, "", "x").code(), StatusCode::kInvalidArgument);
  // The rejected dead-letter left the lease alone.
  EXPECT_TRUE(q_->Ack(batch[0].id, 1).ok());
}

TEST_P(QueueTest, ExpiredLeaseIsRedeliveredWithTheNextAttempt) {
  int64_t id = Pub("slow", "work");
  Clock::time_point leased_at = Clock::now();
  std::vector<QueueMessage> first = LeaseNow("slow", 1, 50ms);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].attempt, 1u);
  EXPECT_TRUE(LeaseNow("slow", 1).empty()) << "a leased message is hidden";
  EXPECT_EQ(StatsOf("slow").in_flight, 1u);

  std::vector<QueueMessage> second = LeaseWithin("slow", 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GE(Since(leased_at), 45ms);  // not before the visibility passed (ms rounding aside)
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].attempt, 2u);
  EXPECT_EQ(second[0].body, "work");

  // The first consumer lost its lease: every way of ending it answers NotFound.
  EXPECT_EQ(q_->Ack(id, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(q_->Retry(id, 1, 0, "late").code(), StatusCode::kNotFound);
  EXPECT_EQ(q_->DeadLetter(id, 1, "slow.dlq", "late").code(), StatusCode::kNotFound);
  EXPECT_TRUE(q_->Ack(id, 2).ok());
  EXPECT_EQ(StatsOf("slow").acked, 1u);
}

TEST_P(QueueTest, ExpiredLeaseNotYetTakenCanStillBeAcked) {
  int64_t id = Pub("q", "x");
  ASSERT_EQ(LeaseNow("q", 1, 30ms).size(), 1u);
  Clock::time_point deadline = Clock::now() + 5s;
  while (StatsOf("q").ready == 0 && Clock::now() < deadline) {
    q_->WaitForReady("q", deadline);
  }
  ASSERT_EQ(StatsOf("q").ready, 1u);
  EXPECT_TRUE(q_->Ack(id, 1).ok());
  EXPECT_TRUE(LeaseNow("q", 1).empty());
}

TEST_P(QueueTest, RetryDelaysTheMessageAndKeepsTheError) {
  int64_t id = Pub("mail", "hello");
  ASSERT_EQ(LeaseNow("mail", 1).size(), 1u);
  int64_t retry_at = UnixMillisNow() + 100;
  ASSERT_TRUE(q_->Retry(id, 1, retry_at, "smtp: 451 try later").ok());
  EXPECT_EQ(q_->Retry(id, 1, retry_at, "again").code(), StatusCode::kNotFound);
  EXPECT_EQ(q_->Ack(id, 1).code(), StatusCode::kNotFound) << "the retry ended the lease";

  QueueStats s = StatsOf("mail");
  EXPECT_EQ(s.delayed, 1u);
  EXPECT_EQ(s.ready, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_TRUE(LeaseNow("mail", 1).empty());

  std::vector<QueueMessage> again = LeaseWithin("mail", 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GE(UnixMillisNow(), retry_at);
  EXPECT_EQ(again[0].attempt, 2u);
  EXPECT_EQ(again[0].last_error, "smtp: 451 try later");
  EXPECT_TRUE(q_->Ack(id, 2).ok());
}

TEST_P(QueueTest, DeadLettersAreListedAndReplayed) {
  int64_t m1 = Pub("orders", "one", {{"k", "v"}});
  int64_t m2 = Pub("orders", "two");
  ASSERT_EQ(LeaseNow("orders", 2).size(), 2u);
  ASSERT_TRUE(q_->Retry(m1, 1, 0, "e1").ok());
  std::vector<QueueMessage> again = LeaseNow("orders", 1);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(again[0].id, m1);
  ASSERT_TRUE(q_->DeadLetter(m1, 2, "orders.dlq", "gave up after 2 attempts: e1").ok());
  ASSERT_TRUE(q_->DeadLetter(m2, 1, "orders.dlq", "undecodable: no body").ok());
  EXPECT_EQ(q_->DeadLetter(m1, 2, "orders.dlq", "twice").code(), StatusCode::kNotFound);

  QueueStats orders = StatsOf("orders");
  EXPECT_EQ(orders.ready + orders.in_flight + orders.delayed + orders.dead, 0u);
  EXPECT_EQ(StatsOf("orders.dlq").dead, 2u);
  EXPECT_TRUE(LeaseNow("orders.dlq", 10).empty()) << "dead letters are not leased";

  auto dead = q_->ListDead("orders.dlq", 10);
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  ASSERT_EQ(dead->size(), 2u);
  const DeadLetter& d1 = (*dead)[0];
  EXPECT_EQ(d1.message.id, m1);
  EXPECT_EQ(d1.message.queue, "orders");
  EXPECT_EQ(d1.origin_queue, "orders");
  EXPECT_EQ(d1.message.body, "one");
  EXPECT_EQ(d1.message.headers, (QueueHeaders{{"k", "v"}}));
  EXPECT_EQ(d1.message.attempt, 2u);
  EXPECT_EQ(d1.message.last_error, "e1");
  EXPECT_EQ(d1.error, "gave up after 2 attempts: e1");
  EXPECT_GT(d1.dead_unix_ms, 0);
  EXPECT_EQ((*dead)[1].message.id, m2);
  EXPECT_EQ((*dead)[1].error, "undecodable: no body");
  EXPECT_EQ(q_->ListDead("orders.dlq", 1)->size(), 1u);
  EXPECT_TRUE(q_->ListDead("orders", 10)->empty());

  auto queues = q_->ListQueues();
  ASSERT_TRUE(queues.ok());
  ASSERT_EQ(queues->size(), 2u);
  EXPECT_EQ((*queues)[0].queue, "orders");
  EXPECT_EQ((*queues)[1].queue, "orders.dlq");
  EXPECT_EQ((*queues)[1].dead, 2u);

  auto moved = q_->ReplayDead("orders.dlq");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 2u);
  EXPECT_EQ(*q_->ReplayDead("orders.dlq"), 0u);
  EXPECT_EQ(StatsOf("orders.dlq").dead, 0u);
  QueueStats replayed = StatsOf("orders");
  EXPECT_EQ(replayed.ready, 2u);
  EXPECT_EQ(replayed.published, 2u) << "a replay is not a publish";

  std::vector<QueueMessage> back = LeaseNow("orders", 10);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].id, m1);
  EXPECT_EQ(back[0].attempt, 1u) << "replay restarts at attempt 0";
  EXPECT_EQ(back[0].queue, "orders");
  EXPECT_EQ(back[0].last_error, "gave up after 2 attempts: e1");
  EXPECT_EQ(back[0].headers, (QueueHeaders{{"k", "v"}}));
  EXPECT_EQ(back[1].id, m2);
  for (const auto& m : back) {
    EXPECT_TRUE(q_->Ack(m.id, m.attempt).ok());
  }
}

TEST_P(QueueTest, StatsCountEachState) {
  int64_t t0 = UnixMillisNow();
  Pub("s", "in-flight");
  std::vector<QueueMessage> flying = LeaseNow("s", 1);
  ASSERT_EQ(flying.size(), 1u);
  Pub("s", "doomed");
  std::vector<QueueMessage> doomed = LeaseNow("s", 1);
  ASSERT_EQ(doomed.size(), 1u);
  ASSERT_TRUE(q_->DeadLetter(doomed[0].id, 1, "s.dlq", "bad").ok());
  Pub("s", "ready");
  Pub("s", "later", {}, UnixMillisNow() + 60'000);

  QueueStats s = StatsOf("s");
  EXPECT_EQ(s.queue, "s");
  EXPECT_EQ(s.ready, 1u);
  EXPECT_EQ(s.delayed, 1u);
  EXPECT_EQ(s.in_flight, 1u);
  EXPECT_EQ(s.dead, 0u);
  EXPECT_EQ(s.published, 4u);
  EXPECT_EQ(s.acked, 0u);
  EXPECT_GE(s.oldest_ready_unix_ms, t0);
  EXPECT_LE(s.oldest_ready_unix_ms, UnixMillisNow());
  EXPECT_EQ(StatsOf("s.dlq").dead, 1u);

  ASSERT_TRUE(q_->Ack(flying[0].id, 1).ok());
  QueueStats after = StatsOf("s");
  EXPECT_EQ(after.in_flight, 0u);
  EXPECT_EQ(after.acked, 1u);

  QueueStats never = StatsOf("never-used");
  EXPECT_EQ(never.queue, "never-used");
  EXPECT_EQ(never.ready + never.delayed + never.in_flight + never.dead + never.published, 0u);
  EXPECT_EQ(never.oldest_ready_unix_ms, 0);
}

TEST_P(QueueTest, MessagesSurviveReopenAndOldLeasesAreReleased) {
  int64_t a = Pub("d", "a", {{"h", "1"}});
  Pub("d", "b");
  Pub("d", "c");
  ASSERT_EQ(LeaseNow("d", 1).size(), 1u);  // a, leased for a minute
  int64_t last = Pub("tmp", "x");
  std::vector<QueueMessage> tmp = LeaseNow("tmp", 1);
  ASSERT_EQ(tmp.size(), 1u);
  ASSERT_TRUE(q_->Ack(tmp[0].id, 1).ok());  // the highest id is gone now

  q_.reset();
  q_ = OpenQueue();
  ASSERT_NE(q_, nullptr);

  if (Redis()) {
    // Redis is shared by every gateway: a new process does not release other consumers'
    // leases (one of them may still hold it); "a" stays leased until its visibility passes.
    QueueStats s = StatsOf("d");
    EXPECT_EQ(s.ready, 2u);
    EXPECT_EQ(s.in_flight, 1u);
    EXPECT_EQ(s.published, 3u);
    EXPECT_TRUE(q_->Ack(a, 1).ok()) << "the lease survives the process";
    EXPECT_EQ(Bodies(LeaseNow("d", 10)), (std::vector<std::string>{"b", "c"}));
    EXPECT_GT(Pub("tmp", "y"), last) << "ids are never reused";
    return;
  }
  // The lease of the previous owner is released at open: "a" is ready again at once.
  QueueStats s = StatsOf("d");
  EXPECT_EQ(s.ready, 3u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.published, 3u);
  EXPECT_EQ(q_->Ack(a, 1).code(), StatusCode::kNotFound) << "the old lease is gone";
  std::vector<QueueMessage> rest = LeaseNow("d", 10);
  ASSERT_EQ(Bodies(rest), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rest[0].attempt, 2u) << "the released delivery counts as an attempt";
  EXPECT_EQ(rest[0].headers, (QueueHeaders{{"h", "1"}}));
  for (const auto& m : rest) {
    EXPECT_TRUE(q_->Ack(m.id, m.attempt).ok());
  }
  EXPECT_EQ(StatsOf("d").acked, 3u);
  EXPECT_GT(Pub("tmp", "y"), last) << "ids are never reused";
}

TEST_P(QueueTest, WaitForReadyWakesOnPublishFromAnotherThread) {
  std::promise<milliseconds> waited;
  std::thread waiter([&] {
    Clock::time_point t0 = Clock::now();
    q_->WaitForReady("w", t0 + 20s);
    waited.set_value(Since(t0));
  });
  Pub("w", "wake up");
  std::future<milliseconds> f = waited.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_LT(f.get(), 5s);
  waiter.join();
  EXPECT_EQ(LeaseNow("w", 1).size(), 1u);
}

TEST_P(QueueTest, WaitForReadyReturnsAtOnceOrAtTheDeadline) {
  Clock::time_point t0 = Clock::now();
  q_->WaitForReady("empty", t0 + 100ms);
  EXPECT_GE(Since(t0), 100ms);
  EXPECT_LT(Since(t0), 5s);

  // Another queue's publish does not end the wait early.
  Pub("elsewhere", "x");
  t0 = Clock::now();
  q_->WaitForReady("empty", t0 + 50ms);
  EXPECT_GE(Since(t0), 50ms);

  // A message in flight for longer than the deadline does not wake it either.
  Pub("busy", "x");
  ASSERT_EQ(LeaseNow("busy", 1).size(), 1u);
  t0 = Clock::now();
  q_->WaitForReady("busy", t0 + 50ms);
  EXPECT_GE(Since(t0), 50ms);

  Pub("full", "x");
  t0 = Clock::now();
  q_->WaitForReady("full", t0 + 20s);
  EXPECT_LT(Since(t0), 5s);

  t0 = Clock::now();
  q_->WaitForReady("empty", t0 - 1s);  // deadline already passed
  EXPECT_LT(Since(t0), 5s);
}

TEST_P(QueueTest, WaitForReadyWakesWhenADelayedMessageIsDue) {
  int64_t due = UnixMillisNow() + 150;
  Pub("later", "x", {}, due);
  EXPECT_TRUE(LeaseNow("later", 1).empty());
  Clock::time_point t0 = Clock::now();
  q_->WaitForReady("later", t0 + 20s);
  EXPECT_LT(Since(t0), 5s);
  EXPECT_GE(UnixMillisNow(), due);
  EXPECT_EQ(LeaseNow("later", 1).size(), 1u);
}

TEST_P(QueueTest, WakeAllReleasesWaiters) {
  std::promise<void> woke;
  std::thread waiter([&] {
    q_->WaitForReady("idle", Clock::now() + 60s);
    woke.set_value();
  });
  std::future<void> f = woke.get_future();
  // WakeAll is not sticky, so repeat it until the waiter (which may not be waiting yet) wakes.
  Clock::time_point deadline = Clock::now() + 10s;
  do {
    q_->WakeAll();
  } while (f.wait_for(10ms) != std::future_status::ready && Clock::now() < deadline);
  EXPECT_EQ(f.wait_for(0s), std::future_status::ready);
  waiter.join();
}

TEST_P(QueueTest, ConcurrentPublishersAndConsumersAckEveryMessageExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  constexpr int kTotal = kThreads * kPerThread;
  Clock::time_point deadline = Clock::now() + 60s;

  std::mutex mu;
  std::map<int64_t, std::string> published;  // id -> body
  std::vector<std::pair<int64_t, std::string>> acked;
  std::atomic<int> acked_count{0};
  std::atomic<int> errors{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string body = "p" + std::to_string(t) + "-" + std::to_string(i);
        auto id = q_->Publish("load", body);
        if (!id.ok()) {
          ++errors;
          continue;
        }
        std::lock_guard lock(mu);
        published.emplace(*id, body);
      }
    });
    threads.emplace_back([&] {
      while (acked_count.load() < kTotal && Clock::now() < deadline) {
        q_->WaitForReady("load", std::min(deadline, Clock::now() + 50ms));
        auto batch = q_->Lease("load", 32, 30s);
        if (!batch.ok()) {
          ++errors;
          continue;
        }
        for (const QueueMessage& m : *batch) {
          // Now and then a stale attempt first: it fails alone, inside a shared commit.
          if (m.id % 10 == 0 && q_->Ack(m.id, m.attempt + 1).code() != StatusCode::kNotFound) {
            ++errors;
          }
          if (!q_->Ack(m.id, m.attempt).ok()) {
            ++errors;
            continue;
          }
          {
            std::lock_guard lock(mu);
            acked.emplace_back(m.id, m.body);
          }
          ++acked_count;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(errors.load(), 0);
  ASSERT_EQ(published.size(), static_cast<std::size_t>(kTotal));
  ASSERT_EQ(acked.size(), static_cast<std::size_t>(kTotal));
  std::sort(acked.begin(), acked.end());
  for (std::size_t i = 0; i < acked.size(); ++i) {
    if (i > 0) {
      ASSERT_NE(acked[i].first, acked[i - 1].first) << "acked twice";
    }
    auto it = published.find(acked[i].first);
    ASSERT_NE(it, published.end());
    EXPECT_EQ(it->second, acked[i].second);
  }
  QueueStats s = StatsOf("load");
  EXPECT_EQ(s.published, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.acked, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.ready + s.in_flight + s.delayed, 0u);
}

AsyncRecord Record(std::string id, std::string status) {
  AsyncRecord r;
  r.invocation_id = std::move(id);
  r.function = "resize";
  r.status = std::move(status);
  return r;
}

TEST_P(QueueTest, AsyncRecordsFollowTheirInvocation) {
  int64_t t0 = UnixMillisNow();
  AsyncRecord queued = Record("inv-1", "queued");
  queued.tenant = "acme";
  queued.callback_url = "https://example.com/hook";
  queued.callback_status = "pending";
  auto id = q_->PublishAsync("async", queued, "request body", {{"x-method", "POST"}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();

  auto got = q_->GetAsync("inv-1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, "queued");
  EXPECT_EQ(got->function, "resize");
  EXPECT_EQ(got->tenant, "acme");
  EXPECT_EQ(got->callback_url, "https://example.com/hook");
  EXPECT_GE(got->created_unix_ms, t0);
  EXPECT_GE(got->updated_unix_ms, t0);
  int64_t created = got->created_unix_ms;

  std::vector<QueueMessage> batch = LeaseNow("async", 1);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].id, *id);
  EXPECT_EQ(batch[0].body, "request body");
  EXPECT_EQ(batch[0].headers, (QueueHeaders{{"x-method", "POST"}}));

  AsyncRecord running = Record("inv-1", "running");
  running.attempts = 1;
  ASSERT_TRUE(q_->PutAsync(running).ok());
  EXPECT_EQ(q_->GetAsync("inv-1")->status, "running");
  EXPECT_EQ(q_->GetAsync("inv-1")->created_unix_ms, created) << "0 keeps the creation time";

  AsyncRecord done = Record("inv-1", "succeeded");
  done.tenant = "acme";
  done.http_status = 200;
  done.headers = {{"content-type", "image/png"}};
  done.body = std::string("\x89PNG\0\r\n", 7);
  done.body_truncated = true;
  done.attempts = 1;
  done.callback_url = "https://example.com/hook";
  done.callback_status = "delivered";
  done.created_unix_ms = created;
  done.updated_unix_ms = 1000;
  // A lost lease writes nothing: the ack and the result go together.
  EXPECT_EQ(q_->AckWithResult(*id, 2, done).code(), StatusCode::kNotFound);
  EXPECT_EQ(q_->GetAsync("inv-1")->status, "running");
  EXPECT_EQ(q_->AckWithResult(*id, 1, Record("inv-1", "bogus")).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(q_->AckWithResult(*id, 1, done).ok());
  EXPECT_EQ(q_->AckWithResult(*id, 1, done).code(), StatusCode::kNotFound);
  EXPECT_EQ(StatsOf("async").acked, 1u);

  got = q_->GetAsync("inv-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, "succeeded");
  EXPECT_EQ(got->http_status, 200);
  EXPECT_EQ(got->tenant, "acme");
  EXPECT_EQ(got->headers, done.headers);
  EXPECT_EQ(got->body, done.body);
  EXPECT_TRUE(got->body_truncated);
  EXPECT_EQ(got->attempts, 1u);
  EXPECT_EQ(got->callback_status, "delivered");
  EXPECT_EQ(got->created_unix_ms, created);
  EXPECT_EQ(got->updated_unix_ms, 1000);

  AsyncRecord still_running = Record("inv-2", "running");
  still_running.updated_unix_ms = 1000;
  AsyncRecord failed = Record("inv-3", "failed");
  failed.error_code = "function_timeout";
  failed.error_message = "ran for 30s";
  failed.updated_unix_ms = 1000;
  AsyncRecord recent = Record("inv-4", "succeeded");
  recent.updated_unix_ms = 5000;
  for (const auto& r : {still_running, failed, recent}) {
    ASSERT_TRUE(q_->PutAsync(r).ok());
  }
  EXPECT_EQ(q_->GetAsync("inv-3")->error_code, "function_timeout");
  EXPECT_EQ(q_->GetAsync("inv-3")->error_message, "ran for 30s");

  auto expired = q_->ExpireAsync(2000);
  ASSERT_TRUE(expired.ok());
  if (Redis()) {
    // Redis expires records by their TTL (the retention, an hour here), not by ExpireAsync.
    EXPECT_EQ(*expired, 0u);
    EXPECT_TRUE(q_->GetAsync("inv-1").ok());
  } else {
    EXPECT_EQ(*expired, 2u);  // inv-1 and inv-3; inv-2 is not finished, inv-4 is recent
    EXPECT_EQ(q_->GetAsync("inv-1").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(q_->GetAsync("inv-3").status().code(), StatusCode::kNotFound);
  }
  EXPECT_TRUE(q_->GetAsync("inv-2").ok());
  EXPECT_TRUE(q_->GetAsync("inv-4").ok());
  EXPECT_EQ(q_->GetAsync("nope").status().code(), StatusCode::kNotFound);

  Status bad = q_->PutAsync(Record("", "done"));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("invocation_id"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("\"done\""), std::string::npos) << bad.message();
  EXPECT_EQ(q_->PublishAsync("async", Record("", "queued"), "", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatsOf("async").published, 1u) << "a rejected PublishAsync publishes nothing";
}

// The embedded queue keeps the settings table in its file (its contract is tested with
// PostgreSQL's in tests/integration/registry/settings_test.cc); Redis holds no definitions: a
// cluster keeps them in PostgreSQL, so a Redis flush cannot lose them.
TEST_P(QueueTest, OnlyTheEmbeddedQueueHoldsSettings) {
  if (Redis()) {
    EXPECT_EQ(q_->Settings(), nullptr);
    return;
  }
  ASSERT_NE(q_->Settings(), nullptr);
  ASSERT_TRUE(q_->Settings()->PutSetting("trigger", "a", "{}").ok());
  q_.reset();
  q_ = OpenQueue();
  ASSERT_NE(q_, nullptr);
  EXPECT_EQ(q_->Settings()->ListSettings("trigger")->size(), 1u);
}

TEST_P(QueueTest, IdempotencyKeyQueuesOnceWithinItsTtl) {
  AsyncRecord first = Record("inv-a", "queued");
  auto a = q_->PublishAsyncOnce("async", "acme/resize/k1", 60s, first, "one", {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(a->duplicate);
  EXPECT_GT(a->id, 0);
  EXPECT_EQ(a->invocation_id, "inv-a");

  auto again =
      q_->PublishAsyncOnce("async", "acme/resize/k1", 60s, Record("inv-b", "queued"), "two", {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->invocation_id, "inv-a");
  EXPECT_EQ(q_->GetAsync("inv-b").status().code(), StatusCode::kNotFound) << "no second record";

  auto other =
      q_->PublishAsyncOnce("async", "acme/resize/k2", 60s, Record("inv-c", "queued"), "three", {});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->duplicate);
  EXPECT_EQ(StatsOf("async").published, 2u);
  EXPECT_EQ(Bodies(LeaseNow("async", 10)), (std::vector<std::string>{"one", "three"}));

  // A key whose ttl ran out is free again.
  ASSERT_TRUE(q_->PublishAsyncOnce("async", "short", 30ms, Record("inv-d", "queued"), "", {}).ok());
  Clock::time_point deadline = Clock::now() + 5s;
  bool reused = false;
  while (!reused && Clock::now() < deadline) {
    auto r = q_->PublishAsyncOnce("async", "short", 30ms, Record("inv-e", "queued"), "", {});
    ASSERT_TRUE(r.ok());
    reused = !r->duplicate;
    if (!reused) {
      q_->WaitForReady("never-used", Clock::now() + 10ms);  // a bounded pause, no sleep
    }
  }
  EXPECT_TRUE(reused);
  EXPECT_EQ(q_->PublishAsyncOnce("async", "", 60s, Record("x", "queued"), "", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->PublishAsyncOnce("async", "k", 0s, Record("x", "queued"), "", {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(QueueTest, AnotherConsumerTakesOverAnExpiredLease) {
  // Two gateways on one store: the first leases and dies (never acks); the second gets the
  // message once the visibility passed, with the next attempt, and the first's lease is lost.
  if (!Redis()) {
    GTEST_SKIP() << "one process owns a SQLite queue";
  }
  std::unique_ptr<Queue> other = OpenQueue("gw-2");
  ASSERT_NE(other, nullptr);
  int64_t id = Pub("work", "job");
  std::vector<QueueMessage> first = LeaseNow("work", 1, 100ms);
  ASSERT_EQ(first.size(), 1u);
  auto none = other->Lease("work", 1, kLong);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "leased by gw-1";

  Clock::time_point deadline = Clock::now() + 5s;
  std::vector<QueueMessage> taken;
  while (taken.empty() && Clock::now() < deadline) {
    other->WaitForReady("work", deadline);
    auto b = other->Lease("work", 1, kLong);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    taken = *b;
  }
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, id);
  EXPECT_EQ(taken[0].attempt, 2u);
  EXPECT_EQ(q_->Ack(id, 1).code(), StatusCode::kNotFound);
  EXPECT_TRUE(other->Ack(id, 2).ok());
  EXPECT_EQ(StatsOf("work").acked, 1u);
}

TEST_P(QueueTest, AnExtendedLeaseOutlivesItsFirstVisibility) {
  // Another consumer (Redis: another gateway; SQLite: the same store) waits for the message
  // while its holder extends the lease: past the first deadline nobody takes it over.
  std::unique_ptr<Queue> other = Redis() ? OpenQueue("gw-2") : nullptr;
  Queue& taker = other ? *other : *q_;
  int64_t id = Pub("long", "job");
  Clock::time_point leased_at = Clock::now();
  std::vector<QueueMessage> first = LeaseNow("long", 1, 1s);
  ASSERT_EQ(first.size(), 1u);
  // Extend to 1 s from now three times, 400 ms apart: the lease lives past its first deadline,
  // and the other consumer never gets it meanwhile.
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(q_->Extend(id, 1, 1s).ok());
    Clock::time_point next = Clock::now() + 400ms;
    while (Clock::now() < next) {
      taker.WaitForReady("long", next);
      auto b = taker.Lease("long", 1, kLong);
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      ASSERT_TRUE(b->empty()) << "an extended lease was taken over after " << Since(leased_at);
    }
  }
  EXPECT_GE(Since(leased_at), 1200ms);
  EXPECT_EQ(StatsOf("long").in_flight, 1u);
  // Once no longer extended, the lease expires and is taken over with the next attempt.
  Clock::time_point deadline = Clock::now() + 5s;
  std::vector<QueueMessage> taken;
  while (taken.empty() && Clock::now() < deadline) {
    taker.WaitForReady("long", deadline);
    auto b = taker.Lease("long", 1, kLong);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    taken = *b;
  }
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].attempt, 2u);
  EXPECT_TRUE(taker.Ack(id, 2).ok());
}

TEST_P(QueueTest, ExtendingALostLeaseAnswersNotFound) {
  int64_t id = Pub("q", "x");
  ASSERT_EQ(LeaseNow("q", 1, 30ms).size(), 1u);
  EXPECT_EQ(q_->Extend(id, 1, 0ms).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q_->Extend(id, 2, 1s).code(), StatusCode::kNotFound) << "not this attempt's lease";
  std::vector<QueueMessage> second = LeaseWithin("q", 1);  // the 30 ms lease expired
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(second[0].attempt, 2u);
  EXPECT_EQ(q_->Extend(id, 1, 1s).code(), StatusCode::kNotFound) << "taken over";
  EXPECT_TRUE(q_->Extend(id, 2, 1s).ok());
  ASSERT_TRUE(q_->Ack(id, 2).ok());
  EXPECT_EQ(q_->Extend(id, 2, 1s).code(), StatusCode::kNotFound) << "acked";
  EXPECT_EQ(q_->Extend(12345678, 1, 1s).code(), StatusCode::kNotFound) << "never existed";
  // A retried (or dead-lettered) message's lease is closed too.
  int64_t r = Pub("q", "y");
  ASSERT_EQ(LeaseNow("q", 1).size(), 1u);
  ASSERT_TRUE(q_->Retry(r, 1, UnixMillisNow() + 60'000, "later").ok());
  EXPECT_EQ(q_->Extend(r, 1, 1s).code(), StatusCode::kNotFound) << "retried";
}

TEST_P(QueueTest, AsyncRecordsExpireAfterTheRetention) {
  if (!Redis()) {
    GTEST_SKIP() << "SQLite records expire by ExpireAsync (AsyncRecordsFollowTheirInvocation)";
  }
  auto q = OpenRedisQueue(
      {.url = redis_->url(), .prefix = prefix_, .consumer = "gw-ttl", .async_retention = 50ms});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_TRUE((*q)->PutAsync(Record("short-lived", "succeeded")).ok());
  Clock::time_point deadline = Clock::now() + 5s;
  while ((*q)->GetAsync("short-lived").ok() && Clock::now() < deadline) {
    q_->WaitForReady("never-used", Clock::now() + 10ms);  // a bounded pause, no sleep
  }
  EXPECT_EQ((*q)->GetAsync("short-lived").status().code(), StatusCode::kNotFound);
}

TEST_P(QueueTest, UnreachableRedisAnswersUnavailableAndRecovers) {
  if (!Redis()) {
    GTEST_SKIP() << "the embedded queue has no server";
  }
  Pub("r", "before");
  redis_->Kill();
  EXPECT_EQ(q_->Publish("r", "x").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(q_->Lease("r", 1, kLong).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(q_->GetAsync("any").status().code(), StatusCode::kUnavailable);
  Clock::time_point t0 = Clock::now();
  q_->WaitForReady("r", t0 + 20s);  // returns early instead of blocking on a dead server
  EXPECT_LT(Since(t0), 5s);
  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  // The AOF (appendfsync always) kept the message; the queue reconnects by itself.
  std::vector<QueueMessage> back = LeaseNow("r", 10);
  EXPECT_EQ(Bodies(back), (std::vector<std::string>{"before"}));
}

// An async publish whose connection broke after the script left may have run: Redis executes
// what it read before it closes a connection (a SIGTERM shutdown does). A caller told
// "unavailable" would retry with a new invocation id, and the first one would run too. So the
// queue asks on a fresh connection whether its write landed, runs it again only if it did not,
// and answers Unknown when it cannot ask. A proxy breaks the exchange where each case needs.
class AsyncPublishFaults : public QueueTest {
 protected:
  void SetUp() override {
    QueueTest::SetUp();
    if (IsSkipped() || !Redis()) {
      GTEST_SKIP() << "only a networked queue can lose a reply";
    }
    proxy_ = std::make_unique<faas::testing::TcpProxy>(redis_->port());
    via_ = OpenQueue("gw-1", "redis://127.0.0.1:" + std::to_string(proxy_->port()));
    ASSERT_NE(via_, nullptr);
    ASSERT_TRUE(via_->Publish("warm", "x").ok());  // the pool holds a connection through the proxy
    // Redis knows the scripts, so the exchange the proxy breaks is the one that runs them (not
    // a NOSCRIPT answer).
    ASSERT_TRUE(q_->PublishAsync("other", Record("inv-0", "queued"), "", {}).ok());
    ASSERT_TRUE(q_->PublishAsyncOnce("other", "k0", 60s, Record("inv-00", "queued"), "", {}).ok());
  }
  // Messages published to "async", read directly.
  uint64_t Published() { return StatsOf("async").published; }

  std::unique_ptr<faas::testing::TcpProxy> proxy_;
  std::unique_ptr<Queue> via_;
};

TEST_P(AsyncPublishFaults, AReplyLostAfterTheScriptRanIsFoundNotRepeated) {
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropReply);
  auto id = via_->PublishAsync("async", Record("inv-1", "queued"), "body", {});
  EXPECT_EQ(proxy_->faults_fired(), 1);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(Published(), 1u) << "published once, not twice";
  EXPECT_EQ(q_->GetAsync("inv-1")->status, "queued");
  std::vector<QueueMessage> batch = LeaseNow("async", 10);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].body, "body");
  if (id.ok()) {
    EXPECT_EQ(*id, batch[0].id);
  }
}

TEST_P(AsyncPublishFaults, AScriptThatNeverArrivedIsSentAgain) {
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropRequest);
  auto id = via_->PublishAsync("async", Record("inv-1", "queued"), "body", {});
  EXPECT_EQ(proxy_->faults_fired(), 1);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(Published(), 1u);
  EXPECT_EQ(Bodies(LeaseNow("async", 10)), (std::vector<std::string>{"body"}));
}

TEST_P(AsyncPublishFaults, WhenNobodyCanBeAskedTheOutcomeIsUnknown) {
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropReply, /*refuse_after=*/true);
  auto id = via_->PublishAsync("async", Record("inv-1", "queued"), "body", {});
  EXPECT_EQ(id.status().code(), StatusCode::kUnknown) << id.status().ToString();
  EXPECT_NE(id.status().message().find("may have been queued"), std::string::npos)
      << id.status().message();
  EXPECT_EQ(Published(), 1u) << "it ran: unavailable would have been a lie";
  // Refused before anything left: that one surely did not run.
  auto refused = via_->PublishAsync("async", Record("inv-2", "queued"), "body", {});
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  proxy_->Refuse(false);
  auto after = via_->PublishAsync("async", Record("inv-3", "queued"), "body", {});
  EXPECT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(Published(), 2u);
  EXPECT_EQ(q_->GetAsync("inv-2").status().code(), StatusCode::kNotFound);
}

TEST_P(AsyncPublishFaults, AnIdempotentPublishIsFoundOrRepeatedUnderItsKey) {
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropReply);
  auto a = via_->PublishAsyncOnce("async", "k1", 60s, Record("inv-a", "queued"), "one", {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(a->duplicate) << "its own write, found: not a duplicate";
  EXPECT_EQ(a->invocation_id, "inv-a");
  EXPECT_GT(a->id, 0);
  // The key held by inv-a: a second publish whose request is dropped runs again, and is told
  // it is a duplicate of inv-a, as it would have been.
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropRequest);
  auto b = via_->PublishAsyncOnce("async", "k1", 60s, Record("inv-b", "queued"), "two", {});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(b->duplicate);
  EXPECT_EQ(b->invocation_id, "inv-a");
  // A duplicate whose reply is lost: nothing of inv-c was written, so it runs again, and is a
  // duplicate again.
  proxy_->Arm(faas::testing::TcpProxy::Fault::kDropReply);
  auto c = via_->PublishAsyncOnce("async", "k1", 60s, Record("inv-c", "queued"), "three", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->duplicate);
  EXPECT_EQ(c->invocation_id, "inv-a");
  EXPECT_EQ(proxy_->faults_fired(), 3);
  EXPECT_EQ(Published(), 1u);
  EXPECT_EQ(Bodies(LeaseNow("async", 10)), (std::vector<std::string>{"one"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, AsyncPublishFaults, ::testing::Values("redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

INSTANTIATE_TEST_SUITE_P(Backends, QueueTest, ::testing::Values("sqlite", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace faas::store
