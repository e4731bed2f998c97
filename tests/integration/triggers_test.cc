// Queue triggers (docs/triggers.md) against a real redis-server and a real embedded queue (SQLite).
// The function is a recorder in this process; no scheduler is involved.
#include "faas/triggers/triggers.h"

#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "faas/base/time.h"
#include "faas/store/queue.h"
#include "faas/store/settings.h"

#include "redis_process.h"
#include "subprocess.h"

namespace faas::triggers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RedisProcess;
using testing::TempDir;

// Polls `cond` every 2 ms until it holds or `timeout` passes.
template <typename F>
bool Eventually(F cond, milliseconds timeout = seconds(20)) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  return cond();
}

// A latch the test opens; invocations wait on it.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// The test's function: records every call; thread-safe. `behaviour` decides the outcome.
class Recorder {
 public:
  struct Call {
    std::string body;
    std::string id;
    uint32_t attempt = 0;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  std::function<DeliveryResult(const Delivery&)> behaviour;  // set before the trigger starts

  InvokeFn Fn() {
    return [this](const Delivery& d) { return Run(d); };
  }

  std::size_t Succeeded() const {
    std::lock_guard lock(mu_);
    return succeeded_.size();
  }
  bool SucceededFor(const std::string& body) const {
    std::lock_guard lock(mu_);
    return succeeded_.contains(body);
  }
  std::size_t Calls() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  std::vector<Call> CallsSnapshot() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<uint32_t> AttemptsOf(const std::string& body) const {
    std::lock_guard lock(mu_);
    std::vector<uint32_t> out;
    for (const auto& c : calls_) {
      if (c.body == body) {
        out.push_back(c.attempt);
      }
    }
    return out;
  }
  int Running() const {
    std::lock_guard lock(mu_);
    return running_;
  }
  int MaxRunning() const {
    std::lock_guard lock(mu_);
    return max_running_;
  }

 private:
  DeliveryResult Run(const Delivery& d) {
    {
      std::lock_guard lock(mu_);
      calls_.push_back({d.body, d.message_id, d.attempt, d.headers});
      max_running_ = std::max(max_running_, ++running_);
    }
    DeliveryResult r = behaviour ? behaviour(d) : DeliveryResult{.ok = true, .error = ""};
    std::lock_guard lock(mu_);
    --running_;
    if (r.ok) {
      succeeded_.insert(d.body);
    }
    return r;
  }

  mutable std::mutex mu_;
  std::vector<Call> calls_;
  std::set<std::string> succeeded_;
  int running_ = 0;
  int max_running_ = 0;
};

// A minimal hiredis client for the test's own look at Redis.
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class TestRedis {
 public:
  bool Connect(int port) {
    ctx_.reset(redisConnect("127.0.0.1", port));
    return ctx_ != nullptr && ctx_->err == 0;
  }
  Reply Command(const std::vector<std::string>& argv) {
    std::vector<Reply> r = Pipeline({argv});
    return r.empty() ? nullptr : std::move(r.front());
  }
  std::vector<Reply> Pipeline(const std::vector<std::vector<std::string>>& cmds) {
    std::vector<Reply> out;
    for (const auto& argv : cmds) {
      std::vector<const char*> a;
      std::vector<std::size_t> l;
      for (const auto& s : argv) {
        a.push_back(s.data());
        l.push_back(s.size());
      }
      redisAppendCommandArgv(ctx_.get(), static_cast<int>(a.size()), a.data(), l.data());
    }
    for (std::size_t i = 0; i < cmds.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) {
        ADD_FAILURE() << "redis: " << ctx_->errstr;
        return out;
      }
      out.emplace_back(static_cast<redisReply*>(raw));
    }
    return out;
  }

 private:
  struct CtxFree {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, CtxFree> ctx_;
};

std::string Str(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string(r->str, r->len)
             : "";
}

std::vector<std::string> Bodies(const std::string& prefix, int n) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    out.push_back(prefix + std::to_string(i));
  }
  return out;
}

// One dead letter, from either source.
struct Dead {
  std::string body;
  std::string error;
  uint32_t attempts = 0;
  std::string source_id;
  std::map<std::string, std::string> fields;  // Redis: every field of the DLQ entry
};

enum class Source { kRedis, kEmbedded };

void PrintTo(Source s, std::ostream* os) {
  *os << (s == Source::kRedis ? "redis" : "embedded");
}

std::string SourceName(const ::testing::TestParamInfo<Source>& info) {
  return info.param == Source::kRedis ? "Redis" : "Embedded";
}

class TriggersTest : public ::testing::TestWithParam<Source> {
 protected:
  void SetUp() override {
    auto q = store::Queue::Open(tmp_.path() + "/queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    if (IsRedis()) {
      if (RedisProcess::ServerPath().empty()) {
        GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
      }
      std::string error;
      ASSERT_TRUE(server_.Start(&error)) << error;
      ASSERT_TRUE(client_.Connect(server_.port()));
    }
  }

