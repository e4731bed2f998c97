// Picking a node for one invocation (issue #16 item 5; ../shared/CLUSTER.md §4). The default,
// "bounded-hash", is consistent hashing with bounded loads on function@version: a function's
// calls land where its instances are warm, and no node takes more than about 1.25x the mean load.
// The others are there for comparison (bench/cluster).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::cluster {

// One candidate node as this gateway sees it at the moment of a pick.
struct NodeLoad {
  std::string_view id;
  double capacity = 1;        // relative weight, > 0
  uint32_t in_flight = 0;     // invocations this gateway has outstanding on the node
  double reported_load = -1;  // the node's own busy share from its health reply; < 0 unknown
  // Everyone else's load on the node (other gateways' calls, work that comes from no gateway),
  // in in_flight's unit, as this gateway estimates it from the node's reports with its own share
  // taken out (HealthChecker: NodeInfo::others_load); < 0 unknown. With it, bounded-hash caps a
  // node on in_flight + others_load, a fresh estimate of its total (docs/design/0017-balancing.md,
  // "Several gateways"); without, on in_flight and the blend with reported_load.
  double others_load = -1;
  double ewma_ms = 0;  // smoothed response time this gateway saw; 0 unknown
  // This gateway saw the node answer a call of this key lately (WarmTracker), so an instance of
  // it is likely warm there. bounded-hash spills a call to a node where the key is cold only
  // when its warm node is well past full (BoundedHashOptions::warm_floor).
  bool warm = false;
};

// Not thread-safe: a gateway serialises its picks, or keeps one balancer per loop.
class Balancer {
 public:
  virtual ~Balancer() = default;
  virtual std::string_view Name() const = 0;
  // Picks one of `nodes` (non-empty; all up) for an invocation whose affinity key is `key`
  // (function@version) and returns its index. The same key over the same set of ids gives the
  // same node, whatever the order of `nodes`, while loads allow. To retry elsewhere, the caller
  // picks again without the nodes it tried.
  virtual std::size_t Pick(std::string_view key, std::span<const NodeLoad> nodes) = 0;
};

// "bounded-hash" (default), "round-robin", "weighted-round-robin", "least-connections",
// "least-response-time", "p2c", "resource". InvalidArgument for another name, listing these.
faas::Result<std::unique_ptr<Balancer>> MakeBalancer(std::string_view name, uint64_t seed = 1);
std::vector<std::string> BalancerNames();

// bounded-hash's knobs; MakeBalancer("bounded-hash") uses these defaults. For tests and the
// simulation (bench/micro/balancer_sim.h), which compare rules in one run.
struct BoundedHashOptions {
  // The cap: ceil(load_factor x (L + 1) x capacity_i / sum(capacity)) for a total load L.
  double load_factor = 1.25;
  // The cap is never below floor x capacity_i: a node whose load is under that share of its
  // capacity takes its keys whatever the others hold. faasd registers a node's capacity as its
  // CPUs and reports load as instances busy or waiting, so 1.0 reads "a node with an idle CPU is
  // never full": there a call runs at once, and the cap has nothing to protect. At low load the
  // mean-based cap alone is 1 call a node, so concurrent calls of one function would spill to
  // nodes where it is cold. Above a mean of 1/1.25 of capacity the floor never binds.
  // 0: the mean-based cap alone (at least 1 call, as HAProxy's hash-balance-factor).
  double floor = 1.0;
  // Warm-aware spill (docs/design/0035-warm-aware-spill.md). When the node the rules above pick
  // has the key cold (NodeLoad::warm false), a node with a lower score where the key is warm,
  // skipped as full, still takes the call while its load is under warm_floor x capacity: a call
  // that waits behind a few others on a warm node costs far less than a cold start, and a key
  // that spills often is warm on its second node too, so it spills as before. Above a mean load
  // of warm_floor / 1.25 of capacity the mean-based cap decides alone. 0: off.
  // Relief: a node whose load is at warm_floor x capacity or more (well past full: calls wait
  // there) gives the call to the first node in the key's order whose load is under the mean
  // (per unit of capacity), if there is one. Off with warm_floor 0.
  double warm_floor = 2.0;
};
std::unique_ptr<Balancer> MakeBoundedHash(const BoundedHashOptions& options);

}  // namespace faas::cluster
