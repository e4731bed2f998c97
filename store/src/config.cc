#include "faas/store/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/base/text.h"
#include "faas/base/time.h"

namespace faas::store {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kNamePattern = "[a-z][a-z0-9-]{0,62}";
constexpr std::size_t kMaxNameLength = 63;
constexpr uint64_t kMinMemoryMb = 16;
constexpr uint64_t kMaxMemoryMb = 8192;
constexpr milliseconds kMinTimeout{1};
constexpr milliseconds kMaxTimeout = std::chrono::minutes(15);
constexpr milliseconds kMinIdleTtl = std::chrono::seconds(1);
constexpr milliseconds kMaxIdleTtl = std::chrono::hours(24);
constexpr uint32_t kMaxInstances = 1000;
constexpr std::size_t kMaxEnvEntries = 64;
constexpr std::size_t kMaxEnvValueBytes = 4096;
constexpr uint64_t kMinBodyBytes = 1024;
constexpr uint64_t kMaxBodyBytes = uint64_t{6} << 20;  // worker frames carry at most 6 MiB of body

// A JSON string literal for `s`; never throws (invalid UTF-8 becomes U+FFFD).
std::string Quote(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    out += (out.empty() ? "" : "; ") + p;
  }
  return out;
}

bool IsEnvKey(std::string_view k) {
  if (k.empty() || (k[0] >= '0' && k[0] <= '9')) {
    return false;
  }
  for (char c : k) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

void CheckDuration(std::vector<std::string>& errs, std::string_view field, milliseconds v,
                   milliseconds lo, milliseconds hi) {
  if (v < lo) {
    errs.push_back(std::string(field) + ": " + FormatDuration(v) + " is below the " +
                   FormatDuration(lo) + " minimum");
  } else if (v > hi) {
    errs.push_back(std::string(field) + ": " + FormatDuration(v) + " is above the " +
                   FormatDuration(hi) + " maximum");
  }
}

// Reads JSON values into typed fields, collecting every type problem.
class FieldReader {
 public:
  explicit FieldReader(std::vector<std::string>& errs) : errs_(errs) {}

  void Uint(const Json& v, std::string_view key, uint64_t max, uint64_t& out) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
      errs_.push_back(std::string(key) + ": must be an integer from 0 to " + std::to_string(max) +
                      ", got " + (v.is_number() ? v.dump() : std::string(v.type_name())));
      return;
    }
    out = v.get<uint64_t>();
  }
  void Uint32(const Json& v, std::string_view key, uint32_t& out) {
    uint64_t wide = out;
    Uint(v, key, UINT32_MAX, wide);
    out = static_cast<uint32_t>(wide);  // Uint kept `wide` <= UINT32_MAX
  }
  void Millis(const Json& v, std::string_view key, milliseconds& out) {
    uint64_t ms = static_cast<uint64_t>(out.count() < 0 ? 0 : out.count());
    Uint(v, key, INT64_MAX, ms);
    out = milliseconds(static_cast<int64_t>(ms));
  }
  void String(const Json& v, std::string_view key, std::string& out) {
    if (!v.is_string()) {
      errs_.push_back(std::string(key) + ": must be a string");
      return;
    }
    out = v.get<std::string>();
  }
  void Bool(const Json& v, std::string_view key, bool& out) {
    if (!v.is_boolean()) {
      errs_.push_back(std::string(key) + ": must be true or false");
      return;
    }
    out = v.get<bool>();
  }
  void Env(const Json& v, std::map<std::string, std::string>& out) {
    if (!v.is_object()) {
      errs_.push_back("env: must be an object of strings");
      return;
    }
    out.clear();
    for (const auto& [k, val] : v.items()) {
      if (!val.is_string()) {
        errs_.push_back("env: value of " + Quote(k) + " must be a string");
        continue;
      }
      out[k] = val.get<std::string>();
    }
  }

 private:
  std::vector<std::string>& errs_;
};

}  // namespace

uint32_t EffectiveBurst(double rate_per_sec, uint32_t burst) {
  if (burst != 0) {
    return burst;
  }
  double b = std::ceil(rate_per_sec);
  return b < 1 ? 1 : static_cast<uint32_t>(std::min(b, 1e6));
}