  bool IsRedis() const { return GetParam() == Source::kRedis; }

  // A spec for `where` (stream or queue) with test-friendly timings.
  TriggerSpec Spec(const std::string& name, const std::string& where) {
    TriggerSpec s;
    s.name = name;
    s.function = "fn";
    if (IsRedis()) {
      s.source = server_.url();
      s.stream = where;
    } else {
      s.source = "embedded";
      s.queue = where;
    }
    s.batch = 16;
    s.concurrency = 4;
    s.max_attempts = 3;
    s.backoff_min = milliseconds(5);
    s.backoff_max = milliseconds(50);
    s.visibility_timeout = seconds(30);
    return s;
  }

  ManagerOptions Options(Recorder& rec, const std::string& consumer = "test-consumer") {
    return {.queue = queue_.get(),
            .invoke = rec.Fn(),
            .consumer_name = consumer,
            .settings_kind = "trigger"};
  }

  void Publish(const std::string& where, const std::vector<std::string>& bodies) {
    if (IsRedis()) {
      constexpr std::size_t kChunk = 1000;
      for (std::size_t i = 0; i < bodies.size(); i += kChunk) {
        std::vector<std::vector<std::string>> cmds;
        for (std::size_t k = i; k < std::min(bodies.size(), i + kChunk); ++k) {
          cmds.push_back({"XADD", where, "*", "body", bodies[k], "seq", std::to_string(k)});
        }
        for (const Reply& r : client_.Pipeline(cmds)) {
          ASSERT_EQ(r->type, REDIS_REPLY_STRING) << Str(r.get());
        }
      }
      return;
    }
    // Each Publish is its own durable transaction; concurrent publishers share fsyncs.
    constexpr std::size_t kThreads = 8;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (std::size_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (std::size_t k = t; k < bodies.size(); k += kThreads) {
          if (!queue_->Publish(where, bodies[k], {{"seq", std::to_string(k)}}).ok()) {
            ++failures;
          }
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    ASSERT_EQ(failures.load(), 0);
  }

  // Messages neither acknowledged nor dead-lettered (Redis: pending in the group; embedded:
  // ready, delayed or leased).
  int64_t Outstanding(const std::string& where, const std::string& group) {
    if (IsRedis()) {
      Reply r = client_.Command({"XPENDING", where, group});
      if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        return -1;
      }
      return r->element[0]->integer;
    }
    auto st = queue_->Stats(where);
    if (!st.ok()) {
      return -1;
    }
    return static_cast<int64_t>(st->ready + st->delayed + st->in_flight);
  }

  std::vector<Dead> DeadLetters(const std::string& dlq) {
    std::vector<Dead> out;
    if (IsRedis()) {
      Reply r = client_.Command({"XRANGE", dlq, "-", "+"});
      for (std::size_t i = 0; r != nullptr && i < r->elements; ++i) {
        const redisReply* fields = r->element[i]->element[1];
        Dead d;
        for (std::size_t k = 0; k + 1 < fields->elements; k += 2) {
          d.fields[Str(fields->element[k])] = Str(fields->element[k + 1]);
        }
        auto get = [&](const std::string& key) {
          auto it = d.fields.find(key);
          return it == d.fields.end() ? std::string() : it->second;
        };
        d.body = get("body");
        d.error = get("error");
        d.attempts = static_cast<uint32_t>(std::stoul("0" + get("attempts")));
        d.source_id = get("source_id");
        out.push_back(std::move(d));
      }
      return out;
    }
    auto dead = queue_->ListDead(dlq, 1000);
    EXPECT_TRUE(dead.ok()) << dead.status().ToString();
    for (const auto& dl : *dead) {
      out.push_back({.body = dl.message.body,
                     .error = dl.error,
                     .attempts = dl.message.attempt,
                     .source_id = std::to_string(dl.message.id),
                     .fields = {}});
    }
    return out;
  }

  TempDir tmp_;
  std::unique_ptr<store::Queue> queue_;
  RedisProcess server_;
  TestRedis client_;
};

INSTANTIATE_TEST_SUITE_P(Sources, TriggersTest,
                         ::testing::Values(Source::kRedis, Source::kEmbedded), SourceName);

TEST_P(TriggersTest, DeliversTenThousandMessagesAtLeastOnceAndAcksThemAll) {
  constexpr int kMessages = 10'000;
  Recorder rec;
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("bulk", "bulk");
  spec.concurrency = 8;
  spec.batch = 100;
  auto start = Clock::now();
  ASSERT_TRUE(mgr.Add(spec).ok());
  Publish("bulk", Bodies("m-", kMessages));
  auto published = Clock::now();
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == kMessages; }, seconds(60)))
      << rec.Succeeded() << " of " << kMessages;
  ASSERT_TRUE(Eventually([&] { return mgr.Get("bulk")->delivered >= kMessages; }))
      << mgr.Get("bulk")->delivered;
  EXPECT_TRUE(Eventually([&] { return Outstanding("bulk", "faas-bulk") == 0; }))
      << Outstanding("bulk", "faas-bulk");
  auto done = Clock::now();
  std::printf("[ timing ] %d messages: publish %.0f ms, all acked after %.0f ms, %zu calls\n",
              kMessages, ToMillis(published - start), ToMillis(done - start), rec.Calls());
  TriggerStatus st = *mgr.Get("bulk");
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.dead_lettered, 0u);
  EXPECT_EQ(st.state, "running");
  EXPECT_TRUE(Eventually([&] { return mgr.Get("bulk")->lag == 0; })) << mgr.Get("bulk")->lag;
  if (!IsRedis()) {
    EXPECT_EQ(queue_->Stats("bulk")->acked, static_cast<uint64_t>(kMessages));
  }
  // Headers arrive: the stream's other fields / the embedded message's headers.
  auto calls = rec.CallsSnapshot();
  ASSERT_FALSE(calls.empty());
  ASSERT_EQ(calls[0].headers.size(), 1u);
  EXPECT_EQ(calls[0].headers[0].first, "seq");
}

