// The balancers of cluster/include/faas/cluster/balancer.h, each by its defining behaviour. Pure
// code: loads are fed back by hand, no clock, no randomness but the seeded one under test.
#include "faas/cluster/balancer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace faas::cluster {
namespace {

std::unique_ptr<Balancer> Make(std::string_view name, uint64_t seed = 1) {
  auto b = MakeBalancer(name, seed);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

// Node ids live here; NodeLoad only views them.
struct Cluster {
  explicit Cluster(int n, double capacity = 1) {
    for (int i = 0; i < n; ++i) {
      Add("node-" + std::to_string(i), capacity);
    }
  }
  void Add(std::string id, double capacity = 1) {
    ids.push_back(std::make_unique<std::string>(std::move(id)));
    nodes.push_back({.id = *ids.back(), .capacity = capacity});
  }
  void Remove(std::string_view id) {
    std::erase_if(nodes, [&](const NodeLoad& n) { return n.id == id; });
  }
  // `at_node` calls in flight on `node`, `elsewhere` on every other node.
  void SetInFlight(std::string_view node, uint32_t at_node, uint32_t elsewhere) {
    for (NodeLoad& n : nodes) {
      n.in_flight = n.id == node ? at_node : elsewhere;
    }
  }
  std::string_view PickId(Balancer& b, std::string_view key) {
    return nodes[b.Pick(key, nodes)].id;
  }
  std::vector<std::unique_ptr<std::string>> ids;
  std::vector<NodeLoad> nodes;
};

std::string Key(int i) {
  return "fn-" + std::to_string(i) + "@" + std::to_string(i % 7 + 1);
}

TEST(MakeBalancer, MakesEveryListedBalancerUnderItsName) {
  const std::vector<std::string> names = BalancerNames();
  ASSERT_EQ(names.size(), 7u);
  EXPECT_EQ(names.front(), "bounded-hash");  // the default comes first
  for (const std::string& name : names) {
    EXPECT_EQ(Make(name)->Name(), name);
  }
}

TEST(MakeBalancer, RefusesAnUnknownNameAndListsTheKnownOnes) {
  auto b = MakeBalancer("hash-mod-n");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("\"hash-mod-n\""), std::string::npos);
  for (const std::string& name : BalancerNames()) {
    EXPECT_NE(b.status().message().find(name), std::string::npos) << name;
  }
}

TEST(BoundedHash, IsDeterministicAndIgnoresTheOrderOfNodes) {
  Cluster c(7);
  auto a = Make("bounded-hash");
  auto b = Make("bounded-hash");  // another gateway
  std::vector<NodeLoad> shuffled = c.nodes;
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const std::string key = Key(i);
    EXPECT_EQ(c.PickId(*a, key), shuffled[b->Pick(key, shuffled)].id) << key;
  }
}

TEST(BoundedHash, KeepsAKeyOnItsNodeWhileUnderTheCap) {
  Cluster c(4);
  auto b = Make("bounded-hash");
  const std::string key = "resize@3";
  const std::string_view home = c.PickId(*b, key);
  // Everyone equally busy: the home's load stays under 1.25x the mean, so the key stays.
  for (uint32_t load = 0; load < 50; ++load) {
    for (NodeLoad& n : c.nodes) {
      n.in_flight = load;
    }
    EXPECT_EQ(c.PickId(*b, key), home) << load;
  }
  // Home over the cap: the key goes to its second choice, the node it gets when home is gone.
  c.SetInFlight(home, 20, 10);  // cap = ceil(1.25 x 51 / 4) = 16
  const std::string_view overflow = c.PickId(*b, key);
  EXPECT_NE(overflow, home);
  Cluster without(0);
  without.nodes = c.nodes;
  without.Remove(home);
  EXPECT_EQ(without.PickId(*b, key), overflow);
}

