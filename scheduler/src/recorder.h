// Recorder: turns finished invocations and background CPU into ledger rows (DESIGN §4.7).
// Called on the invoking thread before the result goes back to the client, so an answered
// invocation is always in the ledger's journal. Thread-safe (the ledger is).
#pragma once

#include <chrono>

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

  // CPU an instance used outside invocations (a background thread, a child it left running).
  // `cpu` is billed in whole milliseconds; the caller keeps the sub-millisecond remainder and
  // passes it with final=true when the instance ends, so nothing is lost or billed twice.
  void Background(const FunctionSpec& spec, std::chrono::nanoseconds cpu, bool final) {
    if (cpu.count() <= 0) {
      return;
    }
    uint64_t billed = final ? static_cast<uint64_t>(metering::BilledMillis(cpu))
                            : static_cast<uint64_t>(cpu.count() / 1'000'000);
    if (metrics_ != nullptr) {
      metrics_->RecordBackground(spec.name, cpu, billed);
    }
    if (ledger_ == nullptr) {
      return;
    }
    store::InvocationRecord rec;
    rec.invocation_id = "bg-" + NewInvocationId();
    rec.function = spec.name;
    rec.version = spec.version;
    rec.trigger = "background";
    rec.kind = "background";
    rec.start_unix_ms = UnixMillisNow();
    rec.cpu_ns = Ns(cpu);
    rec.billed_ms = billed;
    rec.cost_micros = metering::Cost(prices_, rec.billed_ms, spec.config.memory_mb, false);
    rec.outcome = "ok";
    Append(rec);
  }

 private:
  static uint64_t Ns(std::chrono::nanoseconds d) {
    return d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
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
};

}  // namespace faas::scheduler