TEST_P(TriggersTest, PoisonMessageGoesToTheDlqAfterExactlyMaxAttempts) {
  Recorder rec;
  rec.behaviour = [](const Delivery& d) -> DeliveryResult {
    if (d.body == "poison") {
      return {.ok = false, .error = "boom on attempt " + std::to_string(d.attempt)};
    }
    return {.ok = true, .error = ""};
  };
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("poison", "jobs");
  spec.max_attempts = 4;
  spec.concurrency = 1;  // the others must flow past the retries even with one worker
  ASSERT_TRUE(mgr.Add(spec).ok());
  std::vector<std::string> bodies = Bodies("ok-", 20);
  bodies.insert(bodies.begin() + 5, "poison");
  Publish("jobs", bodies);

  ASSERT_TRUE(Eventually([&] { return DeadLetters("jobs.dlq").size() == 1; }));
  std::vector<Dead> dead = DeadLetters("jobs.dlq");
  EXPECT_EQ(dead[0].body, "poison");
  EXPECT_EQ(dead[0].attempts, 4u);
  EXPECT_EQ(dead[0].error, "boom on attempt 4");
  EXPECT_FALSE(dead[0].source_id.empty());
  EXPECT_EQ(rec.AttemptsOf("poison"), (std::vector<uint32_t>{1, 2, 3, 4}));
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == 20; }));
  ASSERT_TRUE(Eventually([&] { return Outstanding("jobs", "faas-poison") == 0; }));
  ASSERT_TRUE(Eventually([&] { return mgr.Get("poison")->delivered == 20; }));
  // The counter moves once the dead letter is written, a moment after it is visible.
  ASSERT_TRUE(Eventually([&] { return mgr.Get("poison")->dead_lettered == 1; }));
  EXPECT_EQ(mgr.Get("poison")->failed, 4u);
  if (IsRedis()) {
    EXPECT_EQ(dead[0].fields["seq"], "5");  // the original fields travel along
  }
}

TEST_P(TriggersTest, RedeliversAFailedMessageWithTheNextAttempt) {
  Recorder rec;
  rec.behaviour = [](const Delivery& d) -> DeliveryResult {
    if (d.body == "flaky" && d.attempt < 3) {
      return {.ok = false, .error = "not yet"};
    }
    return {.ok = true, .error = ""};
  };
  TriggerManager mgr(Options(rec));
  ASSERT_TRUE(mgr.Add(Spec("flaky", "flaky")).ok());
  Publish("flaky", {"flaky", "steady"});
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == 2; }));
  EXPECT_EQ(rec.AttemptsOf("flaky"), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(rec.AttemptsOf("steady"), (std::vector<uint32_t>{1}));
  std::set<std::string> ids;
  for (const auto& c : rec.CallsSnapshot()) {
    if (c.body == "flaky") {
      ids.insert(c.id);
    }
  }
  EXPECT_EQ(ids.size(), 1u) << "every attempt carries the message's id";
  ASSERT_TRUE(Eventually([&] { return Outstanding("flaky", "faas-flaky") == 0; }));
  EXPECT_TRUE(DeadLetters("flaky.dlq").empty());
  EXPECT_EQ(mgr.Get("flaky")->failed, 2u);
}

