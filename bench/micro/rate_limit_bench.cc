// What a rate-limit check costs per request (docs/design/0023-shared-limits-and-retries.md),
// against a redis-server this binary starts on loopback (the tests' RedisProcess):
//   * BM_TakeLocal: RateLimiter::Take, the per-process limiter (--role all, or no --redis).
//   * BM_TakeRedis: SharedRateLimiter::Take with Redis up: one EVALSHA round trip, to a Redis
//     without AOF; BM_TakeRedisFsyncAlways: the same with appendfsync always (each admitted
//     request then waits for Redis's fsync).
//   * BM_RedisPing: a PING on one connection: the round trip BM_TakeRedis cannot go below.
//   * BM_TakeFallback: SharedRateLimiter::Take with the breaker open (Redis unreachable).
// Each takes from one key at a rate that always admits. Fixed iteration counts: Benchmark 1.7
// aborts in ComputeStats when interleaved repetitions pick different counts. Compare in one run
// with alternating rounds:
//   build/bench/faas_rate_limit_bench --benchmark_repetitions=10
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
// (one command line).
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "faas/gateway/rate_limit.h"
#include "faas/gateway/shared_rate_limit.h"
#include "faas/redis/client.h"

#include "redis_process.h"

namespace {

// A redis-server on loopback. `durable`: as the tests start it (AOF, appendfsync always: every
// write waits for an fsync), else reconfigured as a Redis that holds only counters would run
// (no AOF; rate-limit state may be lost in a crash).
faas::testing::RedisProcess* StartServer(bool durable) {
  ::signal(SIGPIPE, SIG_IGN);
  auto* r = new faas::testing::RedisProcess();  // lives until exit, like the benchmark
  if (faas::testing::RedisProcess::ServerPath().empty() || !r->Start()) {
    delete r;
    return nullptr;
  }
  if (!durable) {
    faas::redis::RedisClient c;
    if (!c.Connect(*faas::redis::ParseRedisUrl(r->url()), {}).ok() ||
        !c.Command({"CONFIG", "SET", "appendonly", "no"}).ok()) {
      delete r;
      return nullptr;
    }
  }
  return r;
}
faas::testing::RedisProcess* Server() {
  static faas::testing::RedisProcess* redis = StartServer(false);
  return redis;
}
faas::testing::RedisProcess* DurableServer() {
  static faas::testing::RedisProcess* redis = StartServer(true);
  return redis;
}

constexpr double kRate = 1e9;  // always admits: the cost of an admitted request
constexpr uint32_t kBurst = 1'000'000;

void BM_TakeLocal(benchmark::State& state) {
  faas::gateway::RateLimiter limiter;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.Take("f:bench", kRate, kBurst));
  }
}
BENCHMARK(BM_TakeLocal)->Iterations(2'000'000);

void TakeRedis(benchmark::State& state, faas::testing::RedisProcess* server) {
  if (server == nullptr) {
    state.SkipWithError("redis-server cannot run here");
    return;
  }
  // A 1 s io timeout: this measures the round trip, not the breaker.
  auto limiter = std::move(faas::gateway::SharedRateLimiter::Create(
                               {.redis_url = server->url(), .io_timeout = std::chrono::seconds(1)})
                               .value());
  if (!limiter->Start().ok()) {
    state.SkipWithError("Redis did not answer");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->Take("f:bench", kRate, kBurst));
  }
  if (limiter->GetStats().fallback_takes != 0) {
    state.SkipWithError("some takes fell back");
  }
}
void BM_TakeRedis(benchmark::State& state) {
  TakeRedis(state, Server());
}
BENCHMARK(BM_TakeRedis)->UseRealTime()->Iterations(20'000);
void BM_TakeRedisFsyncAlways(benchmark::State& state) {
  TakeRedis(state, DurableServer());
}
BENCHMARK(BM_TakeRedisFsyncAlways)->UseRealTime()->Iterations(2'000);

void BM_RedisPing(benchmark::State& state) {
  faas::redis::RedisClient c;
  if (Server() == nullptr || !c.Connect(*faas::redis::ParseRedisUrl(Server()->url()), {}).ok()) {
    state.SkipWithError("redis-server cannot run here");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.Command({"PING"}));
  }
}
BENCHMARK(BM_RedisPing)->UseRealTime()->Iterations(20'000);

void BM_TakeFallback(benchmark::State& state) {
  // Port 1 on loopback: refused, so the breaker opens at Start.
  auto limiter = std::move(
      faas::gateway::SharedRateLimiter::Create({.redis_url = "redis://127.0.0.1:1"}).value());
  (void)limiter->Start();
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->Take("f:bench", kRate, kBurst));
  }
}
BENCHMARK(BM_TakeFallback)->Iterations(2'000'000);

}  // namespace
