// Prints, for every balancer, the warm-hit ratio, load spread and churn cost of the simulation
// in balancer_sim.h (docs/design/0017-balancing.md has the figures and the command).
//
//   faas_balancer_sim [--nodes N] [--pool K] [--clients C] [--calls M] [--seed S] [--report-ms MS]
//   [--weighted]
//
// --weighted gives every second node capacity 2. Not a timed benchmark: figures are counts.
#include "balancer_sim.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "faas/cluster/balancer.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: faas_balancer_sim [--nodes N] [--pool K] [--clients C] [--calls M] "
               "[--seed S] [--report-ms MS] [--weighted]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  namespace sim = faas::cluster::sim;
  sim::Config cfg;
  bool weighted = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--weighted") {
      weighted = true;
      continue;
    }
    if (i + 1 >= argc) {
      return Usage();
    }
    const long v = std::strtol(argv[++i], nullptr, 10);
    if (v < 0 || (v == 0 && arg != "--report-ms")) {
      return Usage();
    }
    if (arg == "--nodes") {
      cfg.nodes = static_cast<int>(v);
    } else if (arg == "--pool") {
      cfg.pool = static_cast<int>(v);
    } else if (arg == "--clients") {
      cfg.clients = static_cast<int>(v);
    } else if (arg == "--calls") {
      cfg.calls = static_cast<int>(v);
    } else if (arg == "--report-ms") {
      cfg.report_ms = static_cast<double>(v);
    } else if (arg == "--seed") {
      cfg.seed = static_cast<uint64_t>(v);
    } else {
      return Usage();
    }
  }
  for (int i = 0; weighted && i < cfg.nodes; ++i) {
    cfg.capacity.push_back(i % 2 == 1 ? 2 : 1);
  }
  std::printf(
      "%d functions, Zipf(%.1f); %d nodes x %.0f slots%s, warm pool %d versions each; %d "
      "clients, closed loop; %d measured calls, %d after each churn; seed %llu\n\n",
      cfg.functions, cfg.zipf_s, cfg.nodes, cfg.slots, weighted ? " (every 2nd node x2)" : "",
      cfg.pool, cfg.clients, cfg.calls, cfg.churn_calls, static_cast<unsigned long long>(cfg.seed));
  std::printf("%-21s %8s %9s %9s %9s %12s %12s\n", "balancer", "warm-hit", "misses", "calls",
              "in-flight", "leave: moved", "join: moved");
  std::printf("%-21s %8s %9s %9s %9s %12s %12s\n", "", "", "vs RR", "max/mean", "max/mean",
              "/ cold", "/ cold");
  double rr_misses = 0;
  if (auto rr = sim::Run(cfg, "round-robin"); rr.hit_ratio > 0) {
    rr_misses = 1 - rr.hit_ratio;
  }
  for (const std::string& name : faas::cluster::BalancerNames()) {
    const sim::Report r = sim::Run(cfg, name);
    auto moved = [](int m) { return m < 0 ? std::string("-") : std::to_string(m); };
    std::printf("%-21s %8.4f %9.2f %9.2f %9.2f %6s/%5d %6s/%5d\n", name.c_str(), r.hit_ratio,
                (1 - r.hit_ratio) / rr_misses, r.calls_max_mean, r.inflight_max_mean,
                moved(r.moved_on_leave).c_str(), r.cold_after_leave, moved(r.moved_on_join).c_str(),
                r.cold_after_join);
  }
  return 0;
}
