// The report of `faasctl bench` (private to cli/): percentiles per phase against the baseline of
// a bare fork, as text with a histogram of the server-side time, or as JSON. Pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/cli/command.h"

namespace faas::cli {

struct BenchSamples {
  // Milliseconds per phase: faasd's timings ("queue", "spawn", "load", "init", "cold", "exec"),
  // "server" (their sum) and "end-to-end" (seen by the client). At least one "server" sample.
  std::map<std::string, std::vector<double>> phases;
  std::vector<double> fork_ms;  // the baseline
};

std::string RenderBench(const BenchSamples& samples);
nlohmann::json BenchToJson(const BenchCommand& cmd, const BenchSamples& samples);

}  // namespace faas::cli
