// Prints, for every balancer, the warm-hit ratio, load spread and churn cost of the simulation
// in balancer_sim.h (docs/design/0017-balancing.md has the figures and the command).
//
//   faas_balancer_sim [--nodes N] [--pool K] [--clients C] [--calls M] [--seed S] [--report-ms MS]
//   [--gateways G] [--weighted]
//
// --weighted gives every second node capacity 2. First a table of bounded-hash's rules side by
// side (the first rule, then the gateways' own share taken out of the reports, then floors under
// the cap), then every balancer with its defaults. Not a timed benchmark: figures are counts.
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
               "[--seed S] [--report-ms MS] [--gateways G] [--weighted]\n");
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
    } else if (arg == "--gateways") {
      cfg.gateways = static_cast<int>(v);
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
      "clients, closed loop, through %d gateway(s); reports every %.0f ms; %d measured calls, %d "
      "after each churn; seed %llu\n\n",
      cfg.functions, cfg.zipf_s, cfg.nodes, cfg.slots, weighted ? " (every 2nd node x2)" : "",
      cfg.pool, cfg.clients, cfg.gateways, cfg.report_ms, cfg.calls, cfg.churn_calls,
      static_cast<unsigned long long>(cfg.seed));
  double rr_misses = 0;
  if (auto rr = sim::Run(cfg, "round-robin"); rr.hit_ratio > 0) {
    rr_misses = 1 - rr.hit_ratio;
  }
  auto header = [](const char* first) {
    std::printf("%-28s %8s %9s %9s %9s %12s %12s\n", first, "warm-hit", "misses", "calls",
                "in-flight", "leave: moved", "join: moved");
    std::printf("%-28s %8s %9s %9s %9s %12s %12s\n", "", "", "vs RR", "max/mean", "max/mean",
                "/ cold", "/ cold");
  };
  auto row = [&](const std::string& name, const sim::Report& r) {
    auto moved = [](int m) { return m < 0 ? std::string("-") : std::to_string(m); };
    std::printf("%-28s %8.4f %9.2f %9.2f %9.2f %6s/%5d %6s/%5d\n", name.c_str(), r.hit_ratio,
                (1 - r.hit_ratio) / rr_misses, r.calls_max_mean, r.inflight_max_mean,
                moved(r.moved_on_leave).c_str(), r.cold_after_leave, moved(r.moved_on_join).c_str(),
                r.cold_after_join);
  };

  // bounded-hash's rules in one run (docs/design/0017-balancing.md).
  header("bounded-hash rule");
  struct Rule {
    const char* name;
    int others;  // Config::others
    double floor;
  };
  for (const Rule& rule :
       {Rule{"first: own cap + blend", -1, 0}, Rule{"others = last report - ours", 0, 0},
        Rule{"others = EWMA of those", 1, 0}, Rule{"others = interval average", 2, 0},
        Rule{"EWMA + floor 0.5 x capacity", 1, 0.5}, Rule{"EWMA + floor 1 x capacity", 1, 1}}) {
    sim::Config c = cfg;
    c.others = rule.others;
    row(rule.name,
        sim::Run(
            c,
            [&] {
              return faas::cluster::MakeBoundedHash({.load_factor = 1.25, .floor = rule.floor});
            },
            true));
  }
  std::printf("\n");
  header("balancer (defaults)");
  for (const std::string& name : faas::cluster::BalancerNames()) {
    row(name, sim::Run(cfg, name));
  }
  return 0;
}