TEST_P(TriggersTest, RunsAtMostConcurrencyInvocationsAtOnce) {
  constexpr int kConcurrency = 4;
  Gate gate;
  Recorder rec;
  rec.behaviour = [&](const Delivery&) -> DeliveryResult {
    gate.Wait();
    return {.ok = true, .error = ""};
  };
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("limited", "limited");
  spec.concurrency = kConcurrency;
  spec.batch = 8;
  ASSERT_TRUE(mgr.Add(spec).ok());
  Publish("limited", Bodies("c-", 40));
  ASSERT_TRUE(Eventually([&] { return rec.Running() == kConcurrency; }));
  EXPECT_EQ(mgr.Get("limited")->in_flight, static_cast<uint32_t>(kConcurrency));
  gate.Open();
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == 40; }));
  EXPECT_EQ(rec.MaxRunning(), kConcurrency);
  ASSERT_TRUE(Eventually([&] { return Outstanding("limited", "faas-limited") == 0; }));
}

// One delivery runs (blocked) for more than three visibilities while two more wait in the
// fetched batch, and a second consumer runs the same trigger meanwhile. The first one's extender
// keeps all three deliveries its own (embedded: Queue::Extend; Redis: XCLAIM JUSTID resets their
// idle time), so the second consumer never takes one over (Lease of an expired lease; XAUTOCLAIM
// with min-idle = visibility) and runs it a second time.
TEST_P(TriggersTest, HeldDeliveriesOutlastingTheVisibilityAreNotRunTwice) {
  Gate gate;
  Recorder rec;
  rec.behaviour = [&](const Delivery&) -> DeliveryResult {
    gate.Wait();
    return {.ok = true, .error = ""};
  };
  TriggerManager a(Options(rec, "consumer-a"));
  TriggerSpec spec = Spec("long", "long");
  spec.visibility_timeout = milliseconds(600);
  spec.batch = 4;
  spec.concurrency = 1;
  ASSERT_TRUE(a.Add(spec).ok());
  Publish("long", {"a", "b", "c"});
  ASSERT_TRUE(Eventually([&] { return rec.Running() == 1; }));
  // All three are a's before b starts (pending on a / leased), so b could only take them over.
  ASSERT_TRUE(Eventually([&] {
    if (IsRedis()) {
      return Outstanding("long", "faas-long") == 3;
    }
    auto st = queue_->Stats("long");
    return st.ok() && st->in_flight == 3;
  }));
  TriggerManager b(Options(rec, "consumer-b"));
  ASSERT_TRUE(b.Start().ok());  // the stored definition: the same trigger, another consumer
  ASSERT_TRUE(b.Get("long").ok());
  Clock::time_point until = Clock::now() + seconds(2);
  Eventually([&] { return Clock::now() >= until; });  // 2 s > 3 visibilities
  gate.Open();
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() >= 3; }));
  ASSERT_TRUE(Eventually([&] { return Outstanding("long", "faas-long") == 0; }));
  a.Stop(seconds(5));  // every delivery that was started has ended
  b.Stop(seconds(5));
  for (const char* body : {"a", "b", "c"}) {
    EXPECT_EQ(rec.AttemptsOf(body), (std::vector<uint32_t>{1})) << body;
  }
  EXPECT_EQ(a.Get("long")->delivered, 3u);
  EXPECT_EQ(b.Get("long")->delivered, 0u);
}

TEST_P(TriggersTest, AnotherManagerReclaimsTheDeliveriesOfACrashedOne) {
  constexpr int kMessages = 60;
  Gate never_before_stop;
  Recorder crashed;
  crashed.behaviour = [&](const Delivery&) -> DeliveryResult {
    never_before_stop.Wait();  // hangs until the manager is gone: nothing gets acked
    return {.ok = true, .error = ""};
  };
  TriggerSpec spec = Spec("crash", "crash");
  spec.visibility_timeout = seconds(1);
  spec.max_attempts = 5;
  auto a = std::make_unique<TriggerManager>(Options(crashed, "consumer-a"));
  ASSERT_TRUE(a->Add(spec).ok());
  Publish("crash", Bodies("x-", kMessages));
  ASSERT_TRUE(Eventually([&] { return crashed.Running() == 4; }));
  a->Stop(milliseconds(0));  // the "crash": deliveries in flight are never acknowledged
  std::vector<Recorder::Call> held = crashed.CallsSnapshot();
  ASSERT_EQ(held.size(), 4u);

  Recorder rec;
  TriggerManager b(Options(rec, "consumer-b"));
  auto start = Clock::now();
  ASSERT_TRUE(b.Start().ok());  // loads the stored trigger
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == kMessages; }))
      << rec.Succeeded() << " of " << kMessages;
  std::printf("[ timing ] reclaimed and finished after %.0f ms\n", ToMillis(Clock::now() - start));
  for (const auto& c : held) {
    EXPECT_TRUE(rec.SucceededFor(c.body)) << c.body;
    std::vector<uint32_t> attempts = rec.AttemptsOf(c.body);
    ASSERT_FALSE(attempts.empty());
    EXPECT_GE(attempts.front(), 2u) << c.body << " was delivered before the crash";
  }
  ASSERT_TRUE(Eventually([&] { return Outstanding("crash", "faas-crash") == 0; }));
  never_before_stop.Open();
  a.reset();  // its abandoned invocations return now; their outcome is dropped
  EXPECT_EQ(Outstanding("crash", "faas-crash"), 0);
  EXPECT_TRUE(DeadLetters("crash.dlq").empty());
}

