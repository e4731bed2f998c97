// Private to cluster/src: the balancer factories and the small helpers they share.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "faas/cluster/balancer.h"

namespace faas::cluster::internal {

// A node's weight: its capacity, or a tiny one when the caller passed <= 0 or NaN (such a node is
// picked last, never divides by zero).
inline double Weight(const NodeLoad& n) {
  return n.capacity > 0 ? n.capacity : 1e-9;
}

// What bounded-hash counts as a node's load, in in-flight units. With an estimate of everyone
// else's load (others_load): ours now plus theirs, a fresh estimate of the node's total. With a
// report alone: the larger of ours and the report (our own calls are inside the report, so max
// and not a sum). Without either: what this gateway has in flight.
// docs/design/0017-balancing.md says why.
inline double EstimatedLoad(const NodeLoad& n) {
  if (n.others_load >= 0) {
    return n.in_flight + n.others_load;
  }
  if (n.reported_load < 0) {
    return n.in_flight;
  }
  const double reported = n.reported_load * Weight(n);
  return reported > n.in_flight ? reported : n.in_flight;
}

// Stable 64-bit hashes: every gateway must place a key on the same node, so no std::hash and no
// per-process seed. Inline: a bounded-hash pick runs them once per node.
inline constexpr uint64_t kPrime1 = 0x9e3779b185ebca87ULL;  // xxHash64's primes
inline constexpr uint64_t kPrime2 = 0xc2b2ae3d27d4eb4fULL;

// Little-endian by construction, so that hosts of either byte order agree.
inline uint64_t LoadLe(const char* p, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return v;
}

inline uint64_t Rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

// MurmurHash3's fmix64: a bijection that spreads every input bit.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// xxHash64-style rounds over 8-byte words, then Mix64. Not xxHash64 itself: it only has to be
// stable and well spread for short ids and function@version keys.
inline uint64_t Hash64(std::string_view bytes) {
  uint64_t h = kPrime2 ^ (bytes.size() * kPrime1);
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    h = Rotl(h ^ (LoadLe(bytes.data() + i, 8) * kPrime2), 31) * kPrime1;
  }
  if (i < bytes.size()) {
    h = Rotl(h ^ (LoadLe(bytes.data() + i, bytes.size() - i) * kPrime2), 31) * kPrime1;
  }
  return Mix64(h);
}

}  // namespace faas::cluster::internal
