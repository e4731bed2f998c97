// Parsed flags → control-API requests (declared in render.h). Unset optionals and empty strings
// become the API's 0 / "" ("default", "no bound", "all").
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "faas/cli/render.h"

namespace faas::cli {

faas::v1::InvokeRequest ToInvokeRequest(const InvokeCommand& cmd, std::string body) {
  faas::v1::InvokeRequest req;
  req.set_name(cmd.name);
  req.set_body(std::move(body));
  req.set_method(cmd.method);
  req.set_path(cmd.path);
  req.set_query(cmd.query);
  req.set_fresh(cmd.fresh);
  req.set_async(cmd.async);
  req.set_callback_url(cmd.callback_url);
  return req;
}

faas::v1::CreateKeyRequest ToCreateKeyRequest(const KeyCreateCommand& cmd) {
  faas::v1::CreateKeyRequest req;
  req.set_tenant(cmd.tenant);
  for (const auto& f : cmd.functions) {
    req.add_functions(f);
  }
  req.set_rate_per_sec(cmd.rate_per_sec.value_or(0));
  req.set_burst(cmd.burst.value_or(0));
  return req;
}

faas::v1::AddTriggerRequest ToAddTriggerRequest(const TriggerAddCommand& cmd) {
  auto ms = [](const std::optional<std::chrono::milliseconds>& d) -> uint64_t {
    return d ? static_cast<uint64_t>(d->count()) : 0;
  };
  faas::v1::AddTriggerRequest req;
  faas::v1::Trigger* t = req.mutable_trigger();
  t->set_name(cmd.name);
  t->set_function(cmd.function);
  t->set_source(cmd.source);
  t->set_stream(cmd.stream);
  t->set_group(cmd.group);
  t->set_queue(cmd.queue);
  t->set_batch(cmd.batch.value_or(0));
  t->set_concurrency(cmd.concurrency.value_or(0));
  t->set_max_attempts(cmd.max_attempts.value_or(0));
  t->set_backoff_min_ms(ms(cmd.backoff_min));
  t->set_backoff_max_ms(ms(cmd.backoff_max));
  t->set_dlq(cmd.dlq);
  t->set_visibility_timeout_ms(ms(cmd.visibility_timeout));
  return req;
}

faas::v1::ListDeadRequest ToListDeadRequest(const QueueDlqCommand& cmd) {
  faas::v1::ListDeadRequest req;
  req.set_queue(cmd.dlq);
  req.set_limit(cmd.limit);
  req.set_replay(cmd.replay);
  return req;
}

faas::v1::BillRequest ToBillRequest(const BillCommand& cmd) {
  faas::v1::BillRequest req;
  req.set_function(cmd.function);
  req.set_since_unix_ms(cmd.since_unix_ms);
  req.set_until_unix_ms(cmd.until_unix_ms);
  req.set_by(cmd.by);
  return req;
}

faas::v1::ListInvocationsRequest ToListInvocationsRequest(const InvocationsCommand& cmd) {
  faas::v1::ListInvocationsRequest req;
  req.set_function(cmd.name);
  req.set_last(cmd.last);
  req.set_outcome(cmd.outcome);
  return req;
}

faas::v1::AddRouteRequest ToAddRouteRequest(const RouteAddCommand& cmd) {
  faas::v1::AddRouteRequest req;
  faas::v1::Route* r = req.mutable_route();
  r->set_method(cmd.method);
  r->set_path(cmd.path);
  r->set_function(cmd.function);
  r->set_host(cmd.host);
  return req;
}

faas::v1::RouteKey ToRouteKey(const RouteDeleteCommand& cmd) {
  faas::v1::RouteKey key;
  key.set_method(cmd.method);
  key.set_path(cmd.path);
  key.set_host(cmd.host);
  return key;
}

faas::v1::PrewarmRequest ToPrewarmRequest(const PrewarmCommand& cmd) {
  faas::v1::PrewarmRequest req;
  req.set_name(cmd.name);
  req.set_count(cmd.count);
  return req;
}

Result<faas::v1::FunctionConfig> ToProtoConfig(const DeployOptions& o) {
  faas::v1::FunctionConfig c;
  if (o.queue_depth) {
    c.set_queue_depth(*o.queue_depth);
    c.set_has_queue_depth(true);
  }
  if (o.queue_timeout) {
    c.set_queue_timeout_ms(static_cast<uint64_t>(o.queue_timeout->count()));
  }
  if (o.max_body_bytes) {
    c.set_max_body_bytes(*o.max_body_bytes);
  }
  if (o.memory_mb) {
    c.set_memory_mb(*o.memory_mb);
  }
  if (o.timeout) {
    c.set_timeout_ms(static_cast<uint64_t>(o.timeout->count()));
  }
  if (o.cpu_limit) {
    c.set_cpu_limit_ms(static_cast<uint64_t>(o.cpu_limit->count()));
  }
  if (o.min_warm) {
    c.set_min_warm(*o.min_warm);
    c.set_has_min_warm(true);
  }
  if (o.max_instances) {
    c.set_max_instances(*o.max_instances);
  }
  if (o.idle_ttl) {
    c.set_idle_ttl_ms(static_cast<uint64_t>(o.idle_ttl->count()));
  }
  c.set_isolation(o.isolation);
  c.set_network(o.network);
  for (const auto& [k, v] : o.env) {
    (*c.mutable_env())[k] = v;
  }
  c.set_is_public(o.is_public);
  c.set_idempotent(o.idempotent);
  if (o.rate_per_sec) {
    c.set_rate_per_sec(*o.rate_per_sec);
  }
  if (o.burst) {
    c.set_burst(*o.burst);
  }
  return c;
}

}  // namespace faas::cli