TEST_P(TriggersTest, StopWithGraceLetsDeliveriesInFlightFinishAndAcks) {
  Gate gate;
  Recorder rec;
  rec.behaviour = [&](const Delivery&) -> DeliveryResult {
    gate.Wait();
    return {.ok = true, .error = ""};
  };
  TriggerManager mgr(Options(rec));
  ASSERT_TRUE(mgr.Add(Spec("graceful", "graceful")).ok());
  Publish("graceful", {"last"});
  ASSERT_TRUE(Eventually([&] { return rec.Running() == 1; }));
  std::thread stopper([&] { mgr.Stop(seconds(20)); });
  gate.Open();  // finishes within the grace, before or while Stop waits
  stopper.join();
  EXPECT_TRUE(rec.SucceededFor("last"));
  EXPECT_EQ(mgr.Get("graceful")->delivered, 1u) << "acknowledged before Stop returned";
  EXPECT_EQ(mgr.Get("graceful")->state, "stopped");
  EXPECT_EQ(Outstanding("graceful", "faas-graceful"), 0);
}

TEST_P(TriggersTest, PauseStopsFetchingAndResumeContinues) {
  Recorder rec;
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("pausable", "pausable");
  spec.visibility_timeout = seconds(1);  // Redis refreshes the lag every visibility/2
  ASSERT_TRUE(mgr.Add(spec).ok());
  Publish("pausable", Bodies("p-", 5));
  ASSERT_TRUE(Eventually([&] { return mgr.Get("pausable")->delivered == 5; }));

  ASSERT_TRUE(mgr.Pause("pausable").ok());
  EXPECT_EQ(mgr.Get("pausable")->state, "paused");
  EXPECT_TRUE(mgr.Get("pausable")->spec.paused);
  auto stored = queue_->Settings()->ListSettings("trigger");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE(SpecFromJson((*stored)[0].second)->paused) << "the pause is stored";

  Publish("pausable", Bodies("q-", 5));
  ASSERT_TRUE(Eventually([&] { return mgr.Get("pausable")->lag == 5; }))
      << mgr.Get("pausable")->lag;
  // Nothing is fetched while paused. An observation window, not synchronisation.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(rec.Calls(), 5u);
  EXPECT_EQ(mgr.Get("pausable")->lag, 5);

  ASSERT_TRUE(mgr.Resume("pausable").ok());
  EXPECT_EQ(mgr.Get("pausable")->state, "running");
  ASSERT_TRUE(Eventually([&] { return mgr.Get("pausable")->delivered == 10; }));
  EXPECT_EQ(rec.Succeeded(), 10u);
  ASSERT_TRUE(Eventually([&] { return mgr.Get("pausable")->lag == 0; }));
}

TEST_P(TriggersTest, TriggersPersistAcrossManagerRestarts) {
  Recorder rec;
  TriggerSpec one = Spec("one", "one");
  TriggerSpec two = Spec("two", "two");
  two.batch = 7;
  {
    TriggerManager a(Options(rec));
    ASSERT_TRUE(a.Start().ok());
    ASSERT_TRUE(a.Add(one).ok());
    ASSERT_TRUE(a.Add(two).ok());
    ASSERT_TRUE(a.Pause("two").ok());
  }
  {
    TriggerManager b(Options(rec));
    ASSERT_TRUE(b.Start().ok());
    std::vector<TriggerStatus> all = b.List();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].spec.name, "one");
    EXPECT_EQ(all[0].state, "running");
    EXPECT_EQ(all[1].spec.name, "two");
    EXPECT_EQ(all[1].state, "paused");
    EXPECT_EQ(all[1].spec.batch, 7u);
    EXPECT_EQ(all[1].spec.dlq, "two.dlq");
    Publish("one", {"after-restart"});
    ASSERT_TRUE(Eventually([&] { return rec.SucceededFor("after-restart"); }));
    ASSERT_TRUE(b.Delete("one").ok());
    EXPECT_EQ(b.Get("one").status().code(), StatusCode::kNotFound);
  }
  TriggerManager c(Options(rec));
  ASSERT_TRUE(c.Start().ok());
  std::vector<TriggerStatus> all = c.List();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].spec.name, "two");
  EXPECT_TRUE(all[0].spec.paused);
}

