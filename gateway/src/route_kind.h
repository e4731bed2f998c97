// The one classification of a request's route, by path: every other part of the gateway asks
// this, so the built-in routes (docs/http-api.md) and the order they are tried in are written
// once. The router reserves their first path segments (router.cc kReserved), so a custom route
// never shadows one.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "faas/gateway/http_server.h"
#include "faas/gateway/router.h"

namespace faas::gateway {

enum class RouteKind {
  kInvoke,      // ANY /function/{name}[/{rest}]
  kAsync,       // /async-function/{name}[/{rest}] (405 unless POST)
  kQueue,       // /queues/{name} (405 unless POST)
  kInvocation,  // GET /invocations/{id}
  kMetrics,     // /metrics
  kHealth,      // /healthz, /readyz
  kConsole,     // /console, /console/... (Gateway::SetConsole)
  kCustom,      // a route of the Router: an invocation like kInvoke
  kNone,        // 404 route_not_found
};

struct ClassifiedRoute {
  RouteKind kind = RouteKind::kNone;
  std::string route = "other";  // the template for metrics and logs, never the raw path
  std::string name;             // function, queue or invocation id
  std::string rest;             // the path the function sees (kInvoke, kAsync, kCustom)
  std::vector<std::pair<std::string, std::string>> params;  // kCustom
};

// `routes` may be null (no custom routes).
ClassifiedRoute ClassifyRoute(const HttpRequest& req, const Router* routes);

// Whether the route's handler may block (storage, metrics rendering): such routes leave the
// event loop for a blocking thread.
inline bool MayBlock(RouteKind kind) {
  return kind == RouteKind::kAsync || kind == RouteKind::kQueue || kind == RouteKind::kInvocation ||
         kind == RouteKind::kMetrics || kind == RouteKind::kConsole;
}

}  // namespace faas::gateway
