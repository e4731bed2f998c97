// The cost of one Pick for each balancer over 4, 16 and 64 nodes (docs/design/0017-balancing.md):
// it runs once per invocation on the gateway's loop, so it should stay well under a microsecond.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "faas/cluster/balancer.h"

namespace {

void BM_Pick(benchmark::State& state, const std::string& name) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) {
    ids.push_back("node-" + std::to_string(i) + ".faas.internal");
  }
  std::vector<faas::cluster::NodeLoad> nodes;
  for (std::size_t i = 0; i < n; ++i) {
    nodes.push_back({.id = ids[i],
                     .capacity = 16,
                     .in_flight = static_cast<uint32_t>(i % 5),
                     .reported_load = 0.25,
                     .ewma_ms = 10.0 + static_cast<double>(i % 3)});
  }
  std::vector<std::string> keys;
  keys.reserve(200);
  for (int f = 0; f < 200; ++f) {
    keys.push_back("function-" + std::to_string(f) + "@" + std::to_string(f % 9 + 1));
  }
  auto balancer = std::move(faas::cluster::MakeBalancer(name)).value();
  std::size_t k = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(balancer->Pick(keys[k], nodes));
    k = k + 1 == keys.size() ? 0 : k + 1;
  }
}

const bool registered = [] {
  for (const std::string& name : faas::cluster::BalancerNames()) {
    benchmark::RegisterBenchmark(("BM_Pick/" + name).c_str(), BM_Pick, name)
        ->Arg(4)
        ->Arg(16)
        ->Arg(64);
  }
  return true;
}();

}  // namespace
