// End-to-end: queue triggers (issue #7) through a real faasd and faasctl: the embedded queue
// (published over HTTP and with faasctl), retries into the dead-letter queue, kill -9 of faasd
// mid-batch, and a Redis stream with a real redis-server.
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "redis_process.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::seconds;
using std::chrono::steady_clock;

class Triggers : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Logs(); }
  // Polls `faasctl queue stats` until `pred` holds (deadline); returns the last stats.
  template <typename Pred>
  Json AwaitStats(const std::string& queue, Pred pred, seconds timeout = seconds(60)) {
    Json st;
    for (auto deadline = steady_clock::now() + timeout; steady_clock::now() < deadline;) {
      st = CtlJson({"queue", "stats", queue});
      if (pred(st)) {
        return st;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return st;
  }
  // The ledger's queue-triggered rows of `fn`.
  std::vector<Json> QueueRows(const std::string& fn) {
    Json j = CtlJson({"invocations", fn, "--last", "1000"});
    std::vector<Json> out;
    for (const Json& r : j.value("invocations", Json::array())) {
      if (r.value("trigger", "") == "queue") {
        out.push_back(r);
      }
    }
    return out;
  }
  // The message ids of `fn`'s queue-triggered runs that succeeded (a message may have run more
  // than once: delivery is at least once).
  std::set<std::string> DeliveredIds(const std::string& fn) {
    std::set<std::string> out;
    for (const Json& r : QueueRows(fn)) {
      if (r.value("outcome", "") == "ok") {
        out.insert(r.value("message_id", ""));
      }
    }
    return out;
  }
  // Every published id among the delivered ones, and nothing delivered that was not published.
  static void ExpectSameIds(const std::set<std::string>& published,
                            const std::set<std::string>& delivered) {
    std::string lost, foreign;
    for (const std::string& id : published) {
      if (!delivered.contains(id)) {
        lost += " " + id;
      }
    }
    for (const std::string& id : delivered) {
      if (!published.contains(id)) {
        foreign += " \"" + id + "\"";
      }
    }
    EXPECT_EQ(lost, "") << "published but never run to success";
    EXPECT_EQ(foreign, "") << "run but never published";
  }
  static uint64_t Num(const Json& j, const char* key) {
    if (!j.contains(key)) {
      return 0;
    }
    return j[key].is_string() ? std::stoull(j[key].get<std::string>()) : j[key].get<uint64_t>();
  }
};

TEST_F(Triggers, EmbeddedQueueMessagesReachTheFunctionAndAreAcked) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  Ctl0({"trigger", "add", "jobs", "--function", "echo", "--source", "embedded", "--queue", "jobs",
        "--concurrency", "4"});
  CommandResult key = d_.Ctl({"key", "create", "--tenant", "acme", "-o", "json"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  std::string k = Json::parse(key.out)["key"];
  constexpr int kHttp = 150, kCli = 10;
  for (int i = 0; i < kHttp; ++i) {
    HttpResult r = HttpRequest(d_.http_port(), "POST", "/queues/jobs", "m" + std::to_string(i),
                               {{"Authorization", "Bearer " + k}});
    ASSERT_EQ(r.status, 202) << r.body;
  }
  EXPECT_EQ(HttpRequest(d_.http_port(), "POST", "/queues/jobs", "x").status, 401);
  EXPECT_EQ(
      HttpRequest(d_.http_port(), "POST", "/queues/_async", "x", {{"Authorization", "Bearer " + k}})
          .status,
      400);
  for (int i = 0; i < kCli; ++i) {
    Ctl0({"queue", "publish", "jobs", "c" + std::to_string(i)});
  }
  Json st = AwaitStats("jobs", [](const Json& s) { return Num(s, "acked") == kHttp + kCli; });
  EXPECT_EQ(Num(st, "acked"), kHttp + kCli) << st.dump();
  EXPECT_EQ(Num(st, "ready") + Num(st, "in_flight") + Num(st, "delayed"), 0u) << st.dump();
  // Every message ran (at least once), as a queue invocation in the ledger.
  EXPECT_GE(QueueRows("echo").size(), static_cast<std::size_t>(kHttp + kCli));
  Json list = CtlJson({"trigger", "list"});
  EXPECT_NE(list.dump().find("\"jobs\""), std::string::npos) << list.dump();
}

TEST_F(Triggers, APoisonMessageIsDeadLetteredAfterMaxAttemptsAndCanBeReplayed) {
  Ctl0({"deploy", "fail", FunctionLib("fail")});
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  Ctl0({"trigger", "add", "poison", "--function", "fail", "--source", "embedded", "--queue",
        "poison", "--max-attempts", "3", "--backoff", "10ms..50ms"});
  Ctl0({"queue", "publish", "poison", "bad"});
  Json dead;
  for (auto deadline = steady_clock::now() + seconds(30); steady_clock::now() < deadline;) {
    dead = CtlJson({"queue", "dlq", "poison"});
    if (dead.dump().find("\"bad\"") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(dead.dump().find("function_error"), std::string::npos) << dead.dump();
  ASSERT_NE(dead.dump().find("\"attempts\":3"), std::string::npos) << dead.dump();
  // Exactly max-attempts invocations, each billed, with attempts 1, 2, 3.
  EXPECT_EQ(QueueRows("fail").size(), 3u);

  // Replay onto a queue whose trigger now succeeds: point a new trigger at it.
  Ctl0({"trigger", "delete", "poison"});
  Ctl0({"trigger", "add", "fixed", "--function", "echo", "--source", "embedded", "--queue",
        "poison"});
  Json replay = CtlJson({"queue", "dlq", "poison", "--replay"});
  ASSERT_TRUE(replay.contains("replayed")) << replay.dump();
  EXPECT_TRUE(replay["replayed"].is_number_unsigned()) << replay.dump();
  EXPECT_EQ(Num(replay, "replayed"), 1u) << replay.dump();  // the one dead letter, "bad"
  Json st = AwaitStats("poison", [](const Json& s) { return Num(s, "acked") >= 1; });
  EXPECT_GE(Num(st, "acked"), 1u) << st.dump();
}

TEST_F(Triggers, Kill9MidBatchLosesNoMessage) {
  Ctl0({"deploy", "sleep", FunctionLib("sleep")});
  Ctl0({"trigger", "add", "slow", "--function", "sleep", "--source", "embedded", "--queue", "slow",
        "--concurrency", "2"});
  constexpr int kN = 30;
  std::set<std::string> published;
  for (int i = 0; i < kN; ++i) {
    Json p = CtlJson({"queue", "publish", "slow", std::to_string(i)});
    ASSERT_TRUE(p.contains("message_id")) << p.dump();
    published.insert(p["message_id"].get<std::string>());
  }
  ASSERT_EQ(published.size(), static_cast<std::size_t>(kN)) << "message ids are unique";
  Json mid = AwaitStats("slow", [](const Json& s) { return Num(s, "acked") >= 4; });
  ASSERT_GE(Num(mid, "acked"), 4u);
  ASSERT_LT(Num(mid, "acked"), static_cast<uint64_t>(kN)) << "finished before the kill";
  d_.Kill9();
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  Json st = AwaitStats("slow", [](const Json& s) {
    return Num(s, "ready") + Num(s, "in_flight") + Num(s, "delayed") == 0 && Num(s, "acked") >= kN;
  });
  EXPECT_EQ(Num(st, "ready") + Num(st, "in_flight") + Num(st, "delayed"), 0u) << st.dump();
  EXPECT_GE(Num(st, "acked"), static_cast<uint64_t>(kN)) << st.dump();
  // Counting rows would let a redelivered message hide a lost one: compare the ids. Every
  // acknowledged run's ledger row was journaled before its ack, so it survived the kill.
  ExpectSameIds(published, DeliveredIds("sleep"));
}

TEST_F(Triggers, RedisStreamMessagesReachTheFunctionWithTheirIds) {
  if (RedisProcess::ServerPath().empty()) {
    GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  }
  RedisProcess redis;
  std::string error;
  ASSERT_TRUE(redis.Start(&error)) << error;
  // redis-cli comes with redis-server (redis-tools).
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/redis-cli", "-p", std::to_string(redis.port())});
    CommandResult r = RunCommand(args);
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) {
      r.out.pop_back();
    }
    return r;
  };
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  Ctl0({"deploy", "fail", FunctionLib("fail")});
  std::string src = redis.url();
  Ctl0({"trigger", "add", "rs", "--function", "echo", "--source", src, "--stream", "events",
        "--concurrency", "4"});
  Ctl0({"trigger", "add", "rf", "--function", "fail", "--source", src, "--stream", "bad",
        "--max-attempts", "2", "--backoff", "10ms..20ms"});
  constexpr int kN = 200;
  std::set<std::string> published;
  for (int i = 0; i < kN; ++i) {
    CommandResult added = cli({"XADD", "events", "*", "body", "e" + std::to_string(i)});
    ASSERT_EQ(added.exit_code, 0);
    published.insert(added.out);
  }
  ASSERT_EQ(cli({"XADD", "bad", "*", "body", "poison"}).exit_code, 0);
  // Every entry acknowledged: the group's pending list drains and every id was seen.
  std::vector<Json> rows;
  for (auto deadline = steady_clock::now() + seconds(60); steady_clock::now() < deadline;) {
    rows = QueueRows("echo");
    if (rows.size() >= static_cast<std::size_t>(kN)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(rows.size(), static_cast<std::size_t>(kN));
  ExpectSameIds(published, DeliveredIds("echo"));  // each entry ran under its own stream id
  CommandResult pending;
  for (auto deadline = steady_clock::now() + seconds(30); steady_clock::now() < deadline;) {
    pending = cli({"XPENDING", "events", "faas-rs"});
    if (pending.out.starts_with("0")) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(pending.out.starts_with("0")) << pending.out;
  CommandResult dlq;
  for (auto deadline = steady_clock::now() + seconds(30); steady_clock::now() < deadline;) {
    dlq = cli({"XLEN", "bad.dlq"});
    if (dlq.out == "1") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(dlq.out, "1");
  EXPECT_EQ(QueueRows("fail").size(), 2u);
  Json list = CtlJson({"trigger", "list"});
  EXPECT_NE(list.dump().find("\"rs\""), std::string::npos) << list.dump();
}

TEST_F(Triggers, Kill9MidStreamLosesNoRedisMessage) {
  if (RedisProcess::ServerPath().empty()) {
    GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  }
  RedisProcess redis;
  std::string error;
  ASSERT_TRUE(redis.Start(&error)) << error;
  // A short timeout and visibility timeout so that the entries the killed faasd held are
  // reclaimed (XAUTOCLAIM) by the restarted one within the test's time.
  Ctl0({"deploy", "sleep", FunctionLib("sleep"), "--timeout", "1s"});
  Ctl0({"trigger", "add", "slow", "--function", "sleep", "--source", redis.url(), "--stream",
        "slow", "--concurrency", "2", "--backoff", "10ms..200ms", "--visibility-timeout", "2s"});
  constexpr int kN = 30;
  std::set<std::string> published;
  for (int i = 0; i < kN; ++i) {
    CommandResult r = RunCommand({"/usr/bin/redis-cli", "-p", std::to_string(redis.port()), "XADD",
                                  "slow", "*", "body", std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find_first_of("\r\n"));
    ASSERT_NE(id.find('-'), std::string::npos) << "an entry id: " << r.out;
    published.insert(id);
  }
  ASSERT_EQ(published.size(), static_cast<std::size_t>(kN));
  for (auto deadline = steady_clock::now() + seconds(30);
       steady_clock::now() < deadline && QueueRows("sleep").size() < 4;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(QueueRows("sleep").size(), 4u);
  ASSERT_LT(QueueRows("sleep").size(), static_cast<std::size_t>(kN)) << "finished before the kill";
  d_.Kill9();
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  // Everything is acknowledged in the end: nothing pending in the group, every entry ran.
  CommandResult pending;
  for (auto deadline = steady_clock::now() + seconds(60); steady_clock::now() < deadline;) {
    pending = RunCommand({"/usr/bin/redis-cli", "-p", std::to_string(redis.port()), "XPENDING",
                          "slow", "faas-slow"});
    if (pending.out.starts_with("0") && DeliveredIds("sleep").size() >= published.size()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(pending.out.starts_with("0")) << pending.out;
  // Every entry ran to success at least once, by its id (not a row count, which duplicates of
  // the entries the killed faasd held could fill).
  ExpectSameIds(published, DeliveredIds("sleep"));
}

}  // namespace
}  // namespace faas::testing
