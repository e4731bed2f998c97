// The gRPC control API (proto/faas/v1/control.proto) over the registry and the scheduler. Its
// methods translate messages and map Status to gRPC; workflows live below it (deploy.h).
// Implemented by concern: control_service.cc (functions, invocations, ledger, the admin check),
// control_routes.cc, control_keys.cc, control_queues.cc (triggers, queue, async results).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/gateway/async_invocations.h"
#include "faas/gateway/auth.h"
#include "faas/gateway/router.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/ledger.h"
#include "faas/store/nodes.h"
#include "faas/store/queue.h"
#include "faas/store/registry.h"
#include "faas/triggers/triggers.h"
#include "faas/v1/control.grpc.pb.h"

#include "deploy.h"
#include "grpc_auth.h"

namespace faas::daemon {

// A failed call: the stable faas code in trailing metadata "faas-code", the Status's code as the
// gRPC code and its message for people.
grpc::Status Fail(grpc::ServerContext* ctx, std::string_view code, const Status& s);
// Fail with the default code for a store error (StoreErrorCode).
grpc::Status FailStore(grpc::ServerContext* ctx, const Status& s);
// Fail after a ledger Sync: ledger_unavailable for Unavailable (the central ledger cannot be
// reached), else internal.
grpc::Status FailLedgerSync(grpc::ServerContext* ctx, const Status& s);
// Fail with invalid_argument for InvalidArgument (the caller's input is wrong), else internal.
grpc::Status FailInput(grpc::ServerContext* ctx, const Status& s);

// Receives each new router after a route change (the daemon hands it to Gateway::SetRoutes).
using RoutesSink = std::function<void(std::shared_ptr<const gateway::Router>)>;

// The router for stored routes. A stored route that no longer validates or conflicts with an
// earlier one is skipped and logged (route.skipped), never fatal.
std::shared_ptr<const gateway::Router> BuildRouter(const std::vector<store::Route>& routes);

// Receives the API-key table after each key change (the daemon hands it to Gateway::SetKeys).
using KeysSink = std::function<void(std::shared_ptr<const gateway::KeyTable>)>;

// The key table of the stored keys (revoked ones included, so they answer "revoked").
Result<std::shared_ptr<const gateway::KeyTable>> BuildKeyTable(store::Registry& registry);

struct ControlDeps {
  store::Registry* registry = nullptr;
  Runtime* scheduler = nullptr;  // where versions run: LocalRuntime, or the nodes (gateway role)
  store::Ledger* ledger = nullptr;
  // What Bill, ListInvocations and GetLogs read: the central ledger on a PostgreSQL store
  // (docs/design/0020-central-ledger.md); null: `ledger`.
  store::LedgerReader* ledger_reader = nullptr;
  std::string currency_unit;
  RoutesSink routes_sink;
  KeysSink keys_sink;
  // Every pointer is required (not owned).
  store::Queue* queue = nullptr;                 // the embedded queue
  triggers::TriggerManager* triggers = nullptr;  // user triggers
  gateway::AsyncInvocations* async = nullptr;    // `faasctl invoke --async`, `faasctl async`
  std::string admin_token;                       // every call but GetVersion needs it
  // The cluster's node registry (PostgreSQL store); null on SQLite, where ListNodes and
  // DrainNode answer not_clustered. Not owned.
  store::NodeRegistry* nodes = nullptr;
  // On a gateway: each node's instances per function (RemoteInvoker::NodeStats), which ListNodes
  // adds to the registry's rows. Null elsewhere: ListNodes leaves those fields unset.
  std::function<std::map<std::string, std::map<std::string, scheduler::FunctionStats>>()>
      node_stats;
};

// Every call except GetVersion needs "authorization: Bearer <admin token>" (faas code
// "unauthorized", UNAUTHENTICATED), compared in constant time.
class ControlService final : public v1::Control::Service {
 public:
  explicit ControlService(ControlDeps deps)
      : registry_(deps.registry),
        scheduler_(deps.scheduler),
        ledger_(deps.ledger),
        reader_(deps.ledger_reader != nullptr ? deps.ledger_reader : deps.ledger),
        currency_unit_(std::move(deps.currency_unit)),
        routes_sink_(std::move(deps.routes_sink)),
        deps_(std::move(deps)),
        deployer_(registry_, scheduler_) {
    FAAS_CHECK(registry_ != nullptr && scheduler_ != nullptr && ledger_ != nullptr &&
               deps_.queue != nullptr && deps_.triggers != nullptr && deps_.async != nullptr);
  }

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
  // API keys. The secret is returned once by CreateKey and never stored.
  grpc::Status CreateKey(grpc::ServerContext* ctx, const v1::CreateKeyRequest* req,
                         v1::CreateKeyReply* reply) override;
  grpc::Status ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest* req,
                        v1::ListKeysReply* reply) override;
  grpc::Status RevokeKey(grpc::ServerContext* ctx, const v1::KeyId* req,
                         v1::ApiKey* reply) override;
  // Queue triggers. Faas codes: invalid_trigger, trigger_exists, trigger_not_found.
  grpc::Status AddTrigger(grpc::ServerContext* ctx, const v1::AddTriggerRequest* req,
                          v1::TriggerStatus* reply) override;
  grpc::Status ListTriggers(grpc::ServerContext* ctx, const v1::ListTriggersRequest* req,
                            v1::ListTriggersReply* reply) override;
  grpc::Status PauseTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                            v1::TriggerStatus* reply) override;
  grpc::Status ResumeTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                             v1::TriggerStatus* reply) override;
  grpc::Status DeleteTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                             v1::DeleteReply* reply) override;
  // The embedded queue.
  grpc::Status Publish(grpc::ServerContext* ctx, const v1::PublishRequest* req,
                       v1::PublishReply* reply) override;
  grpc::Status GetQueueStats(grpc::ServerContext* ctx, const v1::QueueName* req,
                             v1::QueueStats* reply) override;
  grpc::Status ListDead(grpc::ServerContext* ctx, const v1::ListDeadRequest* req,
                        v1::ListDeadReply* reply) override;
  // faas code invocation_not_found (NOT_FOUND) for an unknown or expired id.
  grpc::Status GetAsyncInvocation(grpc::ServerContext* ctx, const v1::KeyId* req,
                                  v1::AsyncInvocation* reply) override;
  // Cluster nodes (control_nodes.cc). Faas codes: not_clustered (FAILED_PRECONDITION, no
  // node registry), node_not_found, node_dead, store_unavailable (UNAVAILABLE).
  grpc::Status ListNodes(grpc::ServerContext* ctx, const v1::ListNodesRequest* req,
                         v1::ListNodesReply* reply) override;
  grpc::Status DrainNode(grpc::ServerContext* ctx, const v1::DrainNodeRequest* req,
                         v1::ClusterNode* reply) override;

 private:
  void FillInfo(const store::FunctionRecord& rec, v1::FunctionInfo* info);
  // OK for "authorization: Bearer <admin token>" (compared in constant time), else the
  // UNAUTHENTICATED status to return (faas code "unauthorized").
  grpc::Status RequireAdmin(grpc::ServerContext* ctx) const;
  // Every method but GetVersion is `return AsAdmin(ctx, [&] { ... });`: the body runs only for
  // the admin. tests/e2e/control_auth_test.cc calls every method without the token.
  template <typename Body>
  grpc::Status AsAdmin(grpc::ServerContext* ctx, Body&& body) const {
    if (grpc::Status denied = RequireAdmin(ctx); !denied.ok()) {
      return denied;
    }
    return std::forward<Body>(body)();
  }
  grpc::Status PublishKeys();
  // After a trigger change: the change's error, or the trigger's status now.
  grpc::Status TriggerReply(grpc::ServerContext* ctx, const Status& changed,
                            const std::string& name, v1::TriggerStatus* reply);
  store::Registry* registry_;
  Runtime* scheduler_;
  store::Ledger* ledger_;
  store::LedgerReader* reader_;
  std::string currency_unit_;
  RoutesSink routes_sink_;
  std::mutex routes_mu_;  // serialises route changes: check, store, rebuild, publish
  ControlDeps deps_;
  std::mutex keys_mu_;  // serialises key changes: store, rebuild, publish
  Deployer deployer_;   // deploy, rollback, delete
};

}  // namespace faas::daemon
