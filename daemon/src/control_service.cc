#include "control_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string_view>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/scope_exit.h"
#include "faas/function.h"
#include "faas/gateway/async_invocations.h"
#include "faas/gateway/errors.h"
#include "faas/store/elf_check.h"
#include "faas/store/hash.h"

namespace faas::daemon {
namespace {

constexpr std::size_t kMaxLibraryBytes = 64u << 20;
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
  }
  return grpc::StatusCode::UNKNOWN;
}

// A failed call: the stable code in trailing metadata "faas-code", the message for people.
grpc::Status Fail(grpc::ServerContext* ctx, std::string_view code, const Status& s) {
  ctx->AddTrailingMetadata("faas-code", std::string(code));
  return {GrpcCode(s.code()), s.message()};
}

// Default code for a store error.
grpc::Status FailStore(grpc::ServerContext* ctx, const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Fail(ctx, "function_not_found", s);
    case StatusCode::kInvalidArgument:
      return Fail(ctx, "invalid_argument", s);
    default:
      return Fail(ctx, "internal", s);
  }
}

store::FunctionConfig FromProto(const v1::FunctionConfig& p) {
  store::FunctionConfig c;
  if (p.memory_mb() != 0)
    c.memory_mb = p.memory_mb();
  if (p.timeout_ms() != 0)
    c.timeout = std::chrono::milliseconds(p.timeout_ms());
  if (p.cpu_limit_ms() != 0)
    c.cpu_limit = std::chrono::milliseconds(p.cpu_limit_ms());
  if (p.has_min_warm() || p.min_warm() != 0)
    c.min_warm = p.min_warm();
  if (p.max_instances() != 0)
    c.max_instances = p.max_instances();
  if (p.idle_ttl_ms() != 0)
    c.idle_ttl = std::chrono::milliseconds(p.idle_ttl_ms());
  if (!p.isolation().empty())
    c.isolation = p.isolation();
  if (!p.network().empty())
    c.network = p.network();
  c.env.insert(p.env().begin(), p.env().end());
  c.is_public = p.is_public();
  if (p.max_body_bytes() != 0)
    c.max_body_bytes = p.max_body_bytes();
  if (p.has_queue_depth())
    c.queue_depth = p.queue_depth();
  if (p.queue_timeout_ms() != 0)
    c.queue_timeout = std::chrono::milliseconds(p.queue_timeout_ms());
  c.rate_per_sec = p.rate_per_sec();
  c.burst = p.burst();
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

}  // namespace

scheduler::FunctionSpec SpecFor(const store::Registry& registry, const store::Version& v) {
  return {v.function, v.version, registry.ArtifactPath(v.artifact_sha256), v.config, v.uid};
}

