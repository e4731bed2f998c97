// The control API's function commands (deploy, versions, invoke, prewarm), the ledger's reads,
// the admin check and the mapping of Status to gRPC. Routes, keys and queues are in
// control_routes.cc, control_keys.cc and control_queues.cc.
#include "control_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <variant>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/function.h"
#include "faas/gateway/async_invocations.h"
#include "faas/gateway/errors.h"
#include "faas/store/elf_check.h"

namespace faas::daemon {
namespace {

constexpr const char* kVersion = "0.1.0";

grpc::StatusCode GrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kAborted:
      return grpc::StatusCode::ABORTED;
    case StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
    case StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case StatusCode::kUnknown:
      return grpc::StatusCode::UNKNOWN;
  }
  return grpc::StatusCode::UNKNOWN;
}

store::FunctionConfig FromProto(const v1::FunctionConfig& p) {
  store::FunctionConfig c;
  if (p.memory_mb() != 0) {
    c.memory_mb = p.memory_mb();
  }
  if (p.timeout_ms() != 0) {
    c.timeout = std::chrono::milliseconds(p.timeout_ms());
  }
  if (p.cpu_limit_ms() != 0) {
    c.cpu_limit = std::chrono::milliseconds(p.cpu_limit_ms());
  }
  if (p.has_min_warm() || p.min_warm() != 0) {
    c.min_warm = p.min_warm();
  }
  if (p.max_instances() != 0) {
    c.max_instances = p.max_instances();
  }
  if (p.idle_ttl_ms() != 0) {
    c.idle_ttl = std::chrono::milliseconds(p.idle_ttl_ms());
  }
  if (!p.isolation().empty()) {
    c.isolation = p.isolation();
  }
  if (!p.network().empty()) {
    c.network = p.network();
  }
  c.env.insert(p.env().begin(), p.env().end());
  c.is_public = p.is_public();
  if (p.max_body_bytes() != 0) {
    c.max_body_bytes = p.max_body_bytes();
  }
  if (p.has_queue_depth()) {
    c.queue_depth = p.queue_depth();
  }
  if (p.queue_timeout_ms() != 0) {
    c.queue_timeout = std::chrono::milliseconds(p.queue_timeout_ms());
  }
  c.rate_per_sec = p.rate_per_sec();
  c.burst = p.burst();
  c.idempotent = p.idempotent();
  return c;
}

void ToProto(const store::FunctionConfig& c, v1::FunctionConfig* p) {
  p->set_memory_mb(c.memory_mb);
  p->set_timeout_ms(static_cast<uint64_t>(c.timeout.count()));
  p->set_cpu_limit_ms(
      static_cast<uint64_t>((c.cpu_limit.count() == 0 ? c.timeout : c.cpu_limit).count()));
  p->set_min_warm(c.min_warm);
  p->set_has_min_warm(true);
  p->set_max_instances(c.max_instances);
  p->set_idle_ttl_ms(static_cast<uint64_t>(c.idle_ttl.count()));
  p->set_isolation(c.isolation);
  p->set_network(c.network);
  p->mutable_env()->insert(c.env.begin(), c.env.end());
  p->set_is_public(c.is_public);
  p->set_idempotent(c.idempotent);
  p->set_max_body_bytes(c.max_body_bytes);
  p->set_queue_depth(c.queue_depth);
  p->set_has_queue_depth(true);
  p->set_queue_timeout_ms(static_cast<uint64_t>(store::EffectiveQueueTimeout(c).count()));
  p->set_rate_per_sec(c.rate_per_sec);
  p->set_burst(c.rate_per_sec > 0 ? store::EffectiveBurst(c) : 0);
}

void ToProto(const store::Version& v, bool latest, v1::VersionInfo* p) {
  p->set_function(v.function);
  p->set_version(v.version);
  p->set_content_hash(v.content_hash);
  p->set_artifact_sha256(v.artifact_sha256);
  p->set_size_bytes(v.size_bytes);
  p->set_created_unix_ms(v.created_unix_ms);
  ToProto(v.config, p->mutable_config());
  p->set_latest(latest);
}