// Two gateways of a cluster share the stored definitions (in PostgreSQL; here queue.db): what
// one adds, pauses, changes or deletes, the other follows on Resync (or by itself, every
// resync_interval).
TEST_P(TriggersTest, ResyncFollowsDefinitionsChangedByAnotherManager) {
  Recorder rec;
  TriggerManager a(Options(rec, "gw-a"));
  ASSERT_TRUE(a.Start().ok());
  ManagerOptions follower = Options(rec, "gw-b");
  follower.resync_interval = milliseconds(50);
  TriggerManager b(follower);
  ASSERT_TRUE(b.Start().ok());
  TriggerManager c(Options(rec, "gw-c"));  // no interval: only explicit Resync calls
  ASSERT_TRUE(c.Start().ok());

  ASSERT_TRUE(a.Add(Spec("shared", "shared")).ok());
  EXPECT_EQ(c.Get("shared").status().code(), StatusCode::kNotFound) << "not before a resync";
  ASSERT_TRUE(c.Resync().ok());
  ASSERT_TRUE(c.Get("shared").ok());
  EXPECT_EQ(c.Get("shared")->state, "running");
  ASSERT_TRUE(Eventually([&] { return b.Get("shared").ok(); })) << "b resyncs by itself";

  ASSERT_TRUE(a.Pause("shared").ok());
  ASSERT_TRUE(c.Resync().ok());
  EXPECT_EQ(c.Get("shared")->state, "paused");

  TriggerSpec changed = Spec("shared", "shared");
  changed.batch = 3;
  ASSERT_TRUE(a.Delete("shared").ok());
  ASSERT_TRUE(a.Add(changed).ok());
  ASSERT_TRUE(c.Resync().ok());
  ASSERT_TRUE(c.Get("shared").ok());
  EXPECT_EQ(c.Get("shared")->spec.batch, 3u);
  EXPECT_EQ(c.Get("shared")->state, "running");

  ASSERT_TRUE(a.Delete("shared").ok());
  ASSERT_TRUE(c.Resync().ok());
  EXPECT_EQ(c.Get("shared").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(Eventually([&] { return !b.Get("shared").ok(); }));
  a.Stop();
  b.Stop();
  EXPECT_EQ(b.Resync().code(), StatusCode::kFailedPrecondition);
}

TEST_P(TriggersTest, ControlOperationsAnswerTheDocumentedCodes) {
  Recorder rec;
  TriggerManager mgr(Options(rec));
  ASSERT_TRUE(mgr.Add(Spec("dup", "dup")).ok());
  EXPECT_EQ(mgr.Add(Spec("dup", "other")).code(), StatusCode::kAlreadyExists);
  TriggerSpec bad = Spec("Bad Name", "dup");
  bad.concurrency = 0;
  Status s = mgr.Add(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("name \"Bad Name\""), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("concurrency 0"), std::string::npos) << s.message();
  EXPECT_EQ(mgr.Pause("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(mgr.Resume("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(mgr.Delete("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(mgr.Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(mgr.Delete("dup").ok());
  EXPECT_TRUE(mgr.List().empty());
  mgr.Stop();
  EXPECT_EQ(mgr.Add(Spec("late", "late")).code(), StatusCode::kFailedPrecondition);
}

// ---- Redis only ----

class RedisTriggersTest : public TriggersTest {};
INSTANTIATE_TEST_SUITE_P(Sources, RedisTriggersTest, ::testing::Values(Source::kRedis), SourceName);

TEST_P(RedisTriggersTest, UndecodableEntryGoesToTheDlqAtOnce) {
  Recorder rec;
  TriggerManager mgr(Options(rec));
  ASSERT_TRUE(mgr.Add(Spec("raw", "raw")).ok());
  Reply id = client_.Command({"XADD", "raw", "*", "payload", "no body here"});
  ASSERT_EQ(id->type, REDIS_REPLY_STRING);
  Publish("raw", {"fine"});
  ASSERT_TRUE(Eventually([&] { return DeadLetters("raw.dlq").size() == 1; }));
  Dead d = DeadLetters("raw.dlq")[0];
  EXPECT_EQ(d.error, "undecodable: no body field");
  EXPECT_EQ(d.attempts, 1u);
  EXPECT_EQ(d.source_id, Str(id.get()));
  EXPECT_EQ(d.fields["payload"], "no body here");
  EXPECT_EQ(d.fields.count("body"), 0u);
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == 1; }));
  EXPECT_EQ(rec.Calls(), 1u) << "the undecodable entry never reaches the function";
  ASSERT_TRUE(Eventually([&] { return Outstanding("raw", "faas-raw") == 0; }));
  EXPECT_TRUE(Eventually([&] { return mgr.Get("raw")->dead_lettered == 1; }));
}

TEST_P(RedisTriggersTest, SurvivesRedisBeingKilledAndRestartedMidStream) {
  constexpr int kBefore = 1000;
  constexpr int kAfter = 500;
  Recorder rec;
  rec.behaviour = [](const Delivery&) -> DeliveryResult {
    std::this_thread::sleep_for(milliseconds(1));  // simulated work, so the kill lands mid-stream
    return {.ok = true, .error = ""};
  };
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("resilient", "events");
  spec.visibility_timeout = seconds(2);
  ASSERT_TRUE(mgr.Add(spec).ok());
  Publish("events", Bodies("before-", kBefore));
  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() >= 100; }));

  server_.Kill();  // SIGKILL by PID
  std::printf("[ info   ] killed redis after %zu of %d messages\n", rec.Succeeded(), kBefore);
  ASSERT_TRUE(Eventually([&] { return mgr.Get("resilient")->state == "disconnected"; }));
  EXPECT_FALSE(mgr.Get("resilient")->last_error.empty());
  std::printf("[ info   ] last_error: %s\n", mgr.Get("resilient")->last_error.c_str());

  std::string error;
  ASSERT_TRUE(server_.Restart(&error)) << error;
  ASSERT_TRUE(client_.Connect(server_.port()));
  ASSERT_TRUE(Eventually([&] { return mgr.Get("resilient")->state == "running"; }))
      << mgr.Get("resilient")->last_error;
  EXPECT_EQ(mgr.Get("resilient")->last_error, "");
  Publish("events", Bodies("after-", kAfter));

  ASSERT_TRUE(Eventually([&] { return rec.Succeeded() == kBefore + kAfter; }, seconds(30)))
      << rec.Succeeded() << " of " << kBefore + kAfter;
  ASSERT_TRUE(Eventually([&] { return Outstanding("events", "faas-resilient") == 0; }))
      << Outstanding("events", "faas-resilient");
  EXPECT_TRUE(DeadLetters("events.dlq").empty());
}

