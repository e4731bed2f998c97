// End-to-end: rate limits across gateways (docs/design/0023-shared-limits-and-retries.md). Two
// gateways with --redis in front of one node, all on a real PostgreSQL and Redis: a function's
// limit holds for the cluster, not per gateway; with Redis stopped each gateway enforces its
// share and calls are otherwise served.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"
#include "redis_process.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

bool PollLogs(const FaasdProcess& d, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (d.Logs().find(needle) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval
  }
  return false;
}

TEST(SharedLimits, TwoGatewaysAdmitOneBurstAndFallBackToShares) {
  if (RedisProcess::ServerPath().empty()) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  PostgresProcess pg;
  RedisProcess redis;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  std::string error;
  ASSERT_TRUE(redis.Start(&error)) << error;
  const std::string store = pg.Url("faas");
  FaasdProcess n1, gw1, gw2;
  ASSERT_TRUE(n1.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1.Logs();
  const std::string nodes = n1.NodesEntry("n1");
  ASSERT_TRUE(
      gw1.Start({"--role", "gateway", "--store", store, "--nodes", nodes, "--redis", redis.url()}))
      << gw1.Logs();
  auto logs = [&] { return gw1.Logs() + gw2.Logs() + n1.Logs(); };
  // One token an hour: no refill during the test, so the counts are exact.
  CommandResult r =
      gw1.Ctl({"deploy", "limited", FunctionLib("hello"), "--rate", "1/h", "--burst", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
  r = gw1.Ctl({"deploy", "free", FunctionLib("hello")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
  // The second gateway reads both functions at start.
  ASSERT_TRUE(
      gw2.Start({"--role", "gateway", "--store", store, "--nodes", nodes, "--redis", redis.url()}))
      << gw2.Logs();
  ASSERT_TRUE(PollLogs(gw1, "rate_limit.gateways gateways=2")) << logs();

  auto count_ok = [&](int calls) {
    int ok = 0;
    for (int i = 0; i < calls; ++i) {
      HttpResult h = HttpRequest((i % 2 == 0 ? gw1 : gw2).http_port(), "GET", "/function/limited");
      if (h.status == 200) {
        ++ok;
      } else {
        ExpectError(h, 429, "rate_limited");
        EXPECT_FALSE(h.Header("retry-after").empty());
      }
    }
    return ok;
  };
  // The burst of 6 for the cluster, not 6 per gateway.
  EXPECT_EQ(count_ok(20), 6) << logs();

  redis.Kill();
  // Still limited: each gateway now admits its share, 6 / 2 = 3, from a fresh local bucket.
  EXPECT_EQ(count_ok(20), 6) << logs();
  EXPECT_NE(gw1.Logs().find("rate_limit.redis_down"), std::string::npos) << logs();
  // Sync calls otherwise work without Redis.
  for (int i = 0; i < 4; ++i) {
    HttpResult h = HttpRequest((i % 2 == 0 ? gw1 : gw2).http_port(), "GET", "/function/free");
    EXPECT_EQ(h.status, 200) << h.body << logs();
  }
  EXPECT_EQ(gw1.Stop(), 0) << gw1.Logs();
  EXPECT_EQ(gw2.Stop(), 0) << gw2.Logs();
}

// redis-cli against `redis`; its output without trailing newlines.
std::string RedisCli(const RedisProcess& redis, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/redis-cli", "-p", std::to_string(redis.port())});
  CommandResult r = RunCommand(args);
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) {
    r.out.pop_back();
  }
  return r.out;
}

// --redis-limits: the counters written on every request go to their own Redis (one run without
// fsync, say), the queues stay on --redis. Buckets and the gateway set land in the limits Redis
// only, async streams in the queue Redis only; with the limits Redis down the gateways fall back
// to their shares while async accepts keep working on the other.
TEST(SharedLimits, RedisLimitsKeepsCountersApartFromQueues) {
  if (RedisProcess::ServerPath().empty()) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  PostgresProcess pg;
  RedisProcess queues, limits;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  std::string error;
  ASSERT_TRUE(queues.Start(&error)) << error;
  ASSERT_TRUE(limits.Start(&error)) << error;
  const std::string store = pg.Url("faas");
  FaasdProcess n1, gw1, gw2;
  ASSERT_TRUE(n1.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1.Logs();
  const std::string nodes = n1.NodesEntry("n1");
  const std::vector<std::string> gw_args = {"--role",         "gateway",   "--store", store,
                                            "--nodes",        nodes,       "--redis", queues.url(),
                                            "--redis-limits", limits.url()};
  ASSERT_TRUE(gw1.Start(gw_args)) << gw1.Logs();
  auto logs = [&] { return gw1.Logs() + gw2.Logs() + n1.Logs(); };
  CommandResult r =
      gw1.Ctl({"deploy", "limited", FunctionLib("hello"), "--rate", "1/h", "--burst", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
  ASSERT_TRUE(gw2.Start(gw_args)) << gw2.Logs();
  ASSERT_TRUE(PollLogs(gw1, "rate_limit.gateways gateways=2")) << logs();

  auto count_ok = [&](int calls) {
    int ok = 0;
    for (int i = 0; i < calls; ++i) {
      HttpResult h = HttpRequest((i % 2 == 0 ? gw1 : gw2).http_port(), "GET", "/function/limited");
      ok += h.status == 200 ? 1 : 0;
    }
    return ok;
  };
  EXPECT_EQ(count_ok(20), 6) << logs();
  r = gw1.Ctl({"deploy", "free", FunctionLib("hello")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
  ASSERT_TRUE(PollUntil([&] {
    return HttpRequest(gw2.http_port(), "GET", "/function/free").status == 200;
  })) << logs();
  HttpResult accepted = HttpRequest(gw1.http_port(), "POST", "/async-function/free");
  EXPECT_EQ(accepted.status, 202) << accepted.body << logs();

  // Counters only in the limits Redis, streams only in the queue Redis.
  EXPECT_NE(RedisCli(limits, {"EXISTS", "faas:rl:gw"}), "0");
  EXPECT_NE(RedisCli(limits, {"KEYS", "faas:rl:*limited*"}), "");
  EXPECT_EQ(RedisCli(limits, {"KEYS", "faas:s:*"}), "");
  EXPECT_EQ(RedisCli(queues, {"KEYS", "faas:rl:*"}), "");
  EXPECT_EQ(RedisCli(queues, {"EXISTS", "faas:s:_async"}), "1");

  // The limits Redis down: each gateway admits its share (6 / 2 = 3), async still accepted.
  limits.Kill();
  EXPECT_EQ(count_ok(20), 6) << logs();
  EXPECT_TRUE(PollLogs(gw1, "rate_limit.redis_down")) << logs();
  accepted = HttpRequest(gw2.http_port(), "POST", "/async-function/free");
  EXPECT_EQ(accepted.status, 202) << accepted.body << logs();
  EXPECT_EQ(gw1.Stop(), 0) << gw1.Logs();
  EXPECT_EQ(gw2.Stop(), 0) << gw2.Logs();
}

}  // namespace
}  // namespace faas::testing