// The defining property of bounded loads: with loads fed back, a hot key spreads, and no node
// passes ceil(1.25 x mean) (+1 of slack, as the brief allows; the picks below never use it).
TEST(BoundedHash, CapHoldsWhenLoadsAreFedBack) {
  for (int n : {2, 3, 5, 8}) {
    Cluster c(n);
    auto b = Make("bounded-hash");
    std::mt19937 rng(7);
    uint32_t total = 0;
    auto pick = [&] {  // mostly one hot key
      const std::string key = rng() % 5 == 0 ? Key(static_cast<int>(rng() % 50)) : "hot@1";
      NodeLoad& x = c.nodes[b->Pick(key, c.nodes)];
      ++x.in_flight;
      ++total;
      return x.in_flight;
    };
    // Arrivals only: the cap bounds every node at every step.
    for (int step = 0; step < 1000; ++step) {
      pick();
      const double mean = static_cast<double>(total) / n;
      for (const NodeLoad& x : c.nodes) {
        ASSERT_LE(x.in_flight, std::ceil(1.25 * mean) + 1) << "n=" << n << " step=" << step;
      }
    }
    EXPECT_GT(std::ranges::count_if(c.nodes, [](const NodeLoad& x) { return x.in_flight > 0; }), 1)
        << "the hot key spread";
    // Arrivals and completions (each call in flight equally likely to end): completions elsewhere
    // can leave a node above the cap, but a pick never takes a node there.
    for (int step = 0; step < 4000; ++step) {
      if (rng() % 2 == 0) {
        uint32_t victim = static_cast<uint32_t>(rng() % total);
        for (NodeLoad& x : c.nodes) {
          if (victim < x.in_flight) {
            --x.in_flight;
            break;
          }
          victim -= x.in_flight;
        }
        --total;
      }
      const uint32_t picked_load = pick();
      ASSERT_LE(picked_load, std::ceil(1.25 * total / n)) << "n=" << n << " step=" << step;
    }
  }
}

TEST(BoundedHash, ReportedLoadCountsWhenLargerThanOurInFlight) {
  Cluster c(2, 10);
  auto b = Make("bounded-hash");
  const std::string key = "report@1";
  const std::string_view home = c.PickId(*b, key);
  for (NodeLoad& n : c.nodes) {
    // Other gateways keep the home over-full (12 calls on 10 slots); we have nothing in flight.
    n.reported_load = n.id == home ? 1.2 : 0.0;
  }
  EXPECT_NE(c.PickId(*b, key), home);  // cap = ceil(1.25 x 13 x 10 / 20) = 9 < 12, floor 10
  for (NodeLoad& n : c.nodes) {
    n.reported_load = n.id == home ? 0.2 : 0.1;
  }
  EXPECT_EQ(c.PickId(*b, key), home);
}

// Several gateways: the nodes are evenly busy (5 calls of 10 slots each, as the last reports
// say), and this gateway has 3 calls on the key's home. Capped on our own calls alone (the first
// rule), 3 looks like a hot spot (cap ceil(1.25 x 4 / 4) = 2) and the key spills to a cold node.
// With everyone else's load known apart from ours (the home's 2 others, 5 on the rest), the home
// holds 3 + 2 = 5 like every node: under ceil(1.25 x 21 x 10 / 40) = 7, so the key stays.
TEST(BoundedHash, CapsTheNodesTotalNotOurShareWhenOthersLoadIsKnown) {
  Cluster c(4, 10);
  // No floor here: with 10 slots a node the default floor alone would keep 3 home.
  auto b = MakeBoundedHash({.load_factor = 1.25, .floor = 0});
  const std::string key = "shared@2";
  const std::string_view home = c.PickId(*b, key);
  for (NodeLoad& n : c.nodes) {
    n.reported_load = 0.5;
    n.in_flight = n.id == home ? 3 : 0;
  }
  EXPECT_NE(c.PickId(*b, key), home) << "without others_load: the first rule";
  for (NodeLoad& n : c.nodes) {
    n.others_load = n.id == home ? 2 : 5;
  }
  EXPECT_EQ(c.PickId(*b, key), home);
  // Still a cap: 4 more of ours on the home (9 in all, the others 5) is over
  // ceil(1.25 x 25 x 10 / 40) = 8.
  c.SetInFlight(home, 7, 0);
  EXPECT_NE(c.PickId(*b, key), home);
}

// A report is up to 250 ms old. Our own calls that ended since no longer count (the blend kept
// them until the next report), and other gateways' calls still do.
TEST(BoundedHash, OurCallsCountAsTheyAreNowAndOthersAsEstimated) {
  Cluster c(2, 10);
  auto b = Make("bounded-hash");
  const std::string key = "report@1";
  const std::string_view home = c.PickId(*b, key);
  for (NodeLoad& n : c.nodes) {
    // The home was 90% busy with our calls; all but one have ended since.
    n.reported_load = n.id == home ? 0.9 : 0.0;
    n.others_load = 0;
    n.in_flight = n.id == home ? 1 : 0;
  }
  EXPECT_EQ(c.PickId(*b, key), home);
  for (NodeLoad& n : c.nodes) {
    // The same report, but the 9 were another gateway's.
    n.others_load = n.id == home ? 9 : 0;
  }
  EXPECT_NE(c.PickId(*b, key), home);  // 1 + 9 over ceil(1.25 x 11 x 10 / 20) = 7
}

