// Function names and per-function configuration (docs/cli.md): defaults, bounds, and the
// canonical JSON form that is stored with each version and hashed into its content hash.
//
//   faas::store::FunctionConfig cfg;
//   cfg.memory_mb = 256;
//   FAAS_RETURN_IF_ERROR(faas::store::ValidateConfig(cfg));
//   std::string json = faas::store::ConfigToJson(cfg);  // {"cpu_limit_ms":0,"env":{},...}
//
// JSON keys (all optional on input; missing keys keep the defaults below): memory_mb,
// timeout_ms, cpu_limit_ms, min_warm, max_instances, idle_ttl_ms, isolation, network, env,
// public, max_body_bytes, queue_depth, queue_timeout_ms, rate_per_sec, burst, idempotent (written
// only when true, so configs from before it keep their JSON and content hash).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "faas/base/status.h"

namespace faas::store {

// Configuration of one function version. A plain value type; defaults are docs/cli.md's.
struct FunctionConfig {
  uint64_t memory_mb = 128;                     // 16..8192
  std::chrono::milliseconds timeout{10'000};    // wall clock, 1ms..15min
  std::chrono::milliseconds cpu_limit{0};       // CPU time; 0 = same as timeout, else 1ms..15min
  uint32_t min_warm = 0;                        // <= max_instances
  uint32_t max_instances = 16;                  // 1..1000
  std::chrono::milliseconds idle_ttl{300'000};  // 1s..24h
  std::string isolation = "warm";               // warm|fresh
  std::string network = "none";                 // none|outbound
  std::map<std::string, std::string> env;       // see ValidateConfig
  bool is_public = false;                       // invocable without an API key
  uint64_t max_body_bytes = uint64_t{6} << 20;  // request body limit, 1 KiB..6 MiB
  uint32_t queue_depth = 1000;                  // requests waiting for an instance, 0..100000
  std::chrono::milliseconds queue_timeout{0};   // longest wait; 0 = same as timeout
  double rate_per_sec = 0;                      // invocations/s over all callers; 0 = unlimited
  uint32_t burst = 0;                           // token bucket size; 0 = max(1, ceil(rate))
  // Safe to run twice: a sync call lost with its node is retried once on another node
  // (docs/design/0023-shared-limits-and-retries.md).
  bool idempotent = false;

  bool operator==(const FunctionConfig&) const = default;
};

// The effective CPU limit: cpu_limit, or timeout when cpu_limit is 0.
inline std::chrono::milliseconds EffectiveCpuLimit(const FunctionConfig& c) {
  return c.cpu_limit.count() == 0 ? c.timeout : c.cpu_limit;
}

// The token-bucket size for `rate_per_sec` when `burst` is 0 (unset): the rate per second
// rounded up, at least 1, at most 1e6; else `burst`. One rule for functions, keys and the
// gateway's limiter.
uint32_t EffectiveBurst(double rate_per_sec, uint32_t burst);
inline uint32_t EffectiveBurst(const FunctionConfig& c) {
  return EffectiveBurst(c.rate_per_sec, c.burst);
}

// The effective longest wait for a free instance: queue_timeout, or timeout when it is 0.
inline std::chrono::milliseconds EffectiveQueueTimeout(const FunctionConfig& c) {
  return c.queue_timeout.count() == 0 ? c.timeout : c.queue_timeout;
}

// OK if `name` matches [a-z][a-z0-9-]{0,62}; else InvalidArgument quoting the value and the
// pattern: `name "Foo" must match [a-z][a-z0-9-]{0,62}`. Thread-safe.
faas::Status ValidateName(std::string_view name);

// Checks every field against its bounds and reports ALL problems in one InvalidArgument,
// joined with "; ", each naming the field, the value and the bound
// ("memory_mb: 4 MiB is below the 16 MiB minimum; timeout: 20m is above the 15m maximum").
// env: at most 64 entries; keys match [A-Za-z_][A-Za-z0-9_]* and do not start with FAAS_;
// values are valid UTF-8 without NUL, at most 4096 bytes. Thread-safe.
faas::Status ValidateConfig(const FunctionConfig& c);

// Canonical JSON: every key present, keys sorted, no whitespace. Equal configs give equal
// strings, so it is part of a version's content hash. Never fails (invalid UTF-8, which
// ValidateConfig rejects, is replaced by U+FFFD). Thread-safe.
std::string ConfigToJson(const FunctionConfig& c);

// Parses a JSON object with the keys above; missing keys keep their defaults. Errors:
// InvalidArgument for malformed JSON, a non-object, unknown keys or wrongly typed values (all
// type problems reported at once). Does not check bounds: call ValidateConfig. Thread-safe.
faas::Result<FunctionConfig> ConfigFromJson(std::string_view json);

}  // namespace faas::store
