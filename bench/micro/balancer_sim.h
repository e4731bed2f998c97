// A discrete-event simulation of G gateways balancing over N nodes, for the figures of
// docs/design/0017-balancing.md (CLUSTER.md §7): which balancer keeps function calls warm.
//
//   faas::cluster::sim::Config config;          // 200 functions, Zipf(1.0), 4 nodes, pools of 40
//   faas::cluster::sim::Report r = faas::cluster::sim::Run(config, "bounded-hash");
//
// The model, deliberately small:
// - `functions` function versions, called with Zipf(`zipf_s`) popularity (rank 1 the hottest).
// - Each node has `slots` x capacity instance slots and a warm pool that holds the `pool` most
//   recently used function versions (LRU). A call to a function in the pool is a warm hit;
//   otherwise it is a cold start, and the function enters the pool (evicting the LRU one).
// - Closed loop: `clients` callers, each sends its next call as soon as the last one returns.
//   A call takes Exp(exec_ms) x max(1, in_flight/slots) (a busy node slows down), plus
//   `cold_ms` when cold.
// - `gateways` gateways, each with its own balancer and its own calls in flight; client c calls
//   through gateway c % gateways. A balancer sees what its gateway sees: its own in flight per
//   node (exact), the node's reported busy share of everyone's calls (sampled every
//   `report_ms`, so stale), with `others` >= 0 its estimate of everyone else's load from the
//   reports (others_load), and an EWMA of the response times it saw (alpha 0.3).
// - After `warmup_calls` and `calls` measured calls, the last node leaves; `churn_calls` later a
//   new, cold node joins; the cold starts in the `churn_calls` after each change are counted.
// Single-threaded, deterministic for a seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "faas/cluster/balancer.h"

namespace faas::cluster::sim {

struct Config {
  int functions = 200;
  double zipf_s = 1.0;
  int nodes = 4;
  int pool = 40;  // function versions warm per node: 4 x 40 < 200, no node holds all
  double slots = 16;
  std::vector<double> capacity;  // per node; empty: all 1 (the node that joins gets 1)
  int clients = 48;              // 75% of 4 x 16 slots
  double exec_ms = 10;
  double cold_ms = 10;
  double report_ms = 250;  // 0: nodes never report their load
  int gateways = 1;
  // What a gateway takes as everyone else's load on a node (NodeLoad::others_load): -1, nothing
  // (bounded-hash's first rule: our calls and the blend with the report); 0, the sample at the
  // last report (report - our calls then); 1, an EWMA (alpha 0.3) of those samples, as
  // HealthChecker does; 2, the average over the last report interval (were the node to report
  // its time-averaged load and the gateway to take out its own time-averaged calls).
  int others = 1;
  int warmup_calls = 20000;
  int calls = 100000;
  int churn_calls = 20000;
  uint64_t seed = 1;
};

struct Report {
  double hit_ratio = 0;          // warm hits / measured calls
  double calls_max_mean = 0;     // max over nodes of calls per capacity, over the mean
  double inflight_max_mean = 0;  // max/mean in flight per capacity, averaged over the picks
  int moved_on_leave = -1;       // function versions whose idle home changed; -1: no homes
  int moved_on_join = -1;
  int cold_after_leave = 0;  // cold starts in the churn_calls after the leave
  int cold_after_join = 0;
};

namespace internal {

class Rng {  // SplitMix64: fast, and the same on every machine
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double Exp(double mean) { return -std::log(Uniform()) * mean; }

