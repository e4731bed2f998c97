// "bounded-hash": weighted rendezvous hashing with bounded loads (docs/design/0017-balancing.md).
//
// Each node draws a score for the key, -ln(U)/capacity with U uniform in (0, 1) from
// hash(key, node id): an exponential variable of rate `capacity`, so node i has the lowest score
// with probability capacity_i / sum(capacity). The key's home is the node with the lowest score;
// a node already at its cap is skipped, so the key goes to its next-lowest score (a second home
// that is also the same for every gateway). The cap (Mirrokni, Thorup, Zadimoghaddam, SODA 2018)
// is ceil(c x (L + 1) x capacity_i / sum(capacity)) for a total load L: since the caps add up to
// more than L, some node is always under its cap. Relief: a node at warm_floor x capacity or
// more (calls queue there) gives the call to the first node in the key's order that runs less
// than the mean, so one hot key cannot queue on two nodes while a third is short of its share
// (docs/design/0035-warm-aware-spill.md, "Relief").
#include <cmath>
#include <cstdint>

#include "faas/base/status.h"

#include "balancer_internal.h"

namespace faas::cluster::internal {

namespace {

// The lowest score offered so far; ties (equal hashes) go to the smaller id, so the order of
// `nodes` never matters.
struct Choice {
  std::size_t index = SIZE_MAX;
  double score = 0;
  bool Found() const { return index != SIZE_MAX; }
  // Whether this choice comes before `other` in the key's order of nodes.
  bool Precedes(const Choice& other, std::span<const NodeLoad> nodes) const {
    return score < other.score || (score == other.score && nodes[index].id < nodes[other.index].id);
  }
  void Offer(std::size_t i, double s, std::span<const NodeLoad> nodes) {
    if (!Found() || s < score || (s == score && nodes[i].id < nodes[index].id)) {
      index = i;
      score = s;
    }
  }
};

class BoundedHash final : public Balancer {
 public:
  explicit BoundedHash(const BoundedHashOptions& options) : options_(options) {}
  std::string_view Name() const override { return "bounded-hash"; }

  std::size_t Pick(std::string_view key, std::span<const NodeLoad> nodes) override {
    FAAS_CHECK(!nodes.empty());
    double total_weight = 0;
    double total_in_flight = 0;
    double total_estimate = 0;
    bool equal_weights = true;
    for (const NodeLoad& n : nodes) {
      equal_weights = equal_weights && Weight(n) == Weight(nodes[0]);
      total_weight += Weight(n);
      total_in_flight += n.in_flight;
      total_estimate += EstimatedLoad(n);
    }
    // Per unit of weight: node i's cap is max(ceil(x_cap * weight_i), floor * weight_i). A node
    // takes the call only if its estimated load (EstimatedLoad) is under the cap. When the
    // estimate rests on a report we cannot take our share out of (no others_load), the node must
    // also be under the cap by our own calls in flight, fresh and exact: a stale report elsewhere
    // raises the mean and would loosen the cap on what we add.
    const double floor = options_.floor;
    const double in_flight_cap = options_.load_factor * (total_in_flight + 1) / total_weight;
    const double estimate_cap = options_.load_factor * (total_estimate + 1) / total_weight;
    const uint64_t key_hash = Hash64(key);
    Choice under_both;
    Choice under_ours;  // never empty in exact arithmetic: the caps add up to more than the load
    Choice any;
    Choice warm_room;   // where the key is warm and the load under warm_floor x capacity
    Choice below_mean;  // where the load is under the mean, by our count and by the estimate
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const NodeLoad& n = nodes[i];
      const double w = Weight(n);
      const double score = Score(key_hash, n, equal_weights);
      any.Offer(i, score, nodes);
      if (n.warm && n.in_flight < options_.warm_floor * w &&
          EstimatedLoad(n) < options_.warm_floor * w) {
        warm_room.Offer(i, score, nodes);
      }
      if (n.in_flight * total_weight < total_in_flight * w &&
          EstimatedLoad(n) * total_weight < total_estimate * w) {
        below_mean.Offer(i, score, nodes);
      }
      // For a whole number, x < ceil(y) is x < y: no ceil (a libm call without SSE4.1).
      const bool ours_under = n.in_flight < in_flight_cap * w || n.in_flight < floor * w;
      if (ours_under) {
        under_ours.Offer(i, score, nodes);
      }
      if (n.reported_load < 0 && n.others_load < 0) {  // the estimate is our in-flight count
        if (ours_under) {
          under_both.Offer(i, score, nodes);
        }
        continue;
      }
      const double estimate = EstimatedLoad(n);
      const bool estimate_under = estimate < std::ceil(estimate_cap * w) || estimate < floor * w;
      if (estimate_under && (ours_under || n.others_load >= 0)) {
        under_both.Offer(i, score, nodes);
      }
    }
    // A full node is skipped: the key walks on to its next-lowest score.
    const Choice& pick = under_both.Found() ? under_both : under_ours.Found() ? under_ours : any;
    // Unless that node has the key cold and one skipped before it has it warm with room to
    // spare: the call waits there behind a few others instead of paying a cold start.
    std::size_t chosen = pick.index;
    if (!nodes[pick.index].warm && warm_room.Found() && warm_room.Precedes(pick, nodes)) {
      chosen = warm_room.index;
    }
    // Relief: a node well past full (load at warm_floor x capacity or more: calls queue there)
    // gives the call to the first node in the key's order whose load is under the mean. The
    // mean-based cap alone lets a hot key fill the first nodes in its order (each up to 1.25 x
    // the mean) while the last one runs less than its share (design/0035, "Relief").
    const NodeLoad& c = nodes[chosen];
    if (options_.warm_floor > 0 && below_mean.Found() &&
        EstimatedLoad(c) >= options_.warm_floor * Weight(c)) {
      return below_mean.index;
    }
    return chosen;
  }

 private:
  static double Score(uint64_t key_hash, const NodeLoad& n, bool equal_weights) {
    const uint64_t h = Mix64(key_hash ^ Hash64(n.id));
    if (equal_weights) {
      // -ln(u)/w falls as u rises, so with one weight the order is u's: skip the log (a third
      // of a pick's cost).
      return -static_cast<double>(h >> 11);
    }
    // The top 53 bits as a double strictly inside (0, 1), so the log is finite.
    const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
    return -std::log(u) / Weight(n);
  }

  BoundedHashOptions options_;
};

}  // namespace

}  // namespace faas::cluster::internal

namespace faas::cluster {

std::unique_ptr<Balancer> MakeBoundedHash(const BoundedHashOptions& options) {
  return std::make_unique<internal::BoundedHash>(options);
}

}  // namespace faas::cluster
