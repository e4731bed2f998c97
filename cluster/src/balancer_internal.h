// Private to cluster/src: the balancer factories and the small helpers they share.
#pragma once

#include <cstdint>
#include <memory>

#include "faas/cluster/balancer.h"

namespace faas::cluster::internal {

// 1.25: the cap of CLUSTER.md §4, as HAProxy's hash-balance-factor 125.
inline constexpr double kLoadFactor = 1.25;

// A node's weight: its capacity, or a tiny one when the caller passed <= 0 or NaN (such a node is
// picked last, never divides by zero).
inline double Weight(const NodeLoad& n) {
  return n.capacity > 0 ? n.capacity : 1e-9;
}

// What bounded-hash counts as a node's load, in in-flight units: what this gateway has in flight,
// or the node's own report of everyone's work (reported_load x capacity) when that is larger.
// docs/design/0017-balancing.md says why max and not a sum (our own calls are in the report).
inline double BlendedLoad(const NodeLoad& n) {
  const double reported = n.reported_load >= 0 ? n.reported_load * Weight(n) : 0;
  return reported > n.in_flight ? reported : n.in_flight;
}

// Stable 64-bit hashes: every gateway must place a key on the same node, so no std::hash and no
// per-process seed.
uint64_t Hash64(std::string_view bytes);
uint64_t Mix64(uint64_t x);  // MurmurHash3's fmix64: a bijection that spreads every input bit

std::unique_ptr<Balancer> MakeBoundedHash(double load_factor);

}  // namespace faas::cluster::internal
