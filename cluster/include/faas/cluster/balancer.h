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
  double ewma_ms = 0;         // smoothed response time this gateway saw; 0 unknown
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

}  // namespace faas::cluster
