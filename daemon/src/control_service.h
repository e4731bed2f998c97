// The gRPC control API (proto/faas/v1/control.proto) over the registry and the scheduler.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "faas/gateway/router.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/ledger.h"
#include "faas/store/registry.h"
#include "faas/v1/control.grpc.pb.h"

namespace faas::daemon {

// Converts a stored version to what the scheduler runs.
scheduler::FunctionSpec SpecFor(const store::Registry& registry, const store::Version& v);

// Receives each new router after a route change (the daemon hands it to Gateway::SetRoutes).
using RoutesSink = std::function<void(std::shared_ptr<const gateway::Router>)>;

// The router for stored routes. A stored route that no longer validates or conflicts with an
// earlier one is skipped and logged (route.skipped), never fatal.
std::shared_ptr<const gateway::Router> BuildRouter(const std::vector<store::Route>& routes);

class ControlService final : public v1::Control::Service {
 public:
  ControlService(store::Registry* registry, scheduler::Scheduler* scheduler,
                 store::Ledger* ledger, std::string currency_unit, RoutesSink routes_sink = {})
      : registry_(registry),
        scheduler_(scheduler),
        ledger_(ledger),
        currency_unit_(std::move(currency_unit)),
        routes_sink_(std::move(routes_sink)) {}

  grpc::Status Deploy(grpc::ServerContext* ctx, grpc::ServerReader<v1::DeployChunk>* reader,
                      v1::DeployReply* reply) override;
  grpc::Status ListFunctions(grpc::ServerContext* ctx, const v1::ListFunctionsRequest* req,
                             v1::ListFunctionsReply* reply) override;
  grpc::Status DescribeFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                v1::FunctionInfo* reply) override;
  grpc::Status DeleteFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                              v1::DeleteReply* reply) override;
  grpc::Status ListVersions(grpc::ServerContext* ctx, const v1::NameRequest* req,
                            v1::ListVersionsReply* reply) override;
  grpc::Status Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req,
                        v1::VersionInfo* reply) override;
  grpc::Status Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* req,
                      v1::InvokeReply* reply) override;
  grpc::Status GetVersion(grpc::ServerContext* ctx, const v1::VersionRequest* req,
                          v1::VersionReply* reply) override;
  grpc::Status Bill(grpc::ServerContext* ctx, const v1::BillRequest* req,
                    v1::BillReply* reply) override;
  grpc::Status ListInvocations(grpc::ServerContext* ctx, const v1::ListInvocationsRequest* req,
                               v1::ListInvocationsReply* reply) override;
  grpc::Status GetLogs(grpc::ServerContext* ctx, const v1::LogsRequest* req,
                       v1::LogsReply* reply) override;
  grpc::Status Prewarm(grpc::ServerContext* ctx, const v1::PrewarmRequest* req,
                       v1::PrewarmReply* reply) override;
  // Custom routes. Faas codes: invalid_route (INVALID_ARGUMENT), route_conflict
  // (ALREADY_EXISTS, naming the route it conflicts with), route_not_found (NOT_FOUND).
  // Each change is stored, then the router is rebuilt and handed to the routes sink.
  grpc::Status AddRoute(grpc::ServerContext* ctx, const v1::AddRouteRequest* req,
                        v1::Route* reply) override;
  grpc::Status ListRoutes(grpc::ServerContext* ctx, const v1::ListRoutesRequest* req,
                          v1::ListRoutesReply* reply) override;
  grpc::Status DeleteRoute(grpc::ServerContext* ctx, const v1::RouteKey* req,
                           v1::DeleteReply* reply) override;

 private:
  void FillInfo(const store::FunctionRecord& rec, v1::FunctionInfo* info);
  store::Registry* registry_;
  scheduler::Scheduler* scheduler_;
  store::Ledger* ledger_;
  std::string currency_unit_;
  std::mutex deploy_mu_;
  std::set<std::string> deploying_;  // names with a deploy in progress (the loser gets conflict)
  RoutesSink routes_sink_;
  std::mutex routes_mu_;  // serialises route changes: check, store, rebuild, publish
};

}  // namespace faas::daemon
