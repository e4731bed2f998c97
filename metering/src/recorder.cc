#include "faas/metering/recorder.h"

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/metering/cpu_clock.h"
#include "faas/store/ledger.h"

namespace faas::metering {
namespace {

uint64_t Ns(std::chrono::nanoseconds d) {
  return d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
}

void Append(store::Ledger* ledger, store::InvocationRecord&& rec) {
  Status s = ledger->Append(std::move(rec));  // left as it was on failure: logged below
  if (!s.ok()) {
    static auto log = log::Get("metering");
    // NOLINTNEXTLINE(bugprone-use-after-move): a failed Append leaves the record as it was
    FAAS_LOG(log, err, "ledger.append_failed", {"inv", rec.invocation_id}, {"fn", rec.function},
             {"error", s.message()});
  }
}

}  // namespace

void Recorder::Invocation(const InvocationFacts& f) {
  const auto billed_ms = static_cast<uint64_t>(BilledMillis(f.cpu));
  // Both figures end now: the row is written before the client is answered.
  const std::chrono::nanoseconds total = Clock::now() - f.arrived;
  if (metrics_ != nullptr) {
    metrics_->RecordInvocation({.function = std::string(f.function.name),
                                .outcome = std::string(f.outcome),
                                .cold_start = f.cold_start,
                                .cpu = f.cpu,
                                .billed_ms = billed_ms,
                                .queue = f.queue_time,
                                .spawn = f.spawn,
                                .load = f.load,
                                .init = f.init,
                                .exec = f.exec,
                                .total = total});
  }
  if (ledger_ == nullptr) {
    return;
  }
  store::InvocationRecord rec;
  rec.invocation_id = f.invocation_id;
  rec.function = f.function.name;
  rec.version = f.function.version;
  rec.trigger = f.trigger;
  rec.tenant = f.tenant;
  rec.queue = f.queue;
  rec.message_id = f.message_id;
  rec.kind = "invocation";
  rec.start_unix_ms = f.start_unix_ms;
  rec.wall_ns = Ns(Clock::now() - f.arrived);
  rec.cpu_ns = Ns(f.cpu);
  rec.billed_ms = billed_ms;
  rec.cost_micros = Cost(prices_, rec.billed_ms, f.function.memory_mb, true);
  rec.peak_memory_bytes = f.peak_memory_bytes;
  rec.cold_start = f.cold_start;
  rec.outcome = f.outcome;
  rec.error_code = f.ok ? "" : rec.outcome;
  rec.queue_ns = Ns(f.queue_time);
  rec.spawn_ns = Ns(f.spawn);
  rec.load_ns = Ns(f.load);
  rec.init_ns = Ns(f.init);
  rec.exec_ns = Ns(f.exec);
  Append(ledger_, std::move(rec));
  if (!f.logs.empty()) {
    ledger_->AppendLog({.seq = 0,
                        .invocation_id = std::string(f.invocation_id),
                        .function = std::string(f.function.name),
                        .start_unix_ms = f.start_unix_ms,
                        .text = std::string(f.logs)});
  }
}

Recorder::~Recorder() {
  std::lock_guard lock(carry_mu_);
  for (auto& [name, c] : carry_) {
    if (c.unrecorded.count() > 0 || c.unbilled.count() > 0) {
      Row(name, c.version, c.memory_mb, "background", c.unrecorded,
          static_cast<uint64_t>(BilledMillis(c.unbilled)));
    }
  }
}

void Recorder::Background(const BilledFunction& fn, std::chrono::nanoseconds cpu) {
  if (cpu.count() <= 0) {
    return;
  }
  std::lock_guard lock(carry_mu_);
  auto it = carry_.find(fn.name);
  if (it == carry_.end()) {
    it = carry_.emplace(std::string(fn.name), Carry{}).first;
  }
  Carry& c = it->second;
  c.version = fn.version;
  c.memory_mb = fn.memory_mb;
  c.unrecorded += cpu;
  c.unbilled += cpu;
  const auto billed = static_cast<uint64_t>(c.unbilled.count() / 1'000'000);
  if (billed == 0) {
    return;
  }
  c.unbilled -= std::chrono::milliseconds(billed);
  Row(fn.name, fn.version, fn.memory_mb, "background", c.unrecorded, billed);
  c.unrecorded = std::chrono::nanoseconds(0);
}

void Recorder::Started(const BilledFunction& fn, std::chrono::nanoseconds platform,
                       std::chrono::nanoseconds init) {
  Platform(fn, platform);
  if (init.count() > 0) {
    Row(fn.name, fn.version, fn.memory_mb, "init", init, static_cast<uint64_t>(BilledMillis(init)));
  }
}

void Recorder::Platform(const BilledFunction& fn, std::chrono::nanoseconds cpu) {
  if (metrics_ != nullptr && cpu.count() > 0) {
    metrics_->RecordPlatformCpu(std::string(fn.name), cpu);
  }
}

void Recorder::Row(std::string_view function, uint32_t version, uint64_t memory_mb,
                   std::string_view kind, std::chrono::nanoseconds cpu, uint64_t billed) {
  if (metrics_ != nullptr) {
    metrics_->RecordBackground(std::string(function), cpu, billed);
  }
  if (ledger_ == nullptr) {
    return;
  }
  store::InvocationRecord rec;
  rec.invocation_id = std::string(kind == "init" ? "init-" : "bg-") + NewInvocationId();
  rec.function = function;
  rec.version = version;
  rec.trigger = kind;
  rec.kind = kind;
  rec.start_unix_ms = UnixMillisNow();
  rec.cpu_ns = Ns(cpu);
  rec.billed_ms = billed;
  rec.cost_micros = Cost(prices_, rec.billed_ms, memory_mb, false);
  rec.outcome = "ok";
  Append(ledger_, std::move(rec));
}

}  // namespace faas::metering
