// Recorder: turns finished invocations and background CPU into ledger rows (docs/metering.md).
// Called on the invoking thread before the result goes back to the client, so an answered
// invocation is always in the ledger's journal. Thread-safe (the ledger is).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/metering/cpu_clock.h"
#include "faas/metering/pricing.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/ledger.h"

namespace faas::scheduler {

class Recorder {
 public:
  Recorder(store::Ledger* ledger, metering::Metrics* metrics, metering::Prices prices)
      : ledger_(ledger), metrics_(metrics), prices_(std::move(prices)) {}

  void Invocation(const FunctionSpec* spec, const std::string& name, const InvokeRequest& req,
                  const InvokeResult& r, int64_t start_unix_ms) {
    if (metrics_ != nullptr) {
      metrics_->RecordInvocation({.function = name,
                                  .outcome = std::string(OutcomeName(r.outcome)),
                                  .cold_start = r.cold_start,
                                  .cpu = r.cpu,
                                  .billed_ms = static_cast<uint64_t>(metering::BilledMillis(r.cpu)),
                                  .queue = r.timings.queue,
                                  .spawn = r.timings.spawn,
                                  .load = r.timings.load,
                                  .init = r.timings.init,
                                  .exec = r.timings.exec,
                                  .total = Clock::now() - req.arrived});
    }
    if (ledger_ == nullptr) {
      return;
    }
    store::InvocationRecord rec;
    rec.invocation_id = req.invocation_id;
    rec.function = name;
    rec.version = r.version;
    rec.trigger = req.trigger;
    rec.tenant = req.tenant;
    rec.queue = req.queue;
    rec.message_id = req.message_id;
    rec.kind = "invocation";
    rec.start_unix_ms = start_unix_ms;
    rec.wall_ns = Ns(Clock::now() - req.arrived);
    rec.cpu_ns = Ns(r.cpu);
    rec.billed_ms = static_cast<uint64_t>(metering::BilledMillis(r.cpu));
    rec.cost_micros = metering::Cost(prices_, rec.billed_ms,
                                     spec != nullptr ? spec->config.memory_mb : 128, true);
    rec.peak_memory_bytes = r.peak_memory_bytes;
    rec.cold_start = r.cold_start;
    rec.outcome = std::string(OutcomeName(r.outcome));
    rec.error_code = r.outcome == Outcome::kOk ? "" : rec.outcome;
    rec.queue_ns = Ns(r.timings.queue);
    rec.spawn_ns = Ns(r.timings.spawn);
    rec.load_ns = Ns(r.timings.load);
    rec.init_ns = Ns(r.timings.init);
    rec.exec_ns = Ns(r.timings.exec);
    Append(rec);
    if (!r.logs.empty()) {
      ledger_->AppendLog({.seq = 0,
                          .invocation_id = req.invocation_id,
                          .function = name,
                          .start_unix_ms = start_unix_ms,
                          .text = r.logs});
    }
  }

  // Flushes what background CPU is not yet in the ledger, rounded up to a whole millisecond per
  // function (at most one per function per faasd run).
  ~Recorder() {
    std::lock_guard lock(carry_mu_);
    for (auto& [name, c] : carry_) {
      if (c.unrecorded.count() > 0 || c.unbilled.count() > 0) {
        Row(name, c.version, c.memory_mb, "background", c.unrecorded,
            static_cast<uint64_t>(metering::BilledMillis(c.unbilled)));
      }
    }
  }

  // CPU a function's instances used outside invocations (a thread or child it left running),
  // summed over all its instances before it is rounded: a row is written, and whole
  // milliseconds billed, each time the sum passes a millisecond; the fraction is carried (so a
  // few µs per instance never become a millisecond each). `final` is accepted for callers that
  // know the instance ended; the carry is per function either way.
  void Background(const FunctionSpec& spec, std::chrono::nanoseconds cpu, bool /*final*/) {
    if (cpu.count() <= 0) {
      return;
    }
    std::lock_guard lock(carry_mu_);
    Carry& c = carry_[spec.name];
    c.version = spec.version;
    c.memory_mb = spec.config.memory_mb;
    c.unrecorded += cpu;
    c.unbilled += cpu;
    const uint64_t billed = static_cast<uint64_t>(c.unbilled.count() / 1'000'000);
    if (billed == 0) {
      return;
    }
    c.unbilled -= std::chrono::milliseconds(billed);
    Row(spec.name, spec.version, spec.config.memory_mb, "background", c.unrecorded, billed);
    c.unrecorded = std::chrono::nanoseconds(0);
  }

  // A new instance or zygote is ready: `init` (loading and faas_init, spawned workers only) is
  // the function's and billed as an "init" row, rounded up like an invocation; `platform`
  // (exec, jail, fork) is counted in faas_platform_cpu_seconds_total and never billed.
  void Started(const FunctionSpec& spec, std::chrono::nanoseconds platform,
               std::chrono::nanoseconds init) {
    Platform(spec, platform);
    if (init.count() > 0) {
      Row(spec.name, spec.version, spec.config.memory_mb, "init", init,
          static_cast<uint64_t>(metering::BilledMillis(init)));
    }
  }
  void Platform(const FunctionSpec& spec, std::chrono::nanoseconds cpu) {
    if (metrics_ != nullptr && cpu.count() > 0) {
      metrics_->RecordPlatformCpu(spec.name, cpu);
    }
  }

 private:
  static uint64_t Ns(std::chrono::nanoseconds d) {
    return d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
  }
  // A ledger row of `kind` "background" or "init" (no request, no request price).
  void Row(const std::string& function, uint32_t version, uint64_t memory_mb, const char* kind,
           std::chrono::nanoseconds cpu, uint64_t billed) {
    if (metrics_ != nullptr) {
      metrics_->RecordBackground(function, cpu, billed);
    }
    if (ledger_ == nullptr) {
      return;
    }
    store::InvocationRecord rec;
    rec.invocation_id =
        std::string(kind == std::string_view("init") ? "init-" : "bg-") + NewInvocationId();
    rec.function = function;
    rec.version = version;
    rec.trigger = kind;
    rec.kind = kind;
    rec.start_unix_ms = UnixMillisNow();
    rec.cpu_ns = Ns(cpu);
    rec.billed_ms = billed;
    rec.cost_micros = metering::Cost(prices_, rec.billed_ms, memory_mb, false);
    rec.outcome = "ok";
    Append(rec);
  }
  void Append(const store::InvocationRecord& rec) {
    Status s = ledger_->Append(rec);
    if (!s.ok()) {
      static auto log = log::Get("metering");
      FAAS_LOG(log, err, "ledger.append_failed", {"inv", rec.invocation_id}, {"fn", rec.function},
               {"error", s.message()});
    }
  }

  store::Ledger* ledger_;
  metering::Metrics* metrics_;
  metering::Prices prices_;
  // Per function: background CPU not yet in a row, and not yet billed (< 1 ms after a row).
  struct Carry {
    uint32_t version = 0;
    uint64_t memory_mb = 128;
    std::chrono::nanoseconds unrecorded{0};
    std::chrono::nanoseconds unbilled{0};
  };
  std::mutex carry_mu_;
  std::map<std::string, Carry> carry_;
};

}  // namespace faas::scheduler
