// Prices and costs. Money is integer micro-units of `unit`, never floating point
// (docs/metering.md).
//
//   Prices p{.per_cpu_ms_micros = 2, .per_request_micros = 20};
//   int64_t cost = Cost(p, BilledMillis(cpu), /*memory_mb=*/256, /*is_request=*/true);
#pragma once

#include <cstdint>
#include <string>

namespace faas::metering {

struct Prices {
  int64_t per_cpu_ms_micros = 1;   // per billed CPU millisecond, per 128 MiB memory tier
  int64_t per_request_micros = 0;  // per invocation
  std::string unit = "micro-credits";
};

// Memory tier: each started 128 MiB of the function's memory (128 MiB = 1, 129 MiB = 2).
inline int64_t MemoryTier(uint64_t memory_mb) {
  return static_cast<int64_t>((memory_mb + 127) / 128);
}

// billed_ms x per_cpu_ms x tier (+ per_request for an invocation; background CPU is not one).
inline int64_t Cost(const Prices& p, uint64_t billed_ms, uint64_t memory_mb, bool is_request) {
  return static_cast<int64_t>(billed_ms) * p.per_cpu_ms_micros * MemoryTier(memory_mb) +
         (is_request ? p.per_request_micros : 0);
}

}  // namespace faas::metering
