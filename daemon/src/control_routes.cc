// The control API's custom routes: each change is checked against the stored routes, stored,
// and the rebuilt router is handed to the routes sink.
#include <utility>

#include "faas/base/log.h"
#include "faas/gateway/router.h"

#include "control_service.h"

namespace faas::daemon {
namespace {

void ToProto(const store::Route& r, v1::Route* p) {
  p->set_method(r.method);
  p->set_path(r.path);
  p->set_host(r.host);
  p->set_function(r.function);
  p->set_created_unix_ms(r.created_unix_ms);
}

}  // namespace

std::shared_ptr<const gateway::Router> BuildRouter(const std::vector<store::Route>& routes) {
  gateway::RouterBuilder builder;
  for (const store::Route& r : routes) {
    Status added = builder.Add({r.method, r.path, r.host, r.function});
    if (!added.ok()) {
      static auto log = log::Get("control");
      FAAS_LOG(log, warn, "route.skipped", {"method", r.method}, {"path", r.path}, {"host", r.host},
               {"fn", r.function}, {"error", added.message()});
    }
  }
  return std::move(builder).Build();
}

grpc::Status ControlService::AddRoute(grpc::ServerContext* ctx, const v1::AddRouteRequest* req,
                                      v1::Route* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    const v1::Route& in = req->route();
    gateway::RouteSpec spec =
        gateway::NormalizeRoute({in.method(), in.path(), in.host(), in.function()});
    std::lock_guard lock(routes_mu_);
    auto stored = registry_->ListRoutes();
    if (!stored.ok()) {
      return Fail(ctx, "internal", stored.status());
    }
    gateway::RouterBuilder builder;
    for (const store::Route& r : *stored) {
      // Stored routes that no longer validate were logged at startup; they are not served.
      builder.Add({r.method, r.path, r.host, r.function}).IgnoreError();
    }
    Status added = builder.Add(spec);
    if (!added.ok()) {
      return Fail(ctx,
                  added.code() == StatusCode::kAlreadyExists ? "route_conflict" : "invalid_route",
                  added);
    }
    auto route = registry_->AddRoute({spec.method, spec.path, spec.host, spec.function, 0});
    if (!route.ok()) {
      switch (route.status().code()) {
        case StatusCode::kAlreadyExists:
          return Fail(ctx, "route_conflict", route.status());
        case StatusCode::kInvalidArgument:
          return Fail(ctx, "invalid_route", route.status());
        default:
          return Fail(ctx, "internal", route.status());
      }
    }
    if (routes_sink_) {
      routes_sink_(std::move(builder).Build());
    }
    ToProto(*route, reply);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::ListRoutes(grpc::ServerContext* ctx, const v1::ListRoutesRequest*,
                                        v1::ListRoutesReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto routes = registry_->ListRoutes();
    if (!routes.ok()) {
      return Fail(ctx, "internal", routes.status());
    }
    for (const store::Route& r : *routes) {
      ToProto(r, reply->add_routes());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::DeleteRoute(grpc::ServerContext* ctx, const v1::RouteKey* req,
                                         v1::DeleteReply*) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    // Keyed as AddRoute stores it: method upper-cased, host lower-cased, path exact.
    gateway::RouteSpec key = gateway::NormalizeRoute({req->method(), req->path(), req->host(), ""});
    std::lock_guard lock(routes_mu_);
    Status deleted = registry_->DeleteRoute(key.method, key.path, key.host);
    if (!deleted.ok()) {
      return Fail(ctx, deleted.code() == StatusCode::kNotFound ? "route_not_found" : "internal",
                  deleted);
    }
    auto routes = registry_->ListRoutes();
    if (!routes.ok()) {
      return Fail(ctx, "internal", routes.status());
    }
    if (routes_sink_) {
      routes_sink_(BuildRouter(*routes));
    }
    return grpc::Status::OK;
  });
}

}  // namespace faas::daemon
