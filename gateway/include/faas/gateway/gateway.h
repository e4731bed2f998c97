// Gateway: maps HTTP requests to function invocations (DESIGN §4.2).
//
//   faas::gateway::Gateway gw({.scheduler = &scheduler, .metrics = &metrics, .queue = queue});
//   HttpServer server(opts, [&](HttpRequest& q, HttpResponse& r) { gw.Handle(q, r); });
//
// Routes, tried in order: ANY /function/{name}[/{rest}], POST /async-function/{name}[/{rest}],
// GET /invocations/{id}, GET /healthz, GET /readyz, GET /metrics, then the custom routes of the
// Router given to SetRoutes (params reach the function as headers x-faas-param-<name>).
//
// Before any scheduling work an invocation passes the edge checks, in this order: the function's
// API-key check (401 unauthorized; skipped for functions deployed public), the key's rate limit
// and the function's rate limit (429 rate_limited with Retry-After). A caller without a valid key
// cannot tell a missing private function from an existing one: both answer 401.
//
// Every response carries X-Invocation-Id, X-Faas-Cold-Start and Server-Timing; errors are the
// JSON of DESIGN §4.2. A valid W3C traceparent is continued (new parent id), else a trace is
// started; the function sees it as the traceparent header. One structured access-log line per
// request goes to the "access" logger at info level.
// Thread-safe: Handle runs concurrently on connection threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "faas/gateway/address_policy.h"
#include "faas/gateway/auth.h"
#include "faas/gateway/http_server.h"
#include "faas/gateway/rate_limit.h"
#include "faas/gateway/router.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/queue.h"

namespace faas::gateway {

// HTTP status and stable error code for a scheduler outcome (one table; one test per row).
struct HttpError {
  int status;
  const char* code;
};
HttpError ToHttpError(scheduler::Outcome outcome);

// "queue;dur=0.012, cold;dur=3.100, exec;dur=0.200, cpu;dur=0.150"
std::string ServerTiming(const scheduler::InvokeResult& r);

// W3C trace context (https://www.w3.org/TR/trace-context/): `incoming` continued with a new
// parent id when it is a valid version-00 traceparent, else a new trace (sampled flag off).
// Returns the header to pass on; *trace_id gets its 32 hex digits.
std::string ContinueTrace(const std::string* incoming, std::string* trace_id);

// Queue names of the async machinery in the embedded queue.
inline constexpr const char* kAsyncQueue = "_async";
inline constexpr const char* kCallbackQueue = "_callbacks";

struct GatewayOptions {
  scheduler::Scheduler* scheduler = nullptr;    // not owned
  metering::Metrics* metrics = nullptr;         // optional, not owned: GET /metrics
  store::Queue* queue = nullptr;                // optional, not owned: async invocations
  bool access_log = true;                       // one "access" info line per request
  std::size_t async_result_bytes = 256u << 10;  // stored response body of an async invocation
  // Ranges callbacks may reach although AddressPolicy blocks them (faasd --callback-allow).
  std::vector<Cidr> callback_allow;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Blocking: runs the route, invocations included, on the caller's thread.
  void Handle(HttpRequest& req, HttpResponse& res);
  // For HttpServer's event loops: invocations (/function/NAME and custom routes) run there
  // through Scheduler::InvokeAsync; every other route runs Handle on a blocking thread.
  void HandleAsync(HttpRequest& req, Responder responder);
  // /readyz answers 503 while not ready (starting or draining).
  void SetReady(bool ready) { ready_.store(ready); }
  // Replaces the custom routes (nullptr = none). Requests already matched keep the old router;
  // lookups never wait for this call beyond a pointer swap.
  void SetRoutes(std::shared_ptr<const Router> routes) { routes_.store(std::move(routes)); }
  // Replaces the API keys (nullptr = none: only public functions can be invoked).
  void SetKeys(std::shared_ptr<const KeyTable> keys) {
    keys_.store(keys != nullptr ? std::move(keys) : KeyTable::Build({}));
  }
  // Where /metrics reads the HTTP server's rejections (connection caps, 408/413/431/400).
  void SetServerRejections(std::function<HttpServer::Rejections()> source);

  // Queues an async POST invocation on behalf of the control API (an admin: no key, no rate
  // limit). Returns its invocation id. NotFound for an unknown function, InvalidArgument for a
  // bad or refused callback URL or a body over the function's limit, Unavailable without a queue.
  Result<std::string> EnqueueAsync(const std::string& name, std::string path, std::string query,
                                   std::string body, const std::string& callback_url);

  // The JSON of GET /invocations/{id} for the control API (an admin: any tenant). NotFound for
  // an unknown or expired id.
  Result<std::string> AsyncStatusJson(std::string_view invocation_id) const;

  // Runs one async invocation taken from kAsyncQueue (the daemon's internal trigger calls this):
  // records running, invokes, stores the result and queues its callback; `final_attempt` makes
  // a failure final. Returns true when the message is done (acknowledge it), false to retry it
  // (`error` says why).
  bool RunAsync(std::string_view body, const store::QueueHeaders& headers, uint32_t attempt,
                bool final_attempt, std::string* error);
  // Delivers the stored result of the async invocation named by a kCallbackQueue message's
  // `headers` to its callback URL (POST, JSON, 5 s timeout). True on a 2xx answer; records the
  // callback's state.
  bool DeliverCallback(const store::QueueHeaders& headers, bool final_attempt, std::string* error);

 private:
  // The custom route for `req`, if any; *routes keeps the matched RouteSpec alive.
  std::optional<RouteMatch> MatchRoute(const HttpRequest& req,
                                       std::shared_ptr<const Router>* routes) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> ready_{false};
  std::atomic<std::shared_ptr<const Router>> routes_;
  std::atomic<std::shared_ptr<const KeyTable>> keys_;  // never null
};

}  // namespace faas::gateway