grpc::Status ControlService::Deploy(grpc::ServerContext* ctx,
                                    grpc::ServerReader<v1::DeployChunk>* reader,
                                    v1::DeployReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  v1::DeployChunk chunk;
  if (!reader->Read(&chunk)) {
    return Fail(ctx, "invalid_argument", InvalidArgumentError("empty deploy stream"));
  }
  std::string name = chunk.name();
  store::FunctionConfig cfg = FromProto(chunk.config());
  std::string library = std::move(*chunk.mutable_data());
  while (reader->Read(&chunk)) {
    if (library.size() + chunk.data().size() > kMaxLibraryBytes) {
      return Fail(ctx, "payload_too_large",
                  ResourceExhaustedError("the library is larger than the 64 MiB limit"));
    }
    library += chunk.data();
  }
  Status name_ok = store::ValidateName(name);
  Status cfg_ok = store::ValidateConfig(cfg);
  if (!name_ok.ok() || !cfg_ok.ok()) {
    std::string msg = name_ok.ok() ? "" : name_ok.message();
    if (!cfg_ok.ok()) {
      msg += (msg.empty() ? "" : "; ") + cfg_ok.message();
    }
    return Fail(ctx, name_ok.ok() ? "invalid_config" : "invalid_name", InvalidArgumentError(msg));
  }
  if (cfg.network == "outbound") {
    if (Status net = scheduler_->OutboundNetworkAvailable(); !net.ok()) {
      return Fail(ctx, "invalid_config", net);  // fail closed: never the host's network
    }
  }
  {
    std::lock_guard lock(deploy_mu_);
    if (!deploying_.insert(name).second) {
      return Fail(ctx, "conflict",
                  AbortedError("another deploy of \"" + name + "\" is in progress; retry"));
    }
  }
  ScopeExit done([&] {
    std::lock_guard lock(deploy_mu_);
    deploying_.erase(name);
  });

  auto elf = store::CheckFunctionElf(library);
  if (!elf.ok()) {
    return Fail(ctx, "invalid_artifact", elf.status());
  }
  auto sha = registry_->PutArtifact(library);
  if (!sha.ok()) {
    return Fail(ctx, "internal", sha.status());
  }
  // Load the library once in a separate worker before it can become latest: a library that
  // cannot load or whose faas_init fails never replaces a working version.
  // The probe runs the function's code, so it runs as the function's own uid already.
  auto uid = registry_->ReserveUid(name);
  if (!uid.ok()) {
    return FailStore(ctx, uid.status());
  }
  scheduler::FunctionSpec probe{name, 0, registry_->ArtifactPath(*sha), cfg, *uid};
  std::chrono::nanoseconds took{0};
  Status probed = scheduler_->Probe(probe, &took);
  if (!probed.ok()) {
    bool timeout = probed.code() == StatusCode::kDeadlineExceeded;
    bool lib_fault = timeout || probed.code() == StatusCode::kFailedPrecondition;
    return Fail(ctx, timeout ? "init_timeout" : (lib_fault ? "init_failed" : "internal"),
                Status(lib_fault ? StatusCode::kFailedPrecondition : probed.code(),
                       "the library failed to start: " + probed.message()));
  }
  auto created = registry_->CreateVersion(name, *sha, cfg);
  if (!created.ok()) {
    return FailStore(ctx, created.status());
  }
  scheduler_->SetFunction(SpecFor(*registry_, created->version));
  ToProto(created->version, true, reply->mutable_version());
  reply->set_unchanged(created->unchanged);
  reply->set_probe_ms(ToMillis(took));
  static auto log = log::Get("control");
  FAAS_LOG(log, info, "function.deployed", {"fn", name}, {"version", created->version.version},
           {"unchanged", created->unchanged}, {"sha256", *sha}, {"probe_ms", ToMillis(took)});
  return grpc::Status::OK;
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
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto list = registry_->ListFunctions();
  if (!list.ok()) {
    return FailStore(ctx, list.status());
  }
  for (const auto& rec : *list) {
    FillInfo(rec, reply->add_functions());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::DescribeFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                              v1::FunctionInfo* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto rec = registry_->GetFunction(req->name());
  if (!rec.ok()) {
    return FailStore(ctx, rec.status());
  }
  FillInfo(*rec, reply);
  return grpc::Status::OK;
}

grpc::Status ControlService::DeleteFunction(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                            v1::DeleteReply*) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  Status s = registry_->Delete(req->name());
  if (!s.ok()) {
    return FailStore(ctx, s);
  }
  scheduler_->RemoveFunction(req->name());
  return grpc::Status::OK;
}

grpc::Status ControlService::ListVersions(grpc::ServerContext* ctx, const v1::NameRequest* req,
                                          v1::ListVersionsReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
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
}

grpc::Status ControlService::Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req,
                                      v1::VersionInfo* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto v = registry_->Rollback(req->name(), req->version());
  if (!v.ok()) {
    return Fail(ctx, v.status().code() == StatusCode::kNotFound ? "version_not_found" : "internal",
                v.status());
  }
  scheduler_->SetFunction(SpecFor(*registry_, *v));
  ToProto(*v, true, reply);
  return grpc::Status::OK;
}