// The floor: at low load the mean-based cap is 1 call a node (ceil(1.25 x 2 x 2 / 6) = 1 with
// one call in flight on 3 nodes of 2 slots), so a second concurrent call of a function would go
// to a node where it is cold. A node with a free slot (floor 1 x capacity) takes it.
TEST(BoundedHash, FloorKeepsConcurrentCallsHomeWhileTheNodeHasFreeSlots) {
  Cluster c(3, 2);
  const std::string key = "burst@1";
  auto plain = MakeBoundedHash({.load_factor = 1.25, .floor = 0});
  auto floored = MakeBoundedHash({.load_factor = 1.25, .floor = 1});
  const std::string_view home = c.PickId(*plain, key);
  ASSERT_EQ(c.PickId(*floored, key), home);
  c.SetInFlight(home, 1, 0);
  EXPECT_NE(c.PickId(*plain, key), home);
  EXPECT_EQ(c.PickId(*floored, key), home);
  c.SetInFlight(home, 2, 0);  // both slots busy: over the floor and the cap
  EXPECT_NE(c.PickId(*floored, key), home);
  // The floor applies to the estimate from reports too: other gateways' 2 calls fill it.
  for (NodeLoad& n : c.nodes) {
    n.in_flight = 0;
    n.reported_load = n.id == home ? 1.0 : 0.0;
    n.others_load = n.id == home ? 2 : 0;
  }
  EXPECT_NE(c.PickId(*floored, key), home);
}

// Warm-aware spill (design/0035): past the floor, a home where the key is warm keeps the call
// while the node it would spill to has the key cold, up to warm_floor x capacity.
TEST(BoundedHash, AWarmHomeKeepsACallPastTheFloorRatherThanSpillItCold) {
  Cluster c(3, 2);
  const std::string key = "tail@1";
  auto b = Make("bounded-hash");
  const std::string_view home = c.PickId(*b, key);
  for (NodeLoad& n : c.nodes) {
    n.warm = n.id == home;
    n.in_flight = n.id == home ? 2 : 0;  // over the floor (1 x 2) and the cap
  }
  EXPECT_EQ(c.PickId(*b, key), home);
  c.SetInFlight(home, 3, 0);
  EXPECT_EQ(c.PickId(*b, key), home);
  c.SetInFlight(home, 4, 0);  // at warm_floor x capacity: full even warm
  EXPECT_NE(c.PickId(*b, key), home);
  // Without the hint, or with the rule off, the floor decides as before.
  c.SetInFlight(home, 2, 0);
  auto off = MakeBoundedHash({.warm_floor = 0});
  EXPECT_NE(c.PickId(*off, key), home);
  for (NodeLoad& n : c.nodes) {
    n.warm = false;
  }
  EXPECT_NE(c.PickId(*b, key), home);
}

TEST(BoundedHash, AKeyWarmOnItsSecondNodeTooSpillsAsBefore) {
  Cluster c(3, 2);
  const std::string key = "hot@1";
  auto b = Make("bounded-hash");
  const std::string_view home = c.PickId(*b, key);
  c.SetInFlight(home, 2, 0);
  const std::string_view second = c.PickId(*b, key);
  ASSERT_NE(second, home);
  for (NodeLoad& n : c.nodes) {
    n.warm = n.id == home || n.id == second;
  }
  EXPECT_EQ(c.PickId(*b, key), second);
  // A node warm for the key but after the pick in its order never draws it away: the hint only
  // keeps a call where it was skipped, it does not move keys.
  for (NodeLoad& n : c.nodes) {
    n.in_flight = 0;
    n.warm = n.id != home;
  }
  EXPECT_EQ(c.PickId(*b, key), home);
}

