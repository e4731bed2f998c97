// The control API's API keys: each change is stored, and the rebuilt key table is handed to the
// keys sink. The secret is returned once by CreateKey and never stored.
#include <utility>

#include "faas/base/log.h"
#include "faas/gateway/auth.h"

#include "control_service.h"

namespace faas::daemon {
namespace {

void ToProto(const store::ApiKey& k, v1::ApiKey* p) {
  p->set_id(k.id);
  p->set_tenant(k.tenant);
  for (const auto& f : k.functions) {
    p->add_functions(f);
  }
  p->set_rate_per_sec(k.rate_per_sec);
  p->set_burst(k.burst);
  p->set_created_unix_ms(k.created_unix_ms);
  p->set_revoked_unix_ms(k.revoked_unix_ms);
}

}  // namespace

Result<std::shared_ptr<const gateway::KeyTable>> BuildKeyTable(store::Registry& registry) {
  FAAS_ASSIGN_OR_RETURN(std::vector<store::ApiKey> keys, registry.ListKeys());
  return gateway::KeyTable::Build(std::move(keys));
}

grpc::Status ControlService::PublishKeys() {
  auto table = BuildKeyTable(*registry_);
  if (!table.ok()) {
    return {grpc::StatusCode::INTERNAL, table.status().message()};
  }
  if (deps_.keys_sink) {
    deps_.keys_sink(std::move(*table));
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::CreateKey(grpc::ServerContext* ctx, const v1::CreateKeyRequest* req,
                                       v1::CreateKeyReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    std::lock_guard lock(keys_mu_);
    std::vector<std::string> functions(req->functions().begin(), req->functions().end());
    auto created = registry_->CreateKey(req->tenant(), std::move(functions), req->rate_per_sec(),
                                        req->burst());
    if (!created.ok()) {
      return FailInput(ctx, created.status());
    }
    if (grpc::Status s = PublishKeys(); !s.ok()) {
      return s;
    }
    ToProto(created->first, reply->mutable_key());
    reply->set_secret(created->second);
    static auto log = log::Get("control");
    FAAS_LOG(log, info, "key.created", {"id", created->first.id},
             {"tenant", created->first.tenant});
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest*,
                                      v1::ListKeysReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto keys = registry_->ListKeys();
    if (!keys.ok()) {
      return Fail(ctx, "internal", keys.status());
    }
    for (const auto& k : *keys) {
      ToProto(k, reply->add_keys());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::RevokeKey(grpc::ServerContext* ctx, const v1::KeyId* req,
                                       v1::ApiKey* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    std::lock_guard lock(keys_mu_);
    if (Status s = registry_->RevokeKey(req->id()); !s.ok()) {
      return Fail(ctx, s.code() == StatusCode::kNotFound ? "key_not_found" : "internal", s);
    }
    if (grpc::Status s = PublishKeys(); !s.ok()) {
      return s;
    }
    auto keys = registry_->ListKeys();
    if (keys.ok()) {
      for (const auto& k : *keys) {
        if (k.id == req->id()) {
          ToProto(k, reply);
        }
      }
    }
    static auto log = log::Get("control");
    FAAS_LOG(log, info, "key.revoked", {"id", req->id()});
    return grpc::Status::OK;
  });
}

}  // namespace faas::daemon
