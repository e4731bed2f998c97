// Gateway: maps HTTP requests to function invocations (docs/http-api.md).
//
//   faas::gateway::Gateway gw({.invoker = &scheduler, .metrics = &metrics, .async = &async});
//   HttpServer server(opts, [&](HttpRequest& q, Responder r) { gw.HandleAsync(q, std::move(r)); });
//
// Routes, tried in order (route_kind.h): ANY /function/{name}[/{rest}], POST
// /async-function/{name}[/{rest}], POST /queues/{name}, GET /invocations/{id}, GET /metrics, GET
// /healthz, GET /readyz, /console[/...] (SetConsole), then the custom routes of the Router given to
// SetRoutes (params reach the function as headers x-faas-param-<name>).
//
// Before any scheduling work an invocation passes the edge checks (edge_checks.h): the API key,
// then the key's and the function's rate limits.
//
// Every response carries X-Invocation-Id, X-Faas-Cold-Start and Server-Timing, and every
// invocation's X-Faas-Node (the node that ran it); errors are the JSON of errors.h, and a
// node_lost error also names the node ("node"). A valid W3C traceparent is continued
// (trace_context.h), else a trace is started; the function sees it as the traceparent header. One
// structured access-log line per request goes to the "access" logger at info level. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "faas/gateway/async_invocations.h"
#include "faas/gateway/auth.h"
#include "faas/gateway/errors.h"
#include "faas/gateway/http_server.h"
#include "faas/gateway/rate_limit.h"
#include "faas/gateway/router.h"
#include "faas/gateway/trace_context.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/queue.h"

namespace faas::gateway {

// "queue;dur=0.012, cold;dur=3.100, exec;dur=0.200, cpu;dur=0.150"
std::string ServerTiming(const scheduler::InvokeResult& r);

// The web console (docs/design/0026-console.md), implemented by the daemon: every request for
// /console or /console/... goes to it, on a blocking thread and before any API-key check (the
// console checks its own sessions). `invocation_id` is the request's id, for error bodies.
using ConsoleHandler =
    std::function<void(HttpRequest& req, const std::string& invocation_id, HttpResponse& res)>;

struct GatewayOptions {
  scheduler::Invoker* invoker = nullptr;  // not owned
  metering::Metrics* metrics = nullptr;   // optional, not owned: GET /metrics
  AsyncInvocations* async = nullptr;      // optional, not owned: /async-function, /invocations
  store::Queue* queue = nullptr;          // optional, not owned: POST /queues/NAME
  bool access_log = true;                 // one "access" info line per request
  // Optional, not owned: where rate limits are counted (a cluster's SharedRateLimiter); default
  // a limiter of this process.
  Limiter* limiter = nullptr;
  // X-Faas-Node of invocations whose result names no node (--role all: this machine's node id).
  std::string node_id;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // For HttpServer's event loops. Invocations (/function/NAME and custom routes) run there
  // through Invoker::InvokeAsync; health checks and unknown routes are answered there; routes
  // that touch storage (MayBlock in route_kind.h) run on a blocking thread.
  void HandleAsync(HttpRequest& req, const Responder& responder);
  // /readyz answers 503 while not ready (starting or draining).
  void SetReady(bool ready) { ready_.store(ready); }
  // Replaces the custom routes (nullptr = none). Requests already matched keep the old router;
  // lookups never wait for this call beyond a pointer swap.
  void SetRoutes(std::shared_ptr<const Router> routes) { routes_.store(std::move(routes)); }
  // Replaces the API keys (nullptr = none: only public functions can be invoked).
  void SetKeys(std::shared_ptr<const KeyTable> keys);
  // Where /metrics reads the HTTP server's rejections (connection caps, 408/413/431/400).
  void SetServerRejections(std::function<HttpServer::Rejections()> source);
  // Serves /console through `console` (nullptr, the default: 404 route_not_found there).
  void SetConsole(std::shared_ptr<const ConsoleHandler> console) {
    console_.store(std::move(console));
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> ready_{false};
  std::atomic<std::shared_ptr<const Router>> routes_;
  std::atomic<std::shared_ptr<const ConsoleHandler>> console_;
};

}  // namespace faas::gateway