// Relief (design/0035): the mean-based cap lets a hot key queue on the first nodes in its order
// while another node runs less than its share; a node well past full (warm_floor x capacity)
// gives the call to the first node under the mean instead.
TEST(BoundedHash, ANodeWellPastFullGivesTheCallToANodeUnderTheMean) {
  Cluster c(3, 2);
  const std::string key = "hot@1";
  auto b = Make("bounded-hash");
  auto off = MakeBoundedHash({.warm_floor = 0});
  const std::string_view home = c.PickId(*b, key);
  c.SetInFlight(home, 2, 0);
  const std::string_view second = c.PickId(*b, key);
  ASSERT_NE(second, home);
  std::string_view third;
  for (const NodeLoad& n : c.nodes) {
    if (n.id != home && n.id != second) {
      third = n.id;
    }
  }
  auto set = [&](uint32_t at_home, uint32_t at_second, uint32_t at_third, double third_report) {
    for (NodeLoad& n : c.nodes) {
      n.in_flight = n.id == home ? at_home : n.id == second ? at_second : at_third;
      n.reported_load = n.id == third ? third_report : -1;
      n.warm = n.id != third;
    }
  };
  // 4 + 4 + 2 in flight: the cap is ceil(1.25 x 11 x 2 / 6) = 5, so the home is under it and
  // takes the call, with 4 calls on its 2 CPUs, while the third runs less than the mean (3.3).
  set(4, 4, 2, -1);
  EXPECT_EQ(c.PickId(*off, key), home);
  EXPECT_EQ(c.PickId(*b, key), third);
  // At the mean everywhere: the caps decide as before.
  set(4, 4, 4, -1);
  EXPECT_EQ(c.PickId(*b, key), home);
  // Under the mean by our count but not by the node's own report (2 x 2 = 4 of a mean of 4).
  set(4, 4, 2, 2.0);
  EXPECT_EQ(c.PickId(*b, key), home);
  // Below warm_floor x capacity (4) the warm home keeps its key (the warm-aware spill), whatever
  // the others run.
  set(3, 3, 0, -1);
  EXPECT_EQ(c.PickId(*b, key), home);
}

TEST(BoundedHash, UnderHeavyLoadTheMeanBasedCapDecidesWarmOrNot) {
  Cluster c(3, 2);
  const std::string key = "busy@1";
  auto b = Make("bounded-hash");
  const std::string_view home = c.PickId(*b, key);
  for (NodeLoad& n : c.nodes) {
    n.warm = n.id == home;
    n.in_flight = n.id == home ? 20 : 10;  // cap = ceil(1.25 x 41 x 2 / 6) = 18
  }
  EXPECT_NE(c.PickId(*b, key), home);
}

// Fraction of 10k keys whose home changes between two memberships, at zero load.
double MovedShare(Cluster& before, Cluster& after) {
  auto b = Make("bounded-hash");
  int moved = 0;
  for (int i = 0; i < 10000; ++i) {
    moved += before.PickId(*b, Key(i)) != after.PickId(*b, Key(i)) ? 1 : 0;
  }
  return moved / 10000.0;
}

TEST(BoundedHash, MovesAtMostOneNthPlusFivePercentWhenANodeJoinsOrLeaves) {
  for (int n : {3, 5, 10}) {
    Cluster before(n);
    Cluster joined(n);
    joined.Add("node-new");
    EXPECT_LE(MovedShare(before, joined), 1.0 / (n + 1) + 0.05) << "join to " << n + 1;
    Cluster left(n);
    left.Remove("node-1");
    EXPECT_LE(MovedShare(before, left), 1.0 / n + 0.05) << "leave from " << n;
    EXPECT_GE(MovedShare(before, left), 1.0 / n - 0.05) << "the leaver's keys do move";
  }
}

TEST(BoundedHash, GivesKeysInProportionToCapacity) {
  Cluster c(3);
  c.nodes[2].capacity = 2;  // node-2 should get half of the keys, the others a quarter each
  auto b = Make("bounded-hash");
  std::map<std::string_view, int> count;
  for (int i = 0; i < 10000; ++i) {
    ++count[c.PickId(*b, Key(i))];
  }
  EXPECT_NEAR(count["node-2"] / 10000.0, 0.5, 0.03);
  EXPECT_NEAR(count["node-0"] / 10000.0, 0.25, 0.03);
  EXPECT_NEAR(count["node-1"] / 10000.0, 0.25, 0.03);
}

TEST(AllBalancers, NeverPickANodeThatLeft) {
  for (const std::string& name : BalancerNames()) {
    Cluster c(4);
    auto b = Make(name);
    for (int i = 0; i < 100; ++i) {
      c.PickId(*b, Key(i));
    }
    c.Remove("node-2");
    for (int i = 0; i < 1000; ++i) {
      const std::size_t picked = b->Pick(Key(i), c.nodes);
      ASSERT_LT(picked, c.nodes.size()) << name;
      EXPECT_NE(c.nodes[picked].id, "node-2") << name;
    }
    // A single node is always the answer.
    Cluster one(1);
    EXPECT_EQ(b->Pick("x@1", one.nodes), 0u) << name;
  }
}

