// Gateway: maps HTTP requests to function invocations (DESIGN §4.2).
//
//   faas::gateway::Gateway gw(&scheduler);
//   HttpServer server(opts, [&](HttpRequest& q, HttpResponse& r) { gw.Handle(q, r); });
//
// Routes, tried in order: ANY /function/{name}[/{rest}], GET /healthz, GET /readyz, GET /metrics,
// then the custom routes of the Router given to SetRoutes (params reach the function as headers
// x-faas-param-<name>). Every response carries X-Invocation-Id, X-Faas-Cold-Start and
// Server-Timing; errors are the JSON of DESIGN §4.2.
// Thread-safe: Handle runs concurrently on connection threads.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "faas/gateway/http_server.h"
#include "faas/gateway/router.h"
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
  // Replaces the custom routes (nullptr = none). Requests already matched keep the old router;
  // lookups never wait for this call beyond a pointer swap.
  void SetRoutes(std::shared_ptr<const Router> routes) { routes_.store(std::move(routes)); }

 private:
  using Params = std::vector<std::pair<std::string, std::string>>;
  // `path` is what the function sees; `params` become x-faas-param-<name> headers.
  void Invoke(const std::string& name, std::string path, HttpRequest& req, HttpResponse& res,
              Params&& params = {});
  scheduler::Scheduler* scheduler_;
  metering::Metrics* metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<std::shared_ptr<const Router>> routes_;
};

}  // namespace faas::gateway
