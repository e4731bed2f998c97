// The scheduler's side of billing: metering's Recorder (faas/metering/recorder.h) records its
// own input structs, and these fill them from the scheduler's types. What is billed and how is
// metering's (docs/metering.md); which function version, outcome and timings it is, the
// scheduler's.
//
//   recorder->Invocation(Billed(spec.get(), name, request, result, start_unix_ms));
//   recorder->Background(Billed(spec), cpu);
#pragma once

#include <string_view>

#include "faas/metering/recorder.h"
#include "faas/scheduler/scheduler.h"

namespace faas::scheduler {

using metering::Recorder;

inline metering::BilledFunction Billed(const FunctionSpec& spec) {
  return {.name = spec.name, .version = spec.version, .memory_mb = spec.config.memory_mb};
}

// One invocation of `name` (billed to the version that ran it, at `spec`'s memory; 128 MiB
// when it never had a spec, e.g. refused before a version was chosen). The facts point into
// `req` and `r`, which must outlive the Recorder call.
inline metering::InvocationFacts Billed(const FunctionSpec* spec, std::string_view name,
                                        const InvokeRequest& req, const InvokeResult& r,
                                        int64_t start_unix_ms) {
  return {.function = {.name = name,
                       .version = r.version,
                       .memory_mb = spec != nullptr ? spec->config.memory_mb : 128},
          .invocation_id = req.invocation_id,
          .trigger = req.trigger,
          .tenant = req.tenant,
          .queue = req.queue,
          .message_id = req.message_id,
          .outcome = OutcomeName(r.outcome),
          .ok = r.outcome == Outcome::kOk,
          .cold_start = r.cold_start,
          .cpu = r.cpu,
          .peak_memory_bytes = r.peak_memory_bytes,
          .queue_time = r.timings.queue,
          .spawn = r.timings.spawn,
          .load = r.timings.load,
          .init = r.timings.init,
          .exec = r.timings.exec,
          .arrived = req.arrived,
          .start_unix_ms = start_unix_ms,
          .logs = r.logs};
}

}  // namespace faas::scheduler
