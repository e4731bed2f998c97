// Trigger definitions: validation, defaults, JSON, and the retry backoff.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/redis/client.h"
#include "faas/triggers/triggers.h"

#include "trigger.h"

namespace faas::triggers {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr uint32_t kMaxBatch = 1000;        // one XREADGROUP COUNT / Lease; more buys nothing
constexpr uint32_t kMaxConcurrency = 1024;  // one thread each
constexpr uint32_t kMaxAttempts = 100;
constexpr std::size_t kMaxQueueNameBytes = 200;  // store::Queue's limit
constexpr milliseconds kMinBackoff{1};
constexpr milliseconds kMaxBackoff{std::chrono::hours(1)};
// The default function timeout (docs/cli.md: 10 s) plus 30 s, for callers that did not fill it.
constexpr milliseconds kDefaultVisibility{40'000};
// Below this, XAUTOCLAIM/lease expiry would fight with ordinary deliveries.
constexpr milliseconds kMinVisibility{100};
constexpr milliseconds kMaxVisibility{std::chrono::hours(24)};

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  return name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string_view::npos;
}

// `"value"` for messages; long values are cut.
std::string Quoted(std::string_view v) {
  constexpr std::size_t kShown = 80;
  std::string out = "\"";
  out.append(v.substr(0, kShown));
  if (v.size() > kShown) {
    out += "…";
  }
  out += '"';
  return out;
}

class Problems {
 public:
  void Add(std::string_view field, std::string_view value, std::string_view why) {
    items_.push_back(std::string(field) + " " + Quoted(value) + " " + std::string(why));
  }
  void Add(std::string_view field, uint64_t value, std::string_view why) {
    items_.push_back(std::string(field) + " " + std::to_string(value) + " " + std::string(why));
  }
  void AddDuration(std::string_view field, milliseconds value, std::string_view why) {
    items_.push_back(std::string(field) + " " + FormatDuration(value) + " " + std::string(why));
  }
  Status ToStatus(std::string_view what) const {
    if (items_.empty()) {
      return OkStatus();
    }
    std::string msg(what);
    msg += ": ";
    for (std::size_t i = 0; i < items_.size(); ++i) {
      msg += (i == 0 ? "" : "; ") + items_[i];
    }
    return InvalidArgumentError(std::move(msg));
  }

 private:
  std::vector<std::string> items_;
};

void CheckRange(Problems& p, std::string_view field, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi) {
    p.Add(field, v, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
  }
}

}  // namespace

Status NormalizeSpec(TriggerSpec& spec) {
  Problems p;
  constexpr std::string_view kNamePattern = "must match [a-z][a-z0-9-]{0,62}";
  if (!IsValidName(spec.name)) {
    p.Add("name", spec.name, kNamePattern);
  }
  if (!IsValidName(spec.function)) {
    p.Add("function", spec.function, kNamePattern);
  }
  std::string_view origin;  // the stream or queue the DLQ default derives from
  if (spec.source == "embedded") {
    if (spec.queue.empty()) {
      p.Add("source", spec.source, "needs a queue");
    } else if (spec.queue.size() > kMaxQueueNameBytes) {
      p.Add("queue", spec.queue, "must be at most 200 bytes");
    }
    if (!spec.stream.empty()) {
      p.Add("stream", spec.stream, "is only for a redis:// source");
    }
    if (!spec.group.empty()) {
      p.Add("group", spec.group, "is only for a redis:// source");
    }
    origin = spec.queue;
  } else {
    redis::RedisAddress addr;
    if (std::string why = redis::RedisUrlProblem(spec.source, addr); !why.empty()) {
      p.Add("source", spec.source, why);
    }
    if (spec.stream.empty()) {
      p.Add("source", spec.source, "needs a stream");
    }
    if (!spec.queue.empty()) {
      p.Add("queue", spec.queue, "is only for source embedded");
    }
    if (spec.group.empty() && IsValidName(spec.name)) {
      spec.group = "faas-" + spec.name;
    }
    origin = spec.stream;
  }
  CheckRange(p, "batch", spec.batch, 1, kMaxBatch);
  CheckRange(p, "concurrency", spec.concurrency, 1, kMaxConcurrency);
  CheckRange(p, "max_attempts", spec.max_attempts, 1, kMaxAttempts);
  if (spec.backoff_min < kMinBackoff || spec.backoff_min > kMaxBackoff) {
    p.AddDuration("backoff minimum", spec.backoff_min, "must be 1ms..1h");
  }
  if (spec.backoff_max < kMinBackoff || spec.backoff_max > kMaxBackoff) {
    p.AddDuration("backoff maximum", spec.backoff_max, "must be 1ms..1h");
  }
  if (spec.backoff_min > spec.backoff_max) {
    p.AddDuration("backoff minimum", spec.backoff_min,
                  "is above the maximum " + FormatDuration(spec.backoff_max));
  }
  if (spec.visibility_timeout.count() == 0) {
    spec.visibility_timeout = kDefaultVisibility;
  }
  if (spec.visibility_timeout < kMinVisibility || spec.visibility_timeout > kMaxVisibility) {
    p.AddDuration("visibility_timeout", spec.visibility_timeout, "must be 100ms..24h");
  }
  if (spec.source != "embedded" && spec.visibility_timeout <= spec.backoff_max) {
    // A Redis retry waits out its backoff pending on this consumer; past the visibility
    // timeout another consumer would reclaim it and both would deliver it.
    p.AddDuration("visibility_timeout", spec.visibility_timeout,
                  "must exceed the backoff maximum " + FormatDuration(spec.backoff_max) +
                      " for a redis source");
  }
  if (spec.dlq.empty() && !origin.empty()) {
    spec.dlq = std::string(origin) + ".dlq";
  }
  if (!origin.empty() && spec.dlq == origin) {
    p.Add("dlq", spec.dlq, "must differ from the queue it collects from");
  }
  if (spec.source == "embedded" && spec.dlq.size() > kMaxQueueNameBytes) {
    p.Add("dlq", spec.dlq, "must be at most 200 bytes");
  }
  return p.ToStatus("invalid trigger");
}

