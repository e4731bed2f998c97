// MakeBalancer and the comparison balancers of CLUSTER.md §4 (bounded-hash, the default, is in
// balancer_bounded_hash.cc). Each is a few lines: what defines it is the score it minimises.
#include "faas/cluster/balancer.h"

#include <map>
#include <utility>

#include "balancer_internal.h"

namespace faas::cluster {

namespace {

using internal::Weight;

constexpr std::string_view kNames[] = {
    "bounded-hash",      "round-robin",         "weighted-round-robin",
    "least-connections", "least-response-time", "p2c",
    "resource"};

double InFlightPerWeight(const NodeLoad& n) {
  return n.in_flight / Weight(n);
}

// The node with the lowest `score`, scanning from `start` and wrapping, so that ties rotate
// between picks instead of piling onto the first node of the list.
template <typename Score>
std::size_t ArgMin(std::span<const NodeLoad> nodes, uint64_t start, Score score) {
  FAAS_CHECK(!nodes.empty());
  const std::size_t n = nodes.size();
  const auto first = static_cast<std::size_t>(start % n);
  std::size_t best = first;
  auto best_score = score(nodes[best]);
  for (std::size_t j = 1; j < n; ++j) {
    const std::size_t i = (first + j) % n;
    auto s = score(nodes[i]);
    if (s < best_score) {
      best = i;
      best_score = s;
    }
  }
  return best;
}

class RoundRobin final : public Balancer {
 public:
  std::string_view Name() const override { return "round-robin"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    FAAS_CHECK(!nodes.empty());
    return static_cast<std::size_t>(next_++ % nodes.size());
  }

 private:
  uint64_t next_ = 0;
};

// nginx's smooth weighted round robin (ngx_http_upstream_round_robin.c): every node gains its
// weight, the richest is picked and pays the total. Capacities 5,1,1 give a a b a c a a, not
// a a a a a b c. State is kept by node id, so a node that leaves and returns resumes.
class WeightedRoundRobin final : public Balancer {
 public:
  std::string_view Name() const override { return "weighted-round-robin"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    FAAS_CHECK(!nodes.empty());
    if (current_.size() > 2 * nodes.size() + 16) {
      Prune(nodes);
    }
    double total = 0;
    std::size_t best = 0;
    double* best_current = nullptr;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto it = current_.find(nodes[i].id);
      if (it == current_.end()) {
        it = current_.emplace(std::string(nodes[i].id), 0.0).first;
      }
      it->second += Weight(nodes[i]);
      total += Weight(nodes[i]);
      // Ties go to the smaller id, so the order of `nodes` does not change the sequence.
      if (best_current == nullptr || it->second > *best_current ||
          (it->second == *best_current && nodes[i].id < nodes[best].id)) {
        best = i;
        best_current = &it->second;
      }
    }
    *best_current -= total;
    return best;
  }

 private:
  // Forgets nodes that are gone, so a long-lived gateway's map stays the size of the cluster.
  void Prune(std::span<const NodeLoad> nodes) {
    std::map<std::string, double, std::less<>> kept;
    for (const NodeLoad& n : nodes) {
      if (auto it = current_.find(n.id); it != current_.end()) {
        kept.emplace(it->first, it->second);
      }
    }
    current_ = std::move(kept);
  }

  std::map<std::string, double, std::less<>> current_;  // by node id
};

// Fewest invocations in flight per unit of capacity.
class LeastConnections final : public Balancer {
 public:
  std::string_view Name() const override { return "least-connections"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    return ArgMin(nodes, next_++, InFlightPerWeight);
  }

 private:
  uint64_t next_ = 0;
};

// Lowest EWMA response time; an unmeasured node (0) comes first, so it gets measured. Ties by
// in-flight per capacity. All picks go to one node until its EWMA rises: that herd is what
// this balancer is known for, and why it is here only for comparison.
class LeastResponseTime final : public Balancer {
 public:
  std::string_view Name() const override { return "least-response-time"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    return ArgMin(nodes, next_++, [](const NodeLoad& n) {
      return std::pair<double, double>(n.ewma_ms, InFlightPerWeight(n));
    });
  }

 private:
  uint64_t next_ = 0;
};

// Power of two choices (Mitzenmacher): two distinct nodes at random, the less loaded per unit
// of capacity wins. Random from a seeded SplitMix64, so a run can be replayed.
class PowerOfTwo final : public Balancer {
 public:
  explicit PowerOfTwo(uint64_t seed) : state_(seed) {}
  std::string_view Name() const override { return "p2c"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    FAAS_CHECK(!nodes.empty());
    const uint64_t n = nodes.size();
    if (n == 1) {
      return 0;
    }
    const auto a = static_cast<std::size_t>(Next() % n);
    auto b = static_cast<std::size_t>(Next() % (n - 1));
    if (b >= a) {
      ++b;  // distinct from a, uniform over the others
    }
    return InFlightPerWeight(nodes[b]) < InFlightPerWeight(nodes[a]) ? b : a;
  }

 private:
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return internal::Mix64(state_);
  }
  uint64_t state_;
};

// The node's own busy share from its health reply; in flight per capacity where it is unknown.
class Resource final : public Balancer {
 public:
  std::string_view Name() const override { return "resource"; }
  std::size_t Pick(std::string_view, std::span<const NodeLoad> nodes) override {
    return ArgMin(nodes, next_++, [](const NodeLoad& n) {
      return n.reported_load >= 0 ? n.reported_load : InFlightPerWeight(n);
    });
  }

 private:
  uint64_t next_ = 0;
};

}  // namespace

faas::Result<std::unique_ptr<Balancer>> MakeBalancer(std::string_view name, uint64_t seed) {
  std::unique_ptr<Balancer> b;
  if (name == "bounded-hash") {
    b = MakeBoundedHash(BoundedHashOptions{});
  } else if (name == "round-robin") {
    b = std::make_unique<RoundRobin>();
  } else if (name == "weighted-round-robin") {
    b = std::make_unique<WeightedRoundRobin>();
  } else if (name == "least-connections") {
    b = std::make_unique<LeastConnections>();
  } else if (name == "least-response-time") {
    b = std::make_unique<LeastResponseTime>();
  } else if (name == "p2c") {
    b = std::make_unique<PowerOfTwo>(seed);
  } else if (name == "resource") {
    b = std::make_unique<Resource>();
  } else {
    std::string names;
    for (std::string_view n : kNames) {
      names += names.empty() ? "" : ", ";
      names += n;
    }
    return faas::InvalidArgumentError("unknown balancer \"" + std::string(name) +
                                      "\": use one of " + names);
  }
  return b;
}

std::vector<std::string> BalancerNames() {
  return {std::begin(kNames), std::end(kNames)};
}

}  // namespace faas::cluster
