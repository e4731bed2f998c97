#include "bench_report.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace faas::cli {
namespace {

// Percentile of a sample (nearest rank).
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(q * static_cast<double>(v.size()));
  return v[std::min(v.size() - 1, i)];
}

// The phases in the order they happen, then the totals.
constexpr const char* kPhaseOrder[] = {"queue", "spawn", "load",   "init",
                                       "cold",  "exec",  "server", "end-to-end"};

}  // namespace

nlohmann::json BenchToJson(const BenchCommand& cmd, const BenchSamples& samples) {
  const auto& fork_ms = samples.fork_ms;
  double base = Percentile(fork_ms, 0.5);
  nlohmann::json j = {
      {"function", cmd.name},
      {"mode", cmd.cold ? "cold-start" : "warm"},
      {"n", cmd.n},
      {"baseline_fork_ms",
       {{"p50", base}, {"p90", Percentile(fork_ms, 0.9)}, {"p99", Percentile(fork_ms, 0.99)}}}};
  for (const char* name : kPhaseOrder) {
    if (auto it = samples.phases.find(name); it != samples.phases.end()) {
      const auto& v = it->second;
      j["phases"][name] = {{"p50", Percentile(v, 0.5)},
                           {"p90", Percentile(v, 0.9)},
                           {"p99", Percentile(v, 0.99)},
                           {"ratio_p50_to_fork", Percentile(v, 0.5) / base}};
    }
  }
  return j;
}

std::string RenderBench(const BenchSamples& samples) {
  const auto& fork_ms = samples.fork_ms;
  double base = Percentile(fork_ms, 0.5);
  std::string out;
  char line[160];
  (void)std::snprintf(line, sizeof line, "%-12s %10s %10s %10s %10s\n", "phase (ms)", "p50", "p90",
                      "p99", "p50/fork");
  out += line;
  (void)std::snprintf(line, sizeof line, "%-12s %10.3f %10.3f %10.3f %9.1fx\n", "fork baseline",
                      base, Percentile(fork_ms, 0.9), Percentile(fork_ms, 0.99), 1.0);
  out += line;
  for (const char* name : kPhaseOrder) {
    auto it = samples.phases.find(name);
    if (it == samples.phases.end()) {
      continue;
    }
    const auto& v = it->second;
    (void)std::snprintf(line, sizeof line, "%-12s %10.3f %10.3f %10.3f %9.1fx\n", name,
                        Percentile(v, 0.5), Percentile(v, 0.9), Percentile(v, 0.99),
                        Percentile(v, 0.5) / base);
    out += line;
  }
  // A text histogram of the server-side time, 10 buckets between min and p99.
  const auto& server = samples.phases.at("server");
  double lo = *std::min_element(server.begin(), server.end());
  double hi = std::max(Percentile(server, 0.99), lo + 0.001);
  std::vector<std::size_t> buckets(10, 0);
  for (double v : server) {
    auto b = static_cast<std::size_t>((std::min(v, hi) - lo) / (hi - lo) * 9.999);
    ++buckets[std::min<std::size_t>(b, 9)];
  }
  std::size_t most = *std::max_element(buckets.begin(), buckets.end());
  out += "\nserver-side ms (n=" + std::to_string(server.size()) + ")\n";
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    (void)std::snprintf(
        line, sizeof line, "%9.3f | %-40s %zu\n", lo + (hi - lo) * static_cast<double>(b) / 10,
        std::string(most == 0 ? 0 : buckets[b] * 40 / most, '#').c_str(), buckets[b]);
    out += line;
  }
  return out;
}

}  // namespace faas::cli
