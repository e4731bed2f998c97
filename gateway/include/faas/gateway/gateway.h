// Gateway: maps HTTP requests to function invocations (DESIGN §4.2).
//
//   faas::gateway::Gateway gw(&scheduler);
//   HttpServer server(opts, [&](HttpRequest& q, HttpResponse& r) { gw.Handle(q, r); });
//
// Routes: ANY /function/{name}[/{rest}], GET /healthz, GET /readyz, GET /metrics. Every response carries
// X-Invocation-Id, X-Faas-Cold-Start and Server-Timing; errors are the JSON of DESIGN §4.2.
// Thread-safe: Handle runs concurrently on connection threads.
#pragma once

#include <atomic>
#include <string>

#include "faas/gateway/http_server.h"
#include "faas/scheduler/scheduler.h"

namespace faas::gateway {

// HTTP status and stable error code for a scheduler outcome (one table; one test per row).
struct HttpError {
  int status;
  const char* code;
};
HttpError ToHttpError(scheduler::Outcome outcome);

// "queue;dur=0.012, cold;dur=3.100, exec;dur=0.200, cpu;dur=0.150"
std::string ServerTiming(const scheduler::InvokeResult& r);

class Gateway {
 public:
  // `metrics` (optional, not owned) is served at GET /metrics.
  explicit Gateway(scheduler::Scheduler* scheduler, metering::Metrics* metrics = nullptr)
      : scheduler_(scheduler), metrics_(metrics) {}
  void Handle(HttpRequest& req, HttpResponse& res);
  // /readyz answers 503 while not ready (starting or draining).
  void SetReady(bool ready) { ready_.store(ready); }

 private:
  void Invoke(const std::string& name, std::string rest, HttpRequest& req, HttpResponse& res);
  scheduler::Scheduler* scheduler_;
  metering::Metrics* metrics_;
  std::atomic<bool> ready_{false};
};

}  // namespace faas::gateway
