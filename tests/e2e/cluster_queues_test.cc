// End-to-end: async invocations in a cluster (issue #16 item 3;
// docs/design/0021-cluster-queues.md). Two gateways share a registry in a real PostgreSQL and a
// queue in a real Redis; one node runs the functions. Work accepted at one gateway is run by either
// and read at the other; a run longer than the lease visibility runs once (its gateway extends the
// lease); a gateway killed with work in flight loses none of it, and the other takes it over
// within the visibility; a repeated Idempotency-Key queues nothing; and with Redis down async
// accepts answer 503 async_unavailable while sync calls keep working. Trigger definitions live in
// PostgreSQL (docs/design/0029-trigger-definitions.md): a trigger added at one gateway starts at
// the other on the store's notice (periodic resync off), pause and delete follow back, and a Redis
// wiped and restarted loses none of them.
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"
#include "redis_process.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;

class ClusterQueuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RedisProcess::ServerPath().empty()) {
      GTEST_SKIP() << "redis-server is not installed";
    }
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    std::string error;
    ASSERT_TRUE(redis_.Start(&error)) << error;
    store_ = pg_.Url("faas");
    ASSERT_TRUE(node_.Start({"--role", "node", "--store", store_, "--node-id", "n1"}))
        << node_.Logs();
  }

  // A gateway on the shared store and Redis; `extra` adds flags.
  void StartGateway(FaasdProcess& gw, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--role",  "gateway",    "--store", store_,
                                     "--redis", redis_.url(), "--nodes", node_.NodesEntry("n1")};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(gw.Start(args)) << gw.Logs();
  }

  // Deploys through `gw`, then waits until every started gateway knows the function (each
  // follows the registry on its own; until then it answers function_not_found).
  void Deploy(FaasdProcess& gw, const std::string& name, const std::string& probe_query = "",
              bool wait_for_all = true) {
    CommandResult r = gw.Ctl({"deploy", name, FunctionLib(name)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << gw.Logs() << node_.Logs();
    for (FaasdProcess* g : {&a_, &b_}) {
      if (!wait_for_all) {
        break;
      }
      if (g->http_port() == 0) {
        continue;
      }
      ASSERT_TRUE(PollUntil([&] {
        return HttpRequest(g->http_port(), "POST", "/function/" + name + probe_query).status == 200;
      })) << AllLogs();
    }
  }

  // The invocation's record read at `gw` once it is finished (null JSON after 60 s).
  static Json AwaitDone(const FaasdProcess& gw, const std::string& id) {
    Json out;
    PollUntil(
        [&] {
          HttpResult r = HttpRequest(gw.http_port(), "GET", "/invocations/" + id);
          if (r.status != 200) {
            return false;
          }
          Json j = Json::parse(r.body, nullptr, false);
          if (j.is_discarded() || (j["status"] != "succeeded" && j["status"] != "failed")) {
            return false;
          }
          out = j;
          return true;
        },
        std::chrono::seconds(60));
    return out;
  }

  static std::string Accept(const FaasdProcess& gw, const std::string& path,
                            const std::string& body = "",
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpResult r = HttpRequest(gw.http_port(), "POST", path, body, headers);
    EXPECT_EQ(r.status, 202) << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_discarded() ? "" : j.value("invocation_id", "");
  }

  // Waits until `_async` holds nothing (ready, delayed or in flight) and `acked` deliveries were
  // acknowledged: every run that started has ended and written its record.
  void AwaitDrained(FaasdProcess& gw, std::size_t acked) {
    std::string stats;
    ASSERT_TRUE(PollUntil([&] {
      CommandResult r = gw.Ctl({"queue", "stats", "_async"});
      stats = r.out + r.err;
      return r.exit_code == 0 && stats.find("\nin flight: 0\n") != std::string::npos &&
             stats.find("\nready: 0\n") != std::string::npos &&
             stats.find("\ndelayed: 0\n") != std::string::npos &&
             stats.find("\nacked: " + std::to_string(acked) + "\n") != std::string::npos;
    })) << stats
        << AllLogs();
  }

  // The invocation's record read at `gw` (null JSON unless 200).
  static Json Record(const FaasdProcess& gw, const std::string& id) {
    HttpResult r = HttpRequest(gw.http_port(), "GET", "/invocations/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Json::parse(r.body, nullptr, false) : Json();
  }

  std::string AllLogs() { return a_.Logs() + b_.Logs() + node_.Logs(); }

  // redis-cli against the test's Redis; its output without the trailing newline.
  CommandResult RedisCli(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/redis-cli", "-p", std::to_string(redis_.port())});
    CommandResult r = RunCommand(args);
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) {
      r.out.pop_back();
    }
    return r;
  }

  // `gw`'s status of trigger `name` (`faasctl trigger list`), null JSON when it runs no such
  // trigger.
  static Json TriggerAt(FaasdProcess& gw, const std::string& name) {
    CommandResult r = gw.Ctl({"trigger", "list", "-o", "json"});
    Json j = Json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || j.is_discarded()) {
      return Json();
    }
    for (const Json& t : j.value("triggers", Json::array())) {
      if (t.value("name", "") == name) {
        return t;
      }
    }
    return Json();
  }

  // Whether `gw` logged `event` for trigger `name`.
  static bool Logged(const FaasdProcess& gw, const std::string& event, const std::string& name) {
    const std::string logs = gw.Logs();
    for (std::size_t at = logs.find(event); at != std::string::npos;
         at = logs.find(event, at + 1)) {
      const std::size_t end = logs.find('\n', at);
      const std::string line = logs.substr(at, end == std::string::npos ? end : end - at);
      if (line.find("trigger=" + name) != std::string::npos ||
          line.find("trigger=\"" + name + "\"") != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  PostgresProcess pg_;
  RedisProcess redis_;
  std::string store_;
  FaasdProcess node_, a_, b_;
};

TEST_F(ClusterQueuesTest, AsyncAcceptedAtOneGatewayIsReadAtTheOther) {
  StartGateway(a_);
  StartGateway(b_);
  // Queued at once after the deploy: B may lease work before it has seen the deploy (it
  // follows the registry within about a second), and must retry it rather than fail it.
  Deploy(a_, "echo", "", /*wait_for_all=*/false);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Accept(a_, "/async-function/echo", "job-" + std::to_string(i)));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Json done = AwaitDone(b_, ids[i]);
    ASSERT_EQ(done["status"], "succeeded") << done.dump() << AllLogs();
    Json echo = Json::parse(done["result"]["body"].get<std::string>());
    EXPECT_EQ(echo["body"], "job-" + std::to_string(i));
    // Attempt 1's ledger id is the invocation's; a retry's is "<id>-a<attempt>".
    EXPECT_TRUE(echo["invocation_id"].get<std::string>().starts_with(ids[i])) << echo.dump();
  }
  EXPECT_NE(a_.Logs().find("faasd.queue backend=redis"), std::string::npos) << a_.Logs();
}

TEST_F(ClusterQueuesTest, ARepeatedIdempotencyKeyNamesTheFirstInvocationAndRunsOnce) {
  StartGateway(a_);
  StartGateway(b_);
  Deploy(a_, "echo");
  std::string first = Accept(a_, "/async-function/echo", "once", {{"Idempotency-Key", "order-7"}});
  ASSERT_FALSE(first.empty());
  // The same key at the other gateway, before and after the run: the first id, nothing queued.
  EXPECT_EQ(Accept(b_, "/async-function/echo", "twice", {{"Idempotency-Key", "order-7"}}), first);
  Json done = AwaitDone(b_, first);
  ASSERT_EQ(done["status"], "succeeded") << done.dump() << AllLogs();
  EXPECT_EQ(done["attempts"], 1);
  EXPECT_EQ(Json::parse(done["result"]["body"].get<std::string>())["body"], "once");
  EXPECT_EQ(Accept(a_, "/async-function/echo", "thrice", {{"Idempotency-Key", "order-7"}}), first);
  // Another key is another invocation.
  std::string other = Accept(a_, "/async-function/echo", "", {{"Idempotency-Key", "order-8"}});
  EXPECT_NE(other, first);
  ASSERT_EQ(AwaitDone(a_, other)["status"], "succeeded");
  // Two published in all: the repeats queued nothing (the queue's counter, shared in Redis).
  CommandResult stats = b_.Ctl({"queue", "stats", "_async"});
  ASSERT_EQ(stats.exit_code, 0) << stats.out << stats.err;
  EXPECT_NE(stats.out.find("published"), std::string::npos) << stats.out;
  bool two = false;
  for (std::size_t at = stats.out.find("published"); at != std::string::npos;
       at = stats.out.find("published", at + 1)) {
    std::string rest = stats.out.substr(at, 40);
    two = two || rest.find(" 2\n") != std::string::npos || rest.find(":2") != std::string::npos ||
          rest.find(" 2 ") != std::string::npos;
  }
  EXPECT_TRUE(two) << stats.out;
  // Too long a key is refused before anything is queued.
  ExpectError(HttpRequest(a_.http_port(), "POST", "/async-function/echo", "",
                          {{"Idempotency-Key", std::string(300, 'k')}}),
              400, "invalid_idempotency_key");
}

TEST_F(ClusterQueuesTest, ARunLongerThanTheVisibilityRunsOnceWhileItsGatewayLives) {
  // Leases are hidden for 1 s and the run takes 3.5 s: the gateway running it extends its lease
  // (every visibility / 3), so neither the other gateway nor its own fetcher starts it again.
  StartGateway(a_, {"--queue-visibility", "1s"});
  StartGateway(b_, {"--queue-visibility", "1s"});
  Deploy(a_, "sleep", "?ms=1");
  std::string id = Accept(a_, "/async-function/sleep?ms=3500");
  ASSERT_FALSE(id.empty());
  Json done = AwaitDone(b_, id);
  ASSERT_EQ(done["status"], "succeeded") << done.dump() << AllLogs();
  // A second run would end (and write its record) only after the first: wait until the queue
  // holds nothing and one delivery was acked, then the record still names attempt 1.
  AwaitDrained(b_, 1);
  EXPECT_EQ(Record(b_, id)["attempts"], 1) << "run more than once" << AllLogs();
}

TEST_F(ClusterQueuesTest, AKilledGatewaysWorkIsFinishedByTheOther) {
  // A leases all the work (B starts afterwards) and dies while it runs. Leases are hidden for
  // 3 s only, so B takes the work over about 3 s after A died; each run (8 s, so that A is
  // still running all of them when B has started) outlasts the visibility, and B extends its
  // leases, so each message runs exactly twice: A's cut-off run and B's.
  StartGateway(a_, {"--queue-visibility", "3s"});
  Deploy(a_, "sleep", "?ms=1");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(Accept(a_, "/async-function/sleep?ms=8000"));
  }
  ASSERT_TRUE(PollUntil([&] {
    int running = 0;
    for (const std::string& id : ids) {
      HttpResult r = HttpRequest(a_.http_port(), "GET", "/invocations/" + id);
      running += r.body.find("\"running\"") != std::string::npos ? 1 : 0;
    }
    return running == 4;
  })) << AllLogs();
  StartGateway(b_, {"--queue-visibility", "3s"});
  a_.Kill9();
  auto killed_at = std::chrono::steady_clock::now();
  for (const std::string& id : ids) {
    Json done = AwaitDone(b_, id);
    ASSERT_EQ(done["status"], "succeeded") << id << " " << done.dump() << AllLogs();
  }
  // Visibility (3 s) + the run (8 s) + slack for a loaded machine; with the old default
  // visibility (16 min) it would have taken 16 minutes.
  auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, std::chrono::seconds(20))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms" << b_.Logs();
  // A third run (B taking over its own lease) would end only after B's: wait until the queue
  // holds nothing, then every record names attempt 2.
  AwaitDrained(b_, ids.size());
  for (const std::string& id : ids) {
    EXPECT_EQ(Record(b_, id)["attempts"], 2) << id << ": A's run, then B's (once: B extends)";
  }
}

