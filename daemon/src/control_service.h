// The gRPC control API (proto/faas/v1/control.proto) over the registry and the scheduler.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "faas/scheduler/scheduler.h"
#include "faas/store/ledger.h"
#include "faas/store/registry.h"
#include "faas/v1/control.grpc.pb.h"

namespace faas::daemon {

// Converts a stored version to what the scheduler runs.
scheduler::FunctionSpec SpecFor(const store::Registry& registry, const store::Version& v);

class ControlService final : public v1::Control::Service {
 public:
  ControlService(store::Registry* registry, scheduler::Scheduler* scheduler,
                 store::Ledger* ledger, std::string currency_unit)
      : registry_(registry),
        scheduler_(scheduler),
        ledger_(ledger),
        currency_unit_(std::move(currency_unit)) {}

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

 private:
  void FillInfo(const store::FunctionRecord& rec, v1::FunctionInfo* info);
  store::Registry* registry_;
  scheduler::Scheduler* scheduler_;
  store::Ledger* ledger_;
  std::string currency_unit_;
  std::mutex deploy_mu_;
  std::set<std::string> deploying_;  // names with a deploy in progress (the loser gets conflict)
};

}  // namespace faas::daemon