std::string SpecToJson(const TriggerSpec& spec) {
  Json j = {
      {"name", spec.name},
      {"function", spec.function},
      {"source", spec.source},
      {"stream", spec.stream},
      {"group", spec.group},
      {"queue", spec.queue},
      {"batch", spec.batch},
      {"concurrency", spec.concurrency},
      {"max_attempts", spec.max_attempts},
      {"backoff_min_ms", spec.backoff_min.count()},
      {"backoff_max_ms", spec.backoff_max.count()},
      {"dlq", spec.dlq},
      {"visibility_timeout_ms", spec.visibility_timeout.count()},
      {"paused", spec.paused},
  };
  // Names are user input: replace invalid UTF-8 rather than throw (validation rejects them
  // anyway, but this function must not throw).
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<TriggerSpec> SpecFromJson(std::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("trigger definition is not a JSON object");
  }
  TriggerSpec s;
  Problems p;
  // Absent keys keep the defaults (definitions written by older versions); present ones must
  // have the right type.
  auto str = [&](const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end()) {
      return;
    }
    if (!it->is_string()) {
      p.Add(key, it->dump(), "must be a string");
      return;
    }
    out = it->get<std::string>();
  };
  auto uint = [&](const char* key, auto& out) {
    using T = std::remove_reference_t<decltype(out)>;
    auto it = j.find(key);
    if (it == j.end()) {
      return;
    }
    if (!it->is_number_unsigned() ||
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      p.Add(key, it->dump(), "must be a non-negative integer");
      return;
    }
    out = static_cast<T>(it->get<uint64_t>());
  };
  auto ms = [&](const char* key, milliseconds& out) {
    uint32_t v = static_cast<uint32_t>(out.count());
    uint(key, v);
    out = milliseconds(v);
  };
  str("name", s.name);
  str("function", s.function);
  str("source", s.source);
  str("stream", s.stream);
  str("group", s.group);
  str("queue", s.queue);
  uint("batch", s.batch);
  uint("concurrency", s.concurrency);
  uint("max_attempts", s.max_attempts);
  ms("backoff_min_ms", s.backoff_min);
  ms("backoff_max_ms", s.backoff_max);
  str("dlq", s.dlq);
  ms("visibility_timeout_ms", s.visibility_timeout);
  if (auto it = j.find("paused"); it != j.end()) {
    if (it->is_boolean()) {
      s.paused = it->get<bool>();
    } else {
      p.Add("paused", it->dump(), "must be true or false");
    }
  }
  FAAS_RETURN_IF_ERROR(p.ToStatus("invalid trigger definition"));
  return s;
}

std::chrono::milliseconds Backoff(uint32_t attempt, std::chrono::milliseconds min_delay,
                                  std::chrono::milliseconds max_delay) {
  int64_t lo = std::max<int64_t>(min_delay.count(), 0);
  int64_t hi = std::max<int64_t>(max_delay.count(), lo);
  // d = min(hi, lo * 2^(attempt-1)), computed without overflow.
  uint32_t shift = std::min<uint32_t>(attempt == 0 ? 0 : attempt - 1, 62);
  int64_t d = hi;
  if (lo <= (hi >> shift)) {
    d = std::min(hi, lo << shift);
  }
  int64_t from = std::max(lo, d / 2);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> pick(from, d);
  return milliseconds(pick(rng));
}

}  // namespace faas::triggers