 private:
  uint64_t s_;
};

struct Node {
  std::string id;
  double capacity = 1;
  bool up = true;
  uint32_t in_flight = 0;  // everyone's
  double reported = -1;
  double area = 0;  // integral of in_flight over time since the last report
  int64_t calls = 0;
  std::vector<int64_t> last_use;  // per function; 0: not in the pool
  int pooled = 0;
};

struct Gateway {
  std::unique_ptr<Balancer> balancer;
  std::vector<uint32_t> in_flight;  // per node, this gateway's calls
  std::vector<double> others;       // the others' load as this gateway estimates it; < 0 unknown
  std::vector<double> area;         // integral of in_flight over time since the last report
  std::vector<double> ewma_ms;
};

}  // namespace internal

// `make` makes one gateway's balancer; `has_homes`: picks at zero load have no state (idle homes
// and keys moved are counted).
inline Report Run(const Config& cfg, const std::function<std::unique_ptr<Balancer>()>& make,
                  bool has_homes) {
  using internal::Node;
  std::vector<internal::Gateway> gateways(static_cast<std::size_t>(std::max(1, cfg.gateways)));
  for (internal::Gateway& g : gateways) {
    g.balancer = make();
    if (g.balancer == nullptr) {
      return {};
    }
  }
  internal::Rng rng(cfg.seed);
  std::vector<double> cdf(static_cast<std::size_t>(cfg.functions));
  double sum = 0;
  for (int f = 0; f < cfg.functions; ++f) {
    sum += 1 / std::pow(f + 1, cfg.zipf_s);
    cdf[static_cast<std::size_t>(f)] = sum;
  }
  std::vector<std::string> keys;
  keys.reserve(static_cast<std::size_t>(cfg.functions));
  for (int f = 0; f < cfg.functions; ++f) {
    keys.push_back("fn-" + std::to_string(f) + "@1");
  }
  std::vector<Node> nodes;
  auto add_node = [&](double capacity) {
    Node n;
    n.id = "node-" + std::to_string(nodes.size());
    n.capacity = capacity;
    n.last_use.assign(keys.size(), 0);
    nodes.push_back(std::move(n));
    for (internal::Gateway& g : gateways) {
      g.in_flight.push_back(0);
      g.others.push_back(-1);
      g.area.push_back(0);
      g.ewma_ms.push_back(0);
    }
  };
  for (int i = 0; i < cfg.nodes; ++i) {
    add_node(i < static_cast<int>(cfg.capacity.size()) ? cfg.capacity[static_cast<size_t>(i)] : 1);
  }

  std::vector<NodeLoad> view;
  std::vector<std::size_t> view_node;  // view index -> nodes index
  auto make_view = [&](const internal::Gateway& g, bool idle) {
    view.clear();
    view_node.clear();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const Node& n = nodes[i];
      if (n.up) {
        view.push_back({.id = n.id,
                        .capacity = n.capacity * cfg.slots,
                        .in_flight = idle ? 0 : g.in_flight[i],
                        .reported_load = idle ? -1 : n.reported,
                        .others_load = idle || cfg.others < 0 ? -1 : g.others[i],
                        .ewma_ms = idle ? 0 : g.ewma_ms[i]});
        view_node.push_back(i);
      }
    }
  };
  auto homes = [&] {
    make_view(gateways[0], true);
    std::vector<std::string> h;
    h.reserve(keys.size());
    for (const std::string& k : keys) {
      h.emplace_back(view[gateways[0].balancer->Pick(k, view)].id);
    }
    return h;
  };
  auto moved = [&](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    int m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      m += a[i] != b[i] ? 1 : 0;
    }
    return m;
  };
  struct Done {
    double at_ms;
    std::size_t node;
    double took_ms;
    std::size_t gateway;
    bool operator>(const Done& o) const { return at_ms > o.at_ms; }
  };
  std::priority_queue<Done, std::vector<Done>, std::greater<>> running;
  double now = 0;
  double next_report = 0;
  int64_t stamp = 0;
  int64_t issued = 0;
  int64_t hits = 0;
  int64_t cold = 0;
  double inflight_ratio_sum = 0;

  double last_event = 0;
  auto integrate = [&] {  // the areas under every in-flight count, up to now
    const double dt = now - last_event;
    last_event = now;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      nodes[i].area += nodes[i].in_flight * dt;
      for (internal::Gateway& g : gateways) {
        g.area[i] += g.in_flight[i] * dt;
      }
    }
  };
  double last_report = 0;
  auto dispatch = [&](std::size_t gi) {
    if (cfg.report_ms > 0 && now >= next_report) {
      const double span = now - last_report;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        Node& n = nodes[i];
        n.reported = n.in_flight / (n.capacity * cfg.slots);
        for (internal::Gateway& g : gateways) {
          const double sample = n.in_flight - static_cast<double>(g.in_flight[i]);
          if (cfg.others == 0) {
            g.others[i] = sample;
          } else if (cfg.others == 1) {
            g.others[i] = g.others[i] < 0 ? sample : 0.7 * g.others[i] + 0.3 * sample;
          } else if (cfg.others == 2 && span > 0) {
            g.others[i] = std::max(0.0, (n.area - g.area[i]) / span);
          }
          g.area[i] = 0;
        }
        n.area = 0;
      }
      last_report = now;
      next_report = now + cfg.report_ms;
    }
    internal::Gateway& gw = gateways[gi];
    const double u = rng.Uniform() * sum;
    const auto f =
        static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    make_view(gw, false);
    const std::size_t ni = view_node[gw.balancer->Pick(keys[f], view)];
    Node& n = nodes[ni];
    const bool warm = n.last_use[f] != 0;
    if (!warm) {
      ++cold;
      if (n.pooled == cfg.pool) {  // evict the least recently used
        std::size_t lru = 0;
        for (std::size_t g = 0; g < keys.size(); ++g) {
          if (n.last_use[g] != 0 && (n.last_use[lru] == 0 || n.last_use[g] < n.last_use[lru])) {
            lru = g;
          }
        }
        n.last_use[lru] = 0;
        --n.pooled;
      }
      ++n.pooled;
    }
    hits += warm ? 1 : 0;
    n.last_use[f] = ++stamp;
    ++n.in_flight;
    ++gw.in_flight[ni];
    ++n.calls;
    ++issued;
    double max_ratio = 0;
    double total_ratio = 0;
    double total_capacity = 0;
    for (const Node& m : nodes) {
      if (m.up) {
        max_ratio = std::max(max_ratio, m.in_flight / m.capacity);
        total_ratio += m.in_flight;
        total_capacity += m.capacity;
      }
    }
    inflight_ratio_sum += max_ratio / (total_ratio / total_capacity);
    const double slowdown = std::max(1.0, n.in_flight / (n.capacity * cfg.slots));
    const double took = rng.Exp(cfg.exec_ms) * slowdown + (warm ? 0 : cfg.cold_ms);
    running.push({now + took, ni, took, gi});
  };
  // Runs until `count` more calls were issued.
  auto run = [&](int64_t count) {
    const int64_t until = issued + count;
    while (issued < until) {
      const Done d = running.top();
      running.pop();
      now = d.at_ms;
      integrate();
      --nodes[d.node].in_flight;
      internal::Gateway& g = gateways[d.gateway];
      --g.in_flight[d.node];
      double& ewma = g.ewma_ms[d.node];
      ewma = ewma == 0 ? d.took_ms : 0.7 * ewma + 0.3 * d.took_ms;
      dispatch(d.gateway);  // the same client calls again, through the same gateway
    }
  };
  auto reset_counts = [&] {
    hits = cold = 0;
    inflight_ratio_sum = 0;
    for (Node& n : nodes) {
      n.calls = 0;
    }
  };

  for (int c = 0; c < cfg.clients; ++c) {
    dispatch(static_cast<std::size_t>(c) % gateways.size());
  }
  run(cfg.warmup_calls);
  reset_counts();
  const int64_t start = issued;
  run(cfg.calls);
  Report r;
  const double measured = static_cast<double>(issued - start);
  r.hit_ratio = static_cast<double>(hits) / measured;
  r.inflight_max_mean = inflight_ratio_sum / measured;
  double max_share = 0;
  double total_capacity = 0;
  for (const Node& n : nodes) {
    max_share = std::max(max_share, static_cast<double>(n.calls) / n.capacity);
    total_capacity += n.capacity;
  }
  r.calls_max_mean = max_share / (measured / total_capacity);

  // Homes are computed with idle loads, outside the run, and only where picks have no state.
  std::vector<std::string> before = has_homes ? homes() : std::vector<std::string>{};
  nodes.back().up = false;  // leaves; its calls in flight still finish
  std::vector<std::string> after = has_homes ? homes() : std::vector<std::string>{};
  r.moved_on_leave = has_homes ? moved(before, after) : -1;
  reset_counts();
  run(cfg.churn_calls);
  r.cold_after_leave = static_cast<int>(cold);
  add_node(1);  // a new node, with an empty pool
  before = std::move(after);
  after = has_homes ? homes() : std::vector<std::string>{};
  r.moved_on_join = has_homes ? moved(before, after) : -1;
  reset_counts();
  run(cfg.churn_calls);
  r.cold_after_join = static_cast<int>(cold);
  return r;
}

// A balancer by name (MakeBalancer, default options); bounded-hash has idle homes.
inline Report Run(const Config& cfg, std::string_view balancer_name) {
  return Run(
      cfg,
      [&]() -> std::unique_ptr<Balancer> {
        auto made = MakeBalancer(balancer_name, cfg.seed);
        return made.ok() ? std::move(made).value() : nullptr;
      },
      balancer_name == "bounded-hash");
}

}  // namespace faas::cluster::sim