TEST_P(RedisTriggersTest, ReportsAnUnreachableRedisAndConnectsWhenItAppears) {
  Recorder rec;
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("late", "late");
  int port = server_.port();
  server_.Kill();
  ASSERT_TRUE(mgr.Add(spec).ok()) << "an unreachable Redis is a state, not an Add error";
  ASSERT_TRUE(Eventually([&] { return mgr.Get("late")->state == "disconnected"; }));
  EXPECT_NE(mgr.Get("late")->last_error.find(std::to_string(port)), std::string::npos)
      << mgr.Get("late")->last_error;
  std::string error;
  ASSERT_TRUE(server_.Restart(&error)) << error;
  ASSERT_TRUE(client_.Connect(server_.port()));
  Publish("late", {"hello"});
  ASSERT_TRUE(Eventually([&] { return rec.SucceededFor("hello"); }));
  EXPECT_TRUE(Eventually([&] { return mgr.Get("late")->state == "running"; }));
  EXPECT_TRUE(Eventually([&] { return mgr.Get("late")->delivered == 1; }));
}

TEST_P(RedisTriggersTest, DeleteDoesNotWaitOutTheReconnectBackoff) {
  Recorder rec;
  TriggerManager mgr(Options(rec));
  TriggerSpec spec = Spec("gone", "gone");
  spec.backoff_min = seconds(20);
  spec.backoff_max = seconds(30);
  spec.visibility_timeout = seconds(60);
  server_.Kill();
  ASSERT_TRUE(mgr.Add(spec).ok());
  ASSERT_TRUE(Eventually([&] { return mgr.Get("gone")->state == "disconnected"; }));
  auto start = Clock::now();
  ASSERT_TRUE(mgr.Delete("gone").ok());
  EXPECT_LT(Clock::now() - start, seconds(5));
}

// ---- definitions and backoff (no queue needed) ----

