#include "route_kind.h"

#include <optional>
#include <string_view>

namespace faas::gateway {
namespace {

constexpr std::string_view kFunctionPrefix = "/function/";
constexpr std::string_view kAsyncPrefix = "/async-function/";
constexpr std::string_view kInvocationsPrefix = "/invocations/";
constexpr std::string_view kQueuesPrefix = "/queues/";

// The NAME and "/rest" ("/" when absent) of what follows /function/ or /async-function/.
void SplitNameAndRest(std::string_view tail, std::string* name, std::string* rest) {
  const std::size_t slash = tail.find('/');
  *name = std::string(tail.substr(0, slash));
  *rest = std::string(slash == std::string_view::npos ? "/" : tail.substr(slash));
}

}  // namespace

ClassifiedRoute ClassifyRoute(const HttpRequest& req, const Router* routes) {
  ClassifiedRoute c;
  std::string_view path = req.path;
  if (path.starts_with(kFunctionPrefix) || path.starts_with(kAsyncPrefix)) {
    const bool async = path.starts_with(kAsyncPrefix);
    SplitNameAndRest(path.substr(async ? kAsyncPrefix.size() : kFunctionPrefix.size()), &c.name,
                     &c.rest);
    if (!c.name.empty()) {
      c.kind = async ? RouteKind::kAsync : RouteKind::kInvoke;
      c.route = async ? "/async-function/{name}" : "/function/{name}";
    }
  } else if (path.starts_with(kQueuesPrefix)) {
    c.kind = RouteKind::kQueue;
    c.route = "/queues/{name}";
    c.name = std::string(path.substr(kQueuesPrefix.size()));
  } else if (path.starts_with(kInvocationsPrefix)) {
    if (req.method == "GET") {
      c.kind = RouteKind::kInvocation;
      c.route = "/invocations/{id}";
      c.name = std::string(path.substr(kInvocationsPrefix.size()));
    }
  } else if (path == "/metrics") {
    c.kind = RouteKind::kMetrics;
    c.route = "/metrics";
  } else if (path == "/healthz" || path == "/readyz") {
    c.kind = RouteKind::kHealth;
    c.route = std::string(path);
  } else if (path == "/console" || path.starts_with("/console/")) {
    c.kind = RouteKind::kConsole;
    c.route = "/console";
  } else if (routes != nullptr) {
    const std::string* host = req.Header("host");
    if (std::optional<RouteMatch> m =
            routes->Match(req.method, host == nullptr ? std::string_view() : *host, req.path)) {
      c.kind = RouteKind::kCustom;
      c.route = m->route->path;
      c.name = std::move(m->function);
      c.rest = std::move(m->path);
      c.params = std::move(m->params);
    }
  }
  return c;
}

}  // namespace faas::gateway