void ToProto(const store::BillRow& r, v1::BillRow* p) {
  p->set_key(r.key);
  p->set_invocations(r.invocations);
  p->set_cpu_ms(static_cast<double>(r.cpu_ns) / 1e6);
  p->set_billed_ms(r.billed_ms);
  p->set_cost_micros(r.cost_micros);
  p->set_cold_starts(r.cold_starts);
  p->set_errors(r.errors);
}

}  // namespace

grpc::Status Fail(grpc::ServerContext* ctx, std::string_view code, const Status& s) {
  ctx->AddTrailingMetadata("faas-code", std::string(code));
  return {GrpcCode(s.code()), s.message()};
}

grpc::Status FailStore(grpc::ServerContext* ctx, const Status& s) {
  return Fail(ctx, StoreErrorCode(s), s);
}

grpc::Status FailLedgerSync(grpc::ServerContext* ctx, const Status& s) {
  // Unavailable: the central ledger's PostgreSQL is down or behind; faasd itself answers.
  return Fail(ctx, s.code() == StatusCode::kUnavailable ? "ledger_unavailable" : "internal", s);
}

grpc::Status FailInput(grpc::ServerContext* ctx, const Status& s) {
  return Fail(ctx, s.code() == StatusCode::kInvalidArgument ? "invalid_argument" : "internal", s);
}

bool HasBearer(const grpc::ServerContextBase& ctx, std::string_view want) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  std::string_view given;
  if (it != md.end()) {
    given = std::string_view(it->second.data(), it->second.size());
  }
  constexpr std::string_view kBearer = "Bearer ";
  return !want.empty() && given.starts_with(kBearer) &&
         given.size() - kBearer.size() == want.size() &&
         CRYPTO_memcmp(given.data() + kBearer.size(), want.data(), want.size()) == 0;
}

grpc::Status ControlService::RequireAdmin(grpc::ServerContext* ctx) const {
  if (HasBearer(*ctx, deps_.admin_token)) {
    return grpc::Status::OK;
  }
  const bool given = ctx->client_metadata().count("authorization") != 0;
  return Fail(ctx, "unauthorized",
              Status(StatusCode::kUnauthenticated,
                     !given ? "the control API needs the admin token: pass --token or set "
                              "FAAS_TOKEN (faasd keeps it in <data-dir>/admin-token)"
                            : "wrong admin token"));
}

grpc::Status ControlService::Deploy(grpc::ServerContext* ctx,
                                    grpc::ServerReader<v1::DeployChunk>* reader,
                                    v1::DeployReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    v1::DeployChunk chunk;
    if (!reader->Read(&chunk)) {
      return Fail(ctx, "invalid_argument", InvalidArgumentError("empty deploy stream"));
    }
    DeployRequest request;
    request.name = chunk.name();
    request.config = FromProto(chunk.config());
    request.library = std::move(*chunk.mutable_data());
    while (reader->Read(&chunk)) {
      if (request.library.size() + chunk.data().size() > store::kMaxLibraryBytes) {
        return Fail(ctx, "payload_too_large",
                    ResourceExhaustedError("the library is larger than the 64 MiB limit"));
      }
      request.library += chunk.data();
    }
    DeployOutcome outcome = deployer_.Deploy(request);
    if (const auto* failed = std::get_if<DeployError>(&outcome)) {
      return Fail(ctx, failed->code, failed->status);
    }
    const Deployed& deployed = std::get<Deployed>(outcome);
    ToProto(deployed.version, true, reply->mutable_version());
    reply->set_unchanged(deployed.unchanged);
    reply->set_probe_ms(ToMillis(deployed.probe_time));
    return grpc::Status::OK;
  });
}

void ControlService::FillInfo(const store::FunctionRecord& rec, v1::FunctionInfo* info) {
  info->set_name(rec.name);
  info->set_latest_version(rec.latest_version);
  info->set_version_count(rec.version_count);
  ToProto(rec.latest, true, info->mutable_latest());
  scheduler::FunctionStats st = scheduler_->Stats(rec.name);
  info->set_instances_idle(st.idle);
  info->set_instances_busy(st.busy);
  info->set_invocations(st.invocations);
  info->set_cold_starts(st.cold_starts);
}

