// Recorder: turns finished invocations and background CPU into ledger rows (docs/metering.md).
// Its inputs are its own small structs, filled by the scheduler: metering knows the ledger it
// writes, not the scheduler's types. Called on the invoking thread before the result goes back
// to the client, so an answered invocation is always in the ledger's journal. Thread-safe (the
// ledger is).
//
//   Recorder rec(&ledger, &metrics, prices);
//   rec.Invocation({.function = {...}, .invocation_id = id, ..., .cpu = cpu});
//   rec.Background({.name = "resize", .version = 3, .memory_mb = 256}, cpu);
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "faas/base/time.h"
#include "faas/metering/metrics.h"
#include "faas/metering/pricing.h"

namespace faas::store {
class Ledger;
}

namespace faas::metering {

// The function version a row is billed to.
struct BilledFunction {
  std::string_view name;
  uint32_t version = 0;
  uint64_t memory_mb = 128;  // the memory tier's input (Cost)
};

// One finished invocation, as it is recorded.
struct InvocationFacts {
  BilledFunction function;
  std::string_view invocation_id;
  std::string_view trigger, tenant, queue, message_id;
  std::string_view outcome;  // OutcomeName: "ok", "function_timeout", ...
  bool ok = false;           // the outcome is "ok" (else it is also the row's error code)
  bool cold_start = false;
  std::chrono::nanoseconds cpu{0};
  uint64_t peak_memory_bytes = 0;
  std::chrono::nanoseconds queue_time{0}, spawn{0}, load{0}, init{0}, exec{0};
  Clock::time_point arrived;  // the request's arrival: the row's wall time runs from here
  int64_t start_unix_ms = 0;
  std::string_view logs;  // captured output ("" : no log entry)
};

class Recorder {
 public:
  // `ledger` and `metrics` may be null (nothing written there); both outlive the recorder.
  Recorder(store::Ledger* ledger, Metrics* metrics, Prices prices)
      : ledger_(ledger), metrics_(metrics), prices_(std::move(prices)) {}
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  // Flushes what background CPU is not yet in the ledger, rounded up to a whole millisecond per
  // function (at most one row per function per faasd run).
  ~Recorder();

  void Invocation(const InvocationFacts& f);

  // CPU a function's instances used outside invocations (a thread or child it left running),
  // summed over all its instances before it is rounded: a row is written, and whole
  // milliseconds billed, each time the sum passes a millisecond; the fraction is carried (so a
  // few µs per instance never become a millisecond each).
  void Background(const BilledFunction& fn, std::chrono::nanoseconds cpu);

  // A new instance or zygote is ready: `init` (loading and faas_init, spawned workers only) is
  // the function's and billed as an "init" row, rounded up like an invocation; `platform`
  // (exec, jail, fork) is counted in faas_platform_cpu_seconds_total and never billed.
  void Started(const BilledFunction& fn, std::chrono::nanoseconds platform,
               std::chrono::nanoseconds init);
  void Platform(const BilledFunction& fn, std::chrono::nanoseconds cpu);

 private:
  // A ledger row of `kind` "background" or "init" (no request, no request price).
  void Row(std::string_view function, uint32_t version, uint64_t memory_mb, std::string_view kind,
           std::chrono::nanoseconds cpu, uint64_t billed);

  store::Ledger* ledger_;
  Metrics* metrics_;
  Prices prices_;
  // Per function: background CPU not yet in a row, and not yet billed (< 1 ms after a row).
  struct Carry {
    uint32_t version = 0;
    uint64_t memory_mb = 128;
    std::chrono::nanoseconds unrecorded{0};
    std::chrono::nanoseconds unbilled{0};
  };
  std::mutex carry_mu_;
  std::map<std::string, Carry, std::less<>> carry_;
};

}  // namespace faas::metering