faas::Status ValidateName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength && name[0] >= 'a' && name[0] <= 'z';
  for (std::size_t i = 1; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  }
  if (!ok) {
    return faas::InvalidArgumentError("name " + Quote(name) + " must match " +
                                      std::string(kNamePattern));
  }
  return faas::OkStatus();
}

faas::Status ValidateConfig(const FunctionConfig& c) {
  std::vector<std::string> errs;
  if (c.memory_mb < kMinMemoryMb) {
    errs.push_back("memory_mb: " + std::to_string(c.memory_mb) + " MiB is below the " +
                   std::to_string(kMinMemoryMb) + " MiB minimum");
  } else if (c.memory_mb > kMaxMemoryMb) {
    errs.push_back("memory_mb: " + std::to_string(c.memory_mb) + " MiB is above the " +
                   std::to_string(kMaxMemoryMb) + " MiB maximum");
  }
  CheckDuration(errs, "timeout", c.timeout, kMinTimeout, kMaxTimeout);
  if (c.cpu_limit.count() != 0) {
    CheckDuration(errs, "cpu_limit", c.cpu_limit, kMinTimeout, kMaxTimeout);
  }
  if (c.max_instances < 1 || c.max_instances > kMaxInstances) {
    errs.push_back("max_instances: " + std::to_string(c.max_instances) + " is outside 1.." +
                   std::to_string(kMaxInstances));
  }
  if (c.min_warm > c.max_instances) {
    errs.push_back("min_warm: " + std::to_string(c.min_warm) + " is above max_instances " +
                   std::to_string(c.max_instances));
  }
  CheckDuration(errs, "idle_ttl", c.idle_ttl, kMinIdleTtl, kMaxIdleTtl);
  if (c.queue_depth > 100'000) {
    errs.push_back("queue_depth: " + std::to_string(c.queue_depth) +
                   " is above the 100000 maximum");
  }
  if (c.queue_timeout.count() != 0) {
    CheckDuration(errs, "queue_timeout", c.queue_timeout, kMinTimeout, kMaxTimeout);
  }
  if (!(c.rate_per_sec >= 0 && c.rate_per_sec <= 1e6)) {  // also rejects NaN
    errs.push_back("rate_per_sec: " + std::to_string(c.rate_per_sec) + " is outside 0..1000000");
  }
  if (c.burst > 1'000'000) {
    errs.push_back("burst: " + std::to_string(c.burst) + " is above the 1000000 maximum");
  }
  if (c.isolation != "warm" && c.isolation != "fresh") {
    errs.push_back("isolation: " + Quote(c.isolation) + " must be \"warm\" or \"fresh\"");
  }
  if (c.network != "none" && c.network != "outbound") {
    errs.push_back("network: " + Quote(c.network) + " must be \"none\" or \"outbound\"");
  }
  if (c.env.size() > kMaxEnvEntries) {
    errs.push_back("env: " + std::to_string(c.env.size()) + " entries is above the " +
                   std::to_string(kMaxEnvEntries) + " maximum");
  }
  for (const auto& [key, value] : c.env) {
    if (!IsEnvKey(key)) {
      errs.push_back("env: key " + Quote(key) + " must match [A-Za-z_][A-Za-z0-9_]*");
    } else if (key.starts_with("FAAS_")) {
      errs.push_back("env: key " + Quote(key) + " must not start with FAAS_ (reserved)");
    } else if (key.starts_with("LD_") || key == "GLIBC_TUNABLES") {
      // Read by the dynamic loader and glibc at process start, where they choose code to run.
      // The worker applies env only inside its jail, but a loader variable has no legitimate
      // use there and is refused outright rather than silently ignored.
      errs.push_back("env: key " + Quote(key) +
                     " is a dynamic-loader variable and is refused (it would choose code the "
                     "worker loads)");
    }
    if (value.size() > kMaxEnvValueBytes) {
      errs.push_back("env: value of " + Quote(key) + " is " + std::to_string(value.size()) +
                     " bytes, above the " + std::to_string(kMaxEnvValueBytes) + "-byte maximum");
    } else if (value.find('\0') != std::string::npos) {
      errs.push_back("env: value of " + Quote(key) + " contains a NUL byte");
    } else if (!IsValidUtf8(value)) {
      errs.push_back("env: value of " + Quote(key) + " is not valid UTF-8");
    }
  }
  if (c.max_body_bytes < kMinBodyBytes || c.max_body_bytes > kMaxBodyBytes) {
    errs.push_back("max_body_bytes: " + std::to_string(c.max_body_bytes) + " is outside " +
                   std::to_string(kMinBodyBytes) + ".." + std::to_string(kMaxBodyBytes) +
                   " (1 KiB..32 MiB)");
  }
  if (!errs.empty()) {
    return faas::InvalidArgumentError(Join(errs));
  }
  return faas::OkStatus();
}

