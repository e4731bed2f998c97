// "bounded-hash": weighted rendezvous hashing with bounded loads (docs/design/0017-balancing.md).
//
// Each node draws a score for the key, -ln(U)/capacity with U uniform in (0, 1) from
// hash(key, node id): an exponential variable of rate `capacity`, so node i has the lowest score
// with probability capacity_i / sum(capacity). The key's home is the node with the lowest score;
// a node already at its cap is skipped, so the key goes to its next-lowest score (a second home
// that is also the same for every gateway). The cap (Mirrokni, Thorup, Zadimoghaddam, SODA 2018)
// is ceil(c x (L + 1) x capacity_i / sum(capacity)) for a total load L: since the caps add up to
// more than L, some node is always under its cap.
#include <cmath>
#include <limits>

#include "faas/base/status.h"

#include "balancer_internal.h"

namespace faas::cluster::internal {

namespace {

constexpr uint64_t kPrime1 = 0x9e3779b185ebca87ULL;  // xxHash64's primes
constexpr uint64_t kPrime2 = 0xc2b2ae3d27d4eb4fULL;

// Little-endian by construction, so that hosts of either byte order agree.
uint64_t LoadLe(const char* p, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return v;
}

uint64_t Rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

class BoundedHash final : public Balancer {
 public:
  explicit BoundedHash(double load_factor) : load_factor_(load_factor) {}
  std::string_view Name() const override { return "bounded-hash"; }

  std::size_t Pick(std::string_view key, std::span<const NodeLoad> nodes) override {
    FAAS_CHECK(!nodes.empty());
    const uint64_t key_hash = Hash64(key);
    double total_weight = 0;
    double total_load = 0;
    for (const NodeLoad& n : nodes) {
      total_weight += Weight(n);
      total_load += BlendedLoad(n);
    }
    // Per unit of weight; node i's cap is ceil(cap_per_weight x weight_i).
    const double cap_per_weight = load_factor_ * (total_load + 1) / total_weight;
    std::size_t best = nodes.size();
    double best_score = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const NodeLoad& n = nodes[i];
      if (BlendedLoad(n) >= std::ceil(cap_per_weight * Weight(n))) {
        continue;  // full: walk on to the key's next choice
      }
      const double score = Score(key_hash, n);
      // Ties (equal hashes) fall to the smaller id, so the order of `nodes` never matters.
      if (best == nodes.size() || score < best_score ||
          (score == best_score && n.id < nodes[best].id)) {
        best = i;
        best_score = score;
      }
    }
    if (best == nodes.size()) {
      // Unreachable in exact arithmetic (the caps add up to more than the load); rounding
      // aside, take the least loaded node per unit of weight.
      best = 0;
      for (std::size_t i = 1; i < nodes.size(); ++i) {
        if (BlendedLoad(nodes[i]) / Weight(nodes[i]) <
            BlendedLoad(nodes[best]) / Weight(nodes[best])) {
          best = i;
        }
      }
    }
    return best;
  }

 private:
  static double Score(uint64_t key_hash, const NodeLoad& n) {
    const uint64_t h = Mix64(key_hash ^ Hash64(n.id));
    // The top 53 bits as a double strictly inside (0, 1), so the log is finite.
    const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
    return -std::log(u) / Weight(n);
  }

  double load_factor_;
};

}  // namespace

uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// xxHash64-style rounds over 8-byte words, then Mix64. Not xxHash64 itself: it only has to be
// stable and well spread for short ids and function@version keys.
uint64_t Hash64(std::string_view bytes) {
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

std::unique_ptr<Balancer> MakeBoundedHash(double load_factor) {
  return std::make_unique<BoundedHash>(load_factor);
}

}  // namespace faas::cluster::internal