TEST(RoundRobin, CyclesThroughEveryNodeWhateverTheLoad) {
  Cluster c(3);
  c.nodes[0].in_flight = 100;
  auto b = Make("round-robin");
  std::map<std::string_view, int> count;
  for (int i = 0; i < 300; ++i) {
    ++count[c.PickId(*b, "same@1")];
  }
  EXPECT_EQ(count["node-0"], 100);
  EXPECT_EQ(count["node-1"], 100);
  EXPECT_EQ(count["node-2"], 100);
}

TEST(WeightedRoundRobin, InterleavesSmoothlyLikeNginx) {
  Cluster c(0);
  c.Add("a", 5);
  c.Add("b", 1);
  c.Add("c", 1);
  auto b = Make("weighted-round-robin");
  std::string seq;
  for (int i = 0; i < 14; ++i) {
    seq += c.PickId(*b, "k@1");
  }
  EXPECT_EQ(seq, "aabacaaaabacaa");
}

TEST(LeastConnections, PicksFewestInFlightPerCapacityAndRotatesTies) {
  Cluster c(3);
  c.nodes[0].in_flight = 2;  // 2 per unit
  c.nodes[1].capacity = 2;
  c.nodes[1].in_flight = 3;  // 1.5 per unit: the least
  c.nodes[2].in_flight = 4;
  auto b = Make("least-connections");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c.PickId(*b, "k@1"), "node-1");
  }
  Cluster idle(3);
  std::map<std::string_view, int> count;
  for (int i = 0; i < 30; ++i) {
    ++count[idle.PickId(*b, "k@1")];
  }
  EXPECT_EQ(count.size(), 3u);  // equal loads do not pile onto the first node
}

TEST(LeastResponseTime, PicksLowestEwmaThenFewestInFlight) {
  Cluster c(3);
  c.nodes[0].ewma_ms = 12;
  c.nodes[1].ewma_ms = 4;
  c.nodes[2].ewma_ms = 9;
  auto b = Make("least-response-time");
  EXPECT_EQ(c.PickId(*b, "k@1"), "node-1");
  c.nodes[2].ewma_ms = 4;
  c.nodes[1].in_flight = 3;
  EXPECT_EQ(c.PickId(*b, "k@1"), "node-2");  // tie on EWMA: fewer in flight
  c.nodes[0].ewma_ms = 0;                    // not measured yet: tried first
  EXPECT_EQ(c.PickId(*b, "k@1"), "node-0");
}

TEST(PowerOfTwo, NeverPicksTheMostLoadedAndReplaysFromItsSeed) {
  Cluster c(4);
  for (std::size_t i = 0; i < 4; ++i) {
    c.nodes[i].in_flight = static_cast<uint32_t>(i);  // node-3 the most loaded
  }
  auto a = Make("p2c", 9);
  auto again = Make("p2c", 9);
  auto other = Make("p2c", 10);
  std::map<std::string_view, int> count;
  int differ = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string_view id = c.PickId(*a, "k@1");
    ++count[id];
    EXPECT_EQ(c.PickId(*again, "k@1"), id);
    differ += c.PickId(*other, "k@1") != id ? 1 : 0;
  }
  EXPECT_EQ(count["node-3"], 0);
  EXPECT_GT(count["node-2"], 0);  // random: the second-worst wins against the worst
  // The least loaded wins every pair it is in: 3 of the 6 pairs.
  EXPECT_NEAR(count["node-0"] / 4000.0, 0.5, 0.04);
  EXPECT_GT(differ, 0);
}

TEST(Resource, PicksLowestReportedLoadAndFallsBackToInFlight) {
  Cluster c(3, 4);
  c.nodes[0].reported_load = 0.8;
  c.nodes[1].reported_load = 0.3;
  c.nodes[2].in_flight = 2;  // unknown report: 2 of 4 = 0.5
  auto b = Make("resource");
  EXPECT_EQ(c.PickId(*b, "k@1"), "node-1");
  c.nodes[1].reported_load = 0.6;
  EXPECT_EQ(c.PickId(*b, "k@1"), "node-2");
}

}  // namespace
}  // namespace faas::cluster