TEST_F(ClusterQueuesTest, WithRedisDownAsyncAnswers503AndSyncCallsWork) {
  StartGateway(a_);
  Deploy(a_, "echo");
  std::string before = Accept(a_, "/async-function/echo", "before");
  ASSERT_EQ(AwaitDone(a_, before)["status"], "succeeded") << AllLogs();

  redis_.Kill();
  HttpResult refused = HttpRequest(a_.http_port(), "POST", "/async-function/echo", "x");
  ExpectError(refused, 503, "async_unavailable");
  EXPECT_EQ(refused.Header("retry-after"), "1");
  HttpResult unread = HttpRequest(a_.http_port(), "GET", "/invocations/" + before);
  ExpectError(unread, 503, "async_unavailable");
  for (int i = 0; i < 3; ++i) {
    HttpResult sync = HttpRequest(a_.http_port(), "POST", "/function/echo", "sync");
    EXPECT_EQ(sync.status, 200) << sync.body << AllLogs();
  }
  EXPECT_TRUE(a_.Running()) << AllLogs();

  // Back: the same gateway accepts and runs again, and the old result survived (AOF).
  std::string error;
  ASSERT_TRUE(redis_.Restart(&error)) << error;
  std::string after;
  ASSERT_TRUE(PollUntil([&] {
    HttpResult r = HttpRequest(a_.http_port(), "POST", "/async-function/echo", "after");
    if (r.status != 202) {
      return false;
    }
    after = Json::parse(r.body)["invocation_id"];
    return true;
  })) << AllLogs();
  EXPECT_EQ(AwaitDone(a_, after)["status"], "succeeded") << AllLogs();
  EXPECT_EQ(AwaitDone(a_, before)["status"], "succeeded");
}

}  // namespace
}  // namespace faas::testing