grpc::Status ControlService::ListFunctions(grpc::ServerContext* ctx,
                                           const v1::ListFunctionsRequest*,
                                           v1::ListFunctionsReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto list = registry_->ListFunctions();
    if (!list.ok()) {
      return FailStore(ctx, list.status());
    }
    for (const auto& rec : *list) {
      FillInfo(rec, reply->add_functions());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::DescribeFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                              v1::FunctionInfo* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto rec = registry_->GetFunction(req->name());
    if (!rec.ok()) {
      return FailStore(ctx, rec.status());
    }
    FillInfo(*rec, reply);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::DeleteFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                            v1::DeleteReply*) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (Status s = deployer_.Delete(req->name()); !s.ok()) {
      return FailStore(ctx, s);
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::ListVersions(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                          v1::ListVersionsReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto rec = registry_->GetFunction(req->name());
    if (!rec.ok()) {
      return FailStore(ctx, rec.status());
    }
    auto versions = registry_->ListVersions(req->name());
    if (!versions.ok()) {
      return FailStore(ctx, versions.status());
    }
    for (const auto& v : *versions) {
      ToProto(v, v.version == rec->latest_version, reply->add_versions());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req,
                                      v1::VersionInfo* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto v = deployer_.Rollback(req->name(), req->version());
    if (!v.ok()) {
      return Fail(ctx,
                  v.status().code() == StatusCode::kNotFound  ? "version_not_found"
                  : v.status().code() == StatusCode::kAborted ? "conflict"
                                                              : "internal",
                  v.status());
    }
    ToProto(*v, true, reply);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* req,
                                    v1::InvokeReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (req->async()) {
      Result<std::string> id =
          deps_.async->Submit(req->name(), req->path().empty() ? "/" : req->path(), req->query(),
                              req->body(), req->callback_url());
      if (!id.ok()) {
        std::string_view code =
            id.status().code() == StatusCode::kNotFound          ? "function_not_found"
            : id.status().code() == StatusCode::kInvalidArgument ? "invalid_argument"
            : id.status().code() == StatusCode::kUnknown         ? "async_outcome_unknown"
                                                                 : "async_unavailable";
        return Fail(ctx, code, id.status());
      }
      reply->set_invocation_id(*id);
      reply->set_status(202);
      return grpc::Status::OK;
    }
    scheduler::InvokeRequest ir;
    ir.invocation_id = NewInvocationId();
    ir.method = req->method().empty() ? "POST" : req->method();
    ir.path = req->path().empty() ? "/" : req->path();
    ir.query = req->query();
    ir.body = req->body();
    ir.fresh = req->fresh();
    std::string inv_id = ir.invocation_id;
    scheduler::InvokeResult r = scheduler_->Invoke(req->name(), std::move(ir));
    reply->set_invocation_id(inv_id);
    reply->set_cold_start(r.cold_start);
    reply->set_cpu_ms(ToMillis(r.cpu));
    reply->set_logs(std::move(r.logs));
    auto add_timing = [&](const char* phase, std::chrono::nanoseconds d) {
      auto* t = reply->add_timings();
      t->set_phase(phase);
      t->set_ms(ToMillis(d));
    };
    add_timing("queue", r.timings.queue);
    if (r.cold_start) {
      add_timing("spawn", r.timings.spawn);
      add_timing("load", r.timings.load);
      add_timing("init", r.timings.init);
      add_timing("cold", r.timings.cold);
    }
    add_timing("exec", r.timings.exec);
    if (r.outcome == scheduler::Outcome::kOk) {
      reply->set_status(r.status);
      for (auto& [k, v] : r.headers) {
        auto* h = reply->add_headers();
        h->set_name(k);
        h->set_value(v);
      }
      reply->set_body(std::move(r.body));
    } else {
      gateway::HttpError e = gateway::ToHttpError(r.outcome);
      reply->set_status(e.status);
      reply->set_error_code(e.code);
      reply->set_error_message(r.error_message);
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::GetVersion(grpc::ServerContext*, const v1::VersionRequest*,
                                        v1::VersionReply* reply) {
  reply->set_version(kVersion);
  reply->set_abi(std::to_string(FAAS_ABI_VERSION));
  return grpc::Status::OK;
}

grpc::Status ControlService::Bill(grpc::ServerContext* ctx, const v1::BillRequest* req,
                                  v1::BillReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    // Rows appended just now may still be in the writer's queue (or the shipper's): sync so a
    // bill is complete.
    Status flushed = reader_->Sync();
    if (!flushed.ok()) {
      return FailLedgerSync(ctx, flushed);
    }
    auto rows = reader_->Bill({.function = req->function(),
                               .since_unix_ms = req->since_unix_ms(),
                               .until_unix_ms = req->until_unix_ms(),
                               .by = req->by()});
    if (!rows.ok()) {
      return FailStore(ctx, rows.status());
    }
    for (std::size_t i = 0; i + 1 < rows->size(); ++i) {
      ToProto((*rows)[i], reply->add_rows());
    }
    ToProto(rows->back(), reply->mutable_total());
    reply->set_currency_unit(currency_unit_);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::ListInvocations(grpc::ServerContext* ctx,
                                             const v1::ListInvocationsRequest* req,
                                             v1::ListInvocationsReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    Status flushed = reader_->Sync();
    if (!flushed.ok()) {
      return FailLedgerSync(ctx, flushed);
    }
    uint32_t last = req->last() == 0 ? 20 : std::min<uint32_t>(req->last(), 1000);
    auto list = reader_->List(req->function(), last, req->outcome());
    if (!list.ok()) {
      return FailStore(ctx, list.status());
    }
    for (const auto& r : *list) {
      v1::InvocationRecord* p = reply->add_invocations();
      p->set_invocation_id(r.invocation_id);
      p->set_function(r.function);
      p->set_version(r.version);
      p->set_trigger(r.trigger);
      p->set_kind(r.kind);
      p->set_start_unix_ms(r.start_unix_ms);
      p->set_wall_ns(r.wall_ns);
      p->set_cpu_ns(r.cpu_ns);
      p->set_billed_ms(r.billed_ms);
      p->set_cost_micros(r.cost_micros);
      p->set_peak_memory_bytes(r.peak_memory_bytes);
      p->set_cold_start(r.cold_start);
      p->set_outcome(r.outcome);
      p->set_error_code(r.error_code);
      p->set_queue_ns(r.queue_ns);
      p->set_spawn_ns(r.spawn_ns);
      p->set_load_ns(r.load_ns);
      p->set_init_ns(r.init_ns);
      p->set_exec_ns(r.exec_ns);
      p->set_tenant(r.tenant);
      p->set_queue(r.queue);
      p->set_message_id(r.message_id);
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Prewarm(grpc::ServerContext* ctx, const v1::PrewarmRequest* req,
                                     v1::PrewarmReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (req->count() == 0 || req->count() > 1000) {
      return Fail(
          ctx, "invalid_argument",
          InvalidArgumentError("count " + std::to_string(req->count()) + " must be 1..1000"));
    }
    auto started = scheduler_->Prewarm(req->name(), req->count());
    if (!started.ok()) {
      if (started.status().code() == StatusCode::kNotFound) {
        return Fail(ctx, "function_not_found", started.status());
      }
      return Fail(ctx, "init_failed", started.status());
    }
    reply->set_started(*started);
    reply->set_idle(scheduler_->Stats(req->name()).idle);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::GetLogs(grpc::ServerContext* ctx, const v1::LogsRequest* req,
                                     v1::LogsReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto fn = registry_->GetFunction(req->function());
    if (!fn.ok()) {
      return FailStore(ctx, fn.status());
    }
    Status flushed = reader_->Sync();
    if (!flushed.ok()) {
      return FailLedgerSync(ctx, flushed);
    }
    uint32_t last = req->last() == 0 ? 20 : std::min<uint32_t>(req->last(), 1000);
    auto logs = reader_->Logs(req->function(), req->invocation_id(), last, req->after_seq());
    if (!logs.ok()) {
      return FailStore(ctx, logs.status());
    }
    for (auto& l : *logs) {
      v1::LogEntry* e = reply->add_entries();
      e->set_seq(l.seq);
      e->set_invocation_id(l.invocation_id);
      e->set_start_unix_ms(l.start_unix_ms);
      e->set_text(std::move(l.text));
    }
    return grpc::Status::OK;
  });
}

}  // namespace faas::daemon