TEST(TriggerSpec, NormalizeFillsDefaultsAndReportsEveryProblem) {
  TriggerSpec s;
  s.name = "orders";
  s.function = "ship";
  s.source = "redis://127.0.0.1:6379/2";
  s.stream = "orders";
  ASSERT_TRUE(NormalizeSpec(s).ok());
  EXPECT_EQ(s.group, "faas-orders");
  EXPECT_EQ(s.dlq, "orders.dlq");
  EXPECT_GT(s.visibility_timeout.count(), 0);

  TriggerSpec e;
  e.name = "mail";
  e.function = "send";
  e.source = "embedded";
  e.queue = "mail";
  ASSERT_TRUE(NormalizeSpec(e).ok());
  EXPECT_EQ(e.dlq, "mail.dlq");
  EXPECT_EQ(e.group, "");

  TriggerSpec bad;
  bad.name = "9lives";
  bad.function = "";
  bad.source = "redis://host";
  bad.queue = "q";
  bad.concurrency = 2000;
  bad.max_attempts = 0;
  bad.backoff_min = milliseconds(500);
  bad.backoff_max = milliseconds(100);
  Status st = NormalizeSpec(bad);
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  for (const char* part : {"name \"9lives\"", "function \"\"", "needs a port", "needs a stream",
                           "queue \"q\" is only for source embedded", "concurrency 2000",
                           "max_attempts 0", "above the maximum"}) {
    EXPECT_NE(st.message().find(part), std::string::npos) << part << " in " << st.message();
  }
  TriggerSpec src = e;
  src.source = "kafka://x";
  EXPECT_EQ(NormalizeSpec(src).code(), StatusCode::kInvalidArgument);
  // The Redis address forms (faasctl leaves these to faasd, so this is the one check).
  for (auto [source, why] : std::vector<std::pair<std::string, std::string>>{
           {"redis://h:0", "1..65535"},
           {"redis://h:65536", "1..65535"},
           {"redis://h:x", "port"},
           {"redis://:6379", "redis://HOST:PORT[/DB]"},
           {"redis://user@h:6379", "redis://HOST:PORT[/DB]"},
           {"redis://h:6379/x", "DB"},
           {"redis://[::1:6379", "redis://HOST:PORT[/DB]"}}) {
    TriggerSpec r = s;
    r.source = source;
    Status rs = NormalizeSpec(r);
    EXPECT_EQ(rs.code(), StatusCode::kInvalidArgument) << source;
    EXPECT_NE(rs.message().find(why), std::string::npos) << source << ": " << rs.message();
  }
  for (const char* good :
       {"redis://localhost:6379", "redis://[::1]:6379/15", "redis://r-1.x:6380/0"}) {
    TriggerSpec r = s;
    r.source = good;
    EXPECT_TRUE(NormalizeSpec(r).ok()) << good;
  }

  // A Redis retry stays pending during its backoff, so the visibility timeout must be longer.
  TriggerSpec slow = s;
  slow.visibility_timeout = seconds(10);
  slow.backoff_max = seconds(30);
  Status vs = NormalizeSpec(slow);
  EXPECT_NE(vs.message().find("must exceed the backoff maximum 30s"), std::string::npos)
      << vs.message();
  TriggerSpec slow_embedded = e;
  slow_embedded.visibility_timeout = seconds(10);
  EXPECT_TRUE(NormalizeSpec(slow_embedded).ok()) << "the embedded queue holds no lease meanwhile";
}

TEST(TriggerSpec, JsonRoundTrips) {
  TriggerSpec s;
  s.name = "orders";
  s.function = "ship";
  s.source = "redis://[::1]:6380";
  s.stream = "orders \"quoted\"";
  s.batch = 33;
  s.concurrency = 7;
  s.max_attempts = 9;
  s.backoff_min = milliseconds(12);
  s.backoff_max = milliseconds(3400);
  s.visibility_timeout = milliseconds(56000);
  s.paused = true;
  ASSERT_TRUE(NormalizeSpec(s).ok());
  auto back = SpecFromJson(SpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(SpecToJson(*back), SpecToJson(s));
  EXPECT_EQ(back->stream, s.stream);
  EXPECT_EQ(back->backoff_max, s.backoff_max);
  EXPECT_TRUE(back->paused);
  EXPECT_EQ(SpecFromJson("[1]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SpecFromJson(R"({"batch": -1})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SpecFromJson(R"({"name": 5})").status().code(), StatusCode::kInvalidArgument);
}

TEST(Backoff, StaysWithinItsExponentialBounds) {
  const milliseconds lo(100);
  const milliseconds hi(30'000);
  for (uint32_t attempt = 1; attempt <= 40; ++attempt) {
    int64_t d = std::min<int64_t>(hi.count(), lo.count() << std::min<uint32_t>(attempt - 1, 20));
    int64_t from = std::max<int64_t>(lo.count(), d / 2);
    for (int i = 0; i < 200; ++i) {
      int64_t got = Backoff(attempt, lo, hi).count();
      ASSERT_GE(got, from) << "attempt " << attempt;
      ASSERT_LE(got, d) << "attempt " << attempt;
    }
  }
  EXPECT_EQ(Backoff(1, milliseconds(5), milliseconds(5)).count(), 5);
  EXPECT_LE(Backoff(UINT32_MAX, lo, hi), hi);
  EXPECT_GE(Backoff(UINT32_MAX, lo, hi), hi / 2);
  EXPECT_EQ(Backoff(0, lo, hi), lo);  // attempt 0 is treated as the first
  // Jitter: not every draw is the same.
  std::set<int64_t> seen;
  for (int i = 0; i < 50; ++i) {
    seen.insert(Backoff(5, lo, hi).count());
  }
  EXPECT_GT(seen.size(), 1u);
}

}  // namespace
}  // namespace faas::triggers