namespace faas::testing {
namespace {

// The periodic resync is off (an hour): what a gateway learns here, it learns from the store's
// NOTIFY. Gateway b starts the trigger gateway a added, and delivers; a pause and a delete through
// b stop it at a.
TEST_F(ClusterQueuesTest, ATriggerAddedAtOneGatewayRunsAtTheOtherAndItsChangesFollowBack) {
  StartGateway(a_, {"--registry-resync", "1h"});
  StartGateway(b_, {"--registry-resync", "1h"});
  Deploy(a_, "echo");
  CommandResult added = a_.Ctl({"trigger", "add", "feed", "--function", "echo", "--source",
                                redis_.url(), "--stream", "events"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  ASSERT_TRUE(
      PollUntil([&] { return Logged(b_, "trigger.started", "feed"); }, std::chrono::seconds(10)))
      << "b never started the trigger a added\n"
      << AllLogs();
  // Both gateways consume the stream; publish until b has delivered one.
  ASSERT_TRUE(PollUntil([&] {
    EXPECT_EQ(RedisCli({"XADD", "events", "*", "body", "hello"}).exit_code, 0);
    Json t = TriggerAt(b_, "feed");
    return !t.is_null() && t.value("delivered", 0) >= 1;
  })) << TriggerAt(b_, "feed").dump()
      << AllLogs();

  CommandResult paused = b_.Ctl({"trigger", "pause", "feed"});
  ASSERT_EQ(paused.exit_code, 0) << paused.out << paused.err;
  ASSERT_TRUE(PollUntil([&] { return TriggerAt(a_, "feed").value("state", "") == "paused"; },
                        std::chrono::seconds(10)))
      << TriggerAt(a_, "feed").dump() << AllLogs();

  CommandResult deleted = b_.Ctl({"trigger", "delete", "feed"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.out << deleted.err;
  ASSERT_TRUE(PollUntil([&] { return TriggerAt(a_, "feed").is_null(); }, std::chrono::seconds(10)))
      << "a still runs the trigger b deleted\n"
      << AllLogs();
}

// Backlogs on a gateway's /metrics come from Redis (docs/metering.md): a paused trigger's
// stream lag (XINFO GROUPS) and the `_async` queue's messages.
TEST_F(ClusterQueuesTest, AGatewayExportsRedisStreamBacklogs) {
  StartGateway(a_);
  Deploy(a_, "echo");
  CommandResult added = a_.Ctl({"trigger", "add", "feed", "--function", "echo", "--source",
                                redis_.url(), "--stream", "events"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  CommandResult paused = a_.Ctl({"trigger", "pause", "feed"});
  ASSERT_EQ(paused.exit_code, 0) << paused.out << paused.err;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(RedisCli({"XADD", "events", "*", "body", "b" + std::to_string(i)}).exit_code, 0);
  }
  std::string m;
  EXPECT_TRUE(PollUntil([&] {
    m = HttpRequest(a_.http_port(), "GET", "/metrics").body;
    return Sample(m, "faas_trigger_lag{trigger=\"feed\"}") == 3;
  })) << m
      << a_.Logs();
  const std::string id = Accept(a_, "/async-function/echo", "job");
  ASSERT_FALSE(AwaitDone(a_, id).is_null()) << a_.Logs();
  m = HttpRequest(a_.http_port(), "GET", "/metrics").body;
  EXPECT_EQ(Sample(m, "faas_queue_messages{queue=\"_async\",state=\"ready\"}"), 0) << m;
  EXPECT_EQ(Sample(m, "faas_queue_messages{queue=\"_async\",state=\"dead\"}"), 0) << m;
  redis_.Kill();
  m = HttpRequest(a_.http_port(), "GET", "/metrics").body;
  EXPECT_EQ(m.find("faas_queue_messages{"), std::string::npos) << "figures without Redis\n" << m;
}

// Redis holds queues and counters, not definitions: wiping it (FLUSHALL) and restarting it, and
// then the gateway, leaves the trigger defined, and it delivers from the new Redis.
TEST_F(ClusterQueuesTest, ARedisWipedAndRestartedKeepsEveryTriggerDefinition) {
  StartGateway(a_);
  Deploy(a_, "echo");
  CommandResult added = a_.Ctl({"trigger", "add", "feed", "--function", "echo", "--source",
                                redis_.url(), "--stream", "events"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  ASSERT_EQ(RedisCli({"FLUSHALL"}).exit_code, 0);
  redis_.Kill();
  std::string error;
  ASSERT_TRUE(redis_.Restart(&error)) << error;
  ASSERT_EQ(RedisCli({"DBSIZE"}).out, "0") << "the restarted Redis is empty";
  a_.Stop();
  StartGateway(a_);

  Json t = TriggerAt(a_, "feed");
  ASSERT_FALSE(t.is_null()) << "the definition was lost with Redis\n" << a_.Logs();
  EXPECT_EQ(t.value("function", ""), "echo");
  ASSERT_TRUE(PollUntil([&] {
    EXPECT_EQ(RedisCli({"XADD", "events", "*", "body", "again"}).exit_code, 0);
    return TriggerAt(a_, "feed").value("delivered", 0) >= 1;
  })) << TriggerAt(a_, "feed").dump()
      << a_.Logs();
}

}  // namespace
}  // namespace faas::testing
