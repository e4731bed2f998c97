// The report of `faasctl bench` (private to cli/): percentiles per phase against the baseline of
// a bare fork, as text with a histogram of the server-side time, or as JSON. Pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/base/status.h"
#include "faas/cli/command.h"

namespace faas::cli {

struct BenchSamples {
  // Milliseconds per phase: faasd's timings ("queue", "spawn", "load", "init", "cold", "exec"),
  // "server" (their sum) and "end-to-end" (seen by the client). At least one "server" sample.
  std::map<std::string, std::vector<double>> phases;
  std::vector<double> fork_ms;  // the baseline
};

std::string RenderBench(const BenchSamples& samples);
// Runs faas-fork-baseline (installed beside faasctl): `count` forks of a small separate
// process, each after `pause`. Milliseconds each; Internal when the helper is missing or fails.
Result<std::vector<double>> ForkBaseline(std::chrono::milliseconds pause, uint32_t count);
nlohmann::json BenchToJson(const BenchCommand& cmd, const BenchSamples& samples);

}  // namespace faas::cli