std::string ConfigToJson(const FunctionConfig& c) {
  Json j = {
      {"memory_mb", c.memory_mb},
      {"timeout_ms", c.timeout.count()},
      {"cpu_limit_ms", c.cpu_limit.count()},
      {"min_warm", c.min_warm},
      {"max_instances", c.max_instances},
      {"idle_ttl_ms", c.idle_ttl.count()},
      {"isolation", c.isolation},
      {"network", c.network},
      {"env", c.env},
      {"public", c.is_public},
      {"max_body_bytes", c.max_body_bytes},
      {"queue_depth", c.queue_depth},
      {"queue_timeout_ms", c.queue_timeout.count()},
      {"rate_per_sec", c.rate_per_sec},
      {"burst", c.burst},
  };
  if (c.idempotent) {  // absent when false: older configs keep their JSON and content hash
    j["idempotent"] = true;
  }
  // nlohmann::json objects are std::maps, so keys come out sorted.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

faas::Result<FunctionConfig> ConfigFromJson(std::string_view json) {
  Json j;
  try {
    j = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    return faas::InvalidArgumentError(std::string("config: invalid JSON: ") + e.what());
  }
  if (!j.is_object()) {
    return faas::InvalidArgumentError("config: must be a JSON object");
  }
  FunctionConfig c;
  std::vector<std::string> errs;
  FieldReader r(errs);
  for (const auto& [key, v] : j.items()) {
    if (key == "memory_mb") {
      r.Uint(v, key, UINT64_MAX, c.memory_mb);
    } else if (key == "timeout_ms") {
      r.Millis(v, key, c.timeout);
    } else if (key == "cpu_limit_ms") {
      r.Millis(v, key, c.cpu_limit);
    } else if (key == "min_warm") {
      r.Uint32(v, key, c.min_warm);
    } else if (key == "max_instances") {
      r.Uint32(v, key, c.max_instances);
    } else if (key == "idle_ttl_ms") {
      r.Millis(v, key, c.idle_ttl);
    } else if (key == "isolation") {
      r.String(v, key, c.isolation);
    } else if (key == "network") {
      r.String(v, key, c.network);
    } else if (key == "env") {
      r.Env(v, c.env);
    } else if (key == "public") {
      r.Bool(v, key, c.is_public);
    } else if (key == "max_body_bytes") {
      r.Uint(v, key, UINT64_MAX, c.max_body_bytes);
    } else if (key == "queue_depth") {
      r.Uint32(v, key, c.queue_depth);
    } else if (key == "queue_timeout_ms") {
      r.Millis(v, key, c.queue_timeout);
    } else if (key == "rate_per_sec") {
      if (v.is_number()) {
        c.rate_per_sec = v.get<double>();
      } else {
        errs.push_back("rate_per_sec: must be a number");
      }
    } else if (key == "burst") {
      r.Uint32(v, key, c.burst);
    } else if (key == "idempotent") {
      r.Bool(v, key, c.idempotent);
    } else {
      errs.push_back("config: unknown key " + Quote(key));
    }
  }
  if (!errs.empty()) {
    return faas::InvalidArgumentError(Join(errs));
  }
  return c;
}

}  // namespace faas::store
