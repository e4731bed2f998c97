// bounded-hash in the simulation of bench/micro/balancer_sim.h (docs/design/0017-balancing.md):
// the figures the design rests on, as tests. Deterministic (seeded, counts, no clock).
#include "balancer_sim.h"

#include <memory>

#include <gtest/gtest.h>

#include "faas/cluster/balancer.h"

namespace faas::cluster {
namespace {

sim::Report RunRule(sim::Config cfg, int others, double floor) {
  cfg.others = others;
  return sim::Run(
      cfg, [&] { return MakeBoundedHash({.load_factor = 1.25, .floor = floor}); }, true);
}

// Three gateways share 48 clients: each one's calls in flight are a third of a node's, and a cap
// on them alone bites on random swings (the first rule: 0.84 warm). Capping each node's estimated
// total (ours now + everyone else's from the reports) keeps calls home as one gateway does.
TEST(BalancerSim, SeveralGatewaysCapTheNodesTotalAndKeepCallsWarm) {
  sim::Config cfg;
  cfg.pool = 64;
  cfg.gateways = 3;
  const sim::Report first = RunRule(cfg, /*others=*/-1, /*floor=*/0);
  const sim::Report now = sim::Run(cfg, "bounded-hash");
  EXPECT_LT(first.hit_ratio, 0.90);
  EXPECT_GE(now.hit_ratio, 0.95);
  EXPECT_LE(now.calls_max_mean, 1.25);
}

// Low load: 8 clients on 4 nodes of 16 slots. The mean-based cap is a call or two a node, so a
// function's concurrent calls spill to nodes where it is cold; the floor (a node with a free slot
// is never full) keeps them home.
TEST(BalancerSim, AtLowLoadTheFloorKeepsConcurrentCallsHome) {
  sim::Config cfg;
  cfg.pool = 64;
  cfg.clients = 8;
  const sim::Report no_floor = RunRule(cfg, /*others=*/1, /*floor=*/0);
  const sim::Report now = sim::Run(cfg, "bounded-hash");
  EXPECT_LT(no_floor.hit_ratio, 0.95);
  EXPECT_GE(now.hit_ratio, 0.99);
}

}  // namespace
}  // namespace faas::cluster