grpc::Status ControlService::Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* req,
                                    v1::InvokeReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (req->async()) {
    Result<std::string> id =
        deps_.async->Submit(req->name(), req->path().empty() ? "/" : req->path(), req->query(),
                            req->body(), req->callback_url());
    if (!id.ok()) {
      std::string_view code = id.status().code() == StatusCode::kNotFound ? "function_not_found"
                              : id.status().code() == StatusCode::kInvalidArgument
                                  ? "invalid_argument"
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
}

grpc::Status ControlService::GetVersion(grpc::ServerContext*, const v1::VersionRequest*,
                                        v1::VersionReply* reply) {
  reply->set_version(kVersion);
  reply->set_abi(std::to_string(FAAS_ABI_VERSION));
  return grpc::Status::OK;
}

namespace {

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

grpc::Status ControlService::Bill(grpc::ServerContext* ctx, const v1::BillRequest* req,
                                  v1::BillReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  // Rows appended just now may still be in the writer's queue: flush so a bill is complete.
  Status flushed = ledger_->Flush();
  if (!flushed.ok()) {
    return Fail(ctx, "internal", flushed);
  }
  auto rows = ledger_->Bill({.function = req->function(),
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
}

grpc::Status ControlService::ListInvocations(grpc::ServerContext* ctx,
                                             const v1::ListInvocationsRequest* req,
                                             v1::ListInvocationsReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  Status flushed = ledger_->Flush();
  if (!flushed.ok()) {
    return Fail(ctx, "internal", flushed);
  }
  uint32_t last = req->last() == 0 ? 20 : std::min<uint32_t>(req->last(), 1000);
  auto list = ledger_->List(req->function(), last, req->outcome());
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
}

grpc::Status ControlService::Prewarm(grpc::ServerContext* ctx, const v1::PrewarmRequest* req,
                                     v1::PrewarmReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (req->count() == 0 || req->count() > 1000) {
    return Fail(ctx, "invalid_argument",
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
}

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

namespace {

void ToProto(const store::Route& r, v1::Route* p) {
  p->set_method(r.method);
  p->set_path(r.path);
  p->set_host(r.host);
  p->set_function(r.function);
  p->set_created_unix_ms(r.created_unix_ms);
}

}  // namespace

grpc::Status ControlService::AddRoute(grpc::ServerContext* ctx, const v1::AddRouteRequest* req,
                                      v1::Route* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
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
}

grpc::Status ControlService::ListRoutes(grpc::ServerContext* ctx, const v1::ListRoutesRequest*,
                                        v1::ListRoutesReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto routes = registry_->ListRoutes();
  if (!routes.ok()) {
    return Fail(ctx, "internal", routes.status());
  }
  for (const store::Route& r : *routes) {
    ToProto(r, reply->add_routes());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::DeleteRoute(grpc::ServerContext* ctx, const v1::RouteKey* req,
                                         v1::DeleteReply*) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
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
}

grpc::Status ControlService::GetLogs(grpc::ServerContext* ctx, const v1::LogsRequest* req,
                                     v1::LogsReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto fn = registry_->GetFunction(req->function());
  if (!fn.ok()) {
    return FailStore(ctx, fn.status());
  }
  Status flushed = ledger_->Flush();
  if (!flushed.ok()) {
    return Fail(ctx, "internal", flushed);
  }
  uint32_t last = req->last() == 0 ? 20 : std::min<uint32_t>(req->last(), 1000);
  auto logs = ledger_->Logs(req->function(), req->invocation_id(), last, req->after_seq());
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
}

}  // namespace faas::daemon

// --- admin token, API keys, triggers, the embedded queue ---

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

triggers::TriggerSpec FromProto(const v1::Trigger& t) {
  triggers::TriggerSpec s;
  s.name = t.name();
  s.function = t.function();
  s.source = t.source();
  s.stream = t.stream();
  s.group = t.group();
  s.queue = t.queue();
  if (t.batch() != 0)
    s.batch = t.batch();
  if (t.concurrency() != 0)
    s.concurrency = t.concurrency();
  if (t.max_attempts() != 0)
    s.max_attempts = t.max_attempts();
  if (t.backoff_min_ms() != 0)
    s.backoff_min = std::chrono::milliseconds(t.backoff_min_ms());
  if (t.backoff_max_ms() != 0)
    s.backoff_max = std::chrono::milliseconds(t.backoff_max_ms());
  s.dlq = t.dlq();
  s.visibility_timeout = std::chrono::milliseconds(t.visibility_timeout_ms());
  s.paused = t.paused();
  return s;
}

void ToProto(const triggers::TriggerStatus& st, v1::TriggerStatus* p) {
  v1::Trigger* t = p->mutable_trigger();
  const triggers::TriggerSpec& s = st.spec;
  t->set_name(s.name);
  t->set_function(s.function);
  t->set_source(s.source);
  t->set_stream(s.stream);
  t->set_group(s.group);
  t->set_queue(s.queue);
  t->set_batch(s.batch);
  t->set_concurrency(s.concurrency);
  t->set_max_attempts(s.max_attempts);
  t->set_backoff_min_ms(static_cast<uint64_t>(s.backoff_min.count()));
  t->set_backoff_max_ms(static_cast<uint64_t>(s.backoff_max.count()));
  t->set_dlq(s.dlq);
  t->set_visibility_timeout_ms(static_cast<uint64_t>(s.visibility_timeout.count()));
  t->set_paused(s.paused);
  p->set_state(st.state);
  p->set_last_error(st.last_error);
  p->set_lag(st.lag);
  p->set_in_flight(st.in_flight);
  p->set_delivered(st.delivered);
  p->set_failed(st.failed);
  p->set_dead_lettered(st.dead_lettered);
}

grpc::Status TriggerFail(grpc::ServerContext* ctx, const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Fail(ctx, "trigger_not_found", s);
    case StatusCode::kAlreadyExists:
      return Fail(ctx, "trigger_exists", s);
    case StatusCode::kInvalidArgument:
      return Fail(ctx, "invalid_trigger", s);
    default:
      return Fail(ctx, "internal", s);
  }
}

}  // namespace

Result<std::shared_ptr<const gateway::KeyTable>> BuildKeyTable(store::Registry& registry) {
  FAAS_ASSIGN_OR_RETURN(std::vector<store::ApiKey> keys, registry.ListKeys());
  return gateway::KeyTable::Build(std::move(keys));
}

grpc::Status ControlService::Admin(grpc::ServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  std::string_view given;
  if (it != md.end()) {
    given = std::string_view(it->second.data(), it->second.size());
  }
  constexpr std::string_view kBearer = "Bearer ";
  const std::string& want = deps_.admin_token;
  bool ok = !want.empty() && given.starts_with(kBearer) &&
            given.size() - kBearer.size() == want.size() &&
            CRYPTO_memcmp(given.data() + kBearer.size(), want.data(), want.size()) == 0;
  if (ok) {
    return grpc::Status::OK;
  }
  return Fail(ctx, "unauthorized",
              Status(StatusCode::kUnauthenticated,
                     given.empty() ? "the control API needs the admin token: pass --token or set "
                                     "FAAS_TOKEN (faasd keeps it in <data-dir>/admin-token)"
                                   : "wrong admin token"));
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
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  std::lock_guard lock(keys_mu_);
  std::vector<std::string> functions(req->functions().begin(), req->functions().end());
  auto created =
      registry_->CreateKey(req->tenant(), std::move(functions), req->rate_per_sec(), req->burst());
  if (!created.ok()) {
    return Fail(
        ctx,
        created.status().code() == StatusCode::kInvalidArgument ? "invalid_argument" : "internal",
        created.status());
  }
  if (grpc::Status s = PublishKeys(); !s.ok()) {
    return s;
  }
  ToProto(created->first, reply->mutable_key());
  reply->set_secret(created->second);
  static auto log = log::Get("control");
  FAAS_LOG(log, info, "key.created", {"id", created->first.id}, {"tenant", created->first.tenant});
  return grpc::Status::OK;
}

grpc::Status ControlService::ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest*,
                                      v1::ListKeysReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto keys = registry_->ListKeys();
  if (!keys.ok()) {
    return Fail(ctx, "internal", keys.status());
  }
  for (const auto& k : *keys) {
    ToProto(k, reply->add_keys());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::RevokeKey(grpc::ServerContext* ctx, const v1::KeyId* req,
                                       v1::ApiKey* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
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
}

grpc::Status ControlService::TriggerReply(grpc::ServerContext* ctx, const std::string& name,
                                          v1::TriggerStatus* reply) {
  auto st = deps_.triggers->Get(name);
  if (!st.ok()) {
    return TriggerFail(ctx, st.status());
  }
  ToProto(*st, reply);
  return grpc::Status::OK;
}

grpc::Status ControlService::AddTrigger(grpc::ServerContext* ctx, const v1::AddTriggerRequest* req,
                                        v1::TriggerStatus* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  triggers::TriggerSpec spec = FromProto(req->trigger());
  std::shared_ptr<const scheduler::FunctionSpec> fn = scheduler_->Current(spec.function);
  if (fn == nullptr) {
    return Fail(ctx, "function_not_found",
                NotFoundError("function \"" + spec.function + "\" does not exist"));
  }
  if (spec.visibility_timeout.count() == 0) {
    // A delivery may run for the function's whole timeout (plus a queue wait) before it is
    // presumed lost.
    spec.visibility_timeout = fn->config.timeout + std::chrono::seconds(30);
  } else if (spec.visibility_timeout <= fn->config.timeout) {
    return Fail(ctx, "invalid_trigger",
                InvalidArgumentError(
                    "visibility timeout " + FormatDuration(spec.visibility_timeout) +
                    " must exceed the function's timeout " + FormatDuration(fn->config.timeout)));
  }
  std::string name = spec.name;
  if (Status s = deps_.triggers->Add(std::move(spec)); !s.ok()) {
    return TriggerFail(ctx, s);
  }
  static auto log = log::Get("control");
  FAAS_LOG(log, info, "trigger.added", {"name", name}, {"fn", req->trigger().function()});
  return TriggerReply(ctx, name, reply);
}

grpc::Status ControlService::ListTriggers(grpc::ServerContext* ctx, const v1::ListTriggersRequest*,
                                          v1::ListTriggersReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  for (const auto& st : deps_.triggers->List()) {
    ToProto(st, reply->add_triggers());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::PauseTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                          v1::TriggerStatus* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (Status s = deps_.triggers->Pause(req->name()); !s.ok()) {
    return TriggerFail(ctx, s);
  }
  return TriggerReply(ctx, req->name(), reply);
}

grpc::Status ControlService::ResumeTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                           v1::TriggerStatus* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (Status s = deps_.triggers->Resume(req->name()); !s.ok()) {
    return TriggerFail(ctx, s);
  }
  return TriggerReply(ctx, req->name(), reply);
}

grpc::Status ControlService::DeleteTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                           v1::DeleteReply*) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (Status s = deps_.triggers->Delete(req->name()); !s.ok()) {
    return TriggerFail(ctx, s);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::Publish(grpc::ServerContext* ctx, const v1::PublishRequest* req,
                                     v1::PublishReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (req->queue().starts_with("_")) {
    return Fail(ctx, "invalid_argument",
                InvalidArgumentError("queue names starting with _ are the platform's"));
  }
  store::QueueHeaders headers;
  for (const auto& h : req->headers()) {
    headers.emplace_back(h.name(), h.value());
  }
  auto id = deps_.queue->Publish(req->queue(), req->body(), headers);
  if (!id.ok()) {
    return Fail(
        ctx, id.status().code() == StatusCode::kInvalidArgument ? "invalid_argument" : "internal",
        id.status());
  }
  reply->set_message_id(std::to_string(*id));
  return grpc::Status::OK;
}

grpc::Status ControlService::GetQueueStats(grpc::ServerContext* ctx, const v1::QueueName* req,
                                           v1::QueueStats* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  auto st = deps_.queue->Stats(req->queue());
  if (!st.ok()) {
    return Fail(
        ctx, st.status().code() == StatusCode::kInvalidArgument ? "invalid_argument" : "internal",
        st.status());
  }
  reply->set_queue(st->queue);
  reply->set_ready(st->ready);
  reply->set_delayed(st->delayed);
  reply->set_in_flight(st->in_flight);
  reply->set_dead(st->dead);
  reply->set_published(st->published);
  reply->set_acked(st->acked);
  reply->set_oldest_ready_unix_ms(st->oldest_ready_unix_ms);
  return grpc::Status::OK;
}

grpc::Status ControlService::ListDead(grpc::ServerContext* ctx, const v1::ListDeadRequest* req,
                                      v1::ListDeadReply* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  if (req->replay()) {
    auto n = deps_.queue->ReplayDead(req->queue());
    if (!n.ok()) {
      return Fail(ctx, "internal", n.status());
    }
    reply->set_replayed(*n);
    return grpc::Status::OK;
  }
  auto dead = deps_.queue->ListDead(req->queue(), req->limit() == 0 ? 100 : req->limit());
  if (!dead.ok()) {
    return Fail(
        ctx, dead.status().code() == StatusCode::kInvalidArgument ? "invalid_argument" : "internal",
        dead.status());
  }
  for (const auto& d : *dead) {
    v1::DeadMessage* m = reply->add_messages();
    m->set_message_id(std::to_string(d.message.id));
    m->set_origin_queue(d.origin_queue);
    m->set_body(d.message.body);
    m->set_error(d.error);
    m->set_attempts(d.message.attempt);
    m->set_dead_unix_ms(d.dead_unix_ms);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetAsyncInvocation(grpc::ServerContext* ctx, const v1::KeyId* req,
                                                v1::AsyncInvocation* reply) {
  if (grpc::Status denied = Admin(ctx); !denied.ok()) {
    return denied;
  }
  Result<store::AsyncRecord> rec = deps_.async->Get(req->id());
  Result<std::string> json =
      rec.ok() ? Result<std::string>(gateway::AsyncInvocations::ToJson(*rec)) : rec.status();
  if (!json.ok()) {
    return Fail(ctx,
                json.status().code() == StatusCode::kNotFound ? "invocation_not_found" : "internal",
                json.status().code() == StatusCode::kNotFound
                    ? NotFoundError("no async invocation \"" + req->id() +
                                    "\" (results are kept for --async-retention)")
                    : json.status());
  }
  reply->set_json(std::move(*json));
  return grpc::Status::OK;
}

}  // namespace faas::daemon
