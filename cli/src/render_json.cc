// Control-API replies as JSON for `faasctl -o json` (declared in render.h).
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "faas/base/text.h"
#include "faas/cli/render.h"

namespace faas::cli {
namespace {

using nlohmann::json;

// Bytes as a JSON value: a string when valid UTF-8, else base64 under "<key>_base64".
void PutBytes(json& j, const std::string& key, const std::string& bytes) {
  if (IsValidUtf8(bytes)) {
    j[key] = bytes;
  } else {
    j[key + "_base64"] = Base64Encode(bytes);
  }
}

// A JSON array of `to_json(item)` for each item.
template <typename Items, typename ToJson>
json ArrayOf(const Items& items, ToJson to_json) {
  json out = json::array();
  for (const auto& item : items) {
    out.push_back(to_json(item));
  }
  return out;
}

json FunctionsJson(const google::protobuf::RepeatedPtrField<std::string>& functions) {
  return ArrayOf(functions, [](const std::string& f) { return json(f); });
}

}  // namespace

json ApiKeyToJson(const faas::v1::ApiKey& k) {
  return json{{"id", k.id()},
              {"tenant", k.tenant()},
              {"functions", FunctionsJson(k.functions())},
              {"rate_per_sec", k.rate_per_sec()},
              {"burst", k.burst()},
              {"created_unix_ms", k.created_unix_ms()},
              {"revoked_unix_ms", k.revoked_unix_ms()},
              {"state", k.revoked_unix_ms() == 0 ? "active" : "revoked"}};
}

json CreateKeyReplyToJson(const faas::v1::CreateKeyReply& reply) {
  const faas::v1::ApiKey& k = reply.key();
  return json{{"id", k.id()},
              {"tenant", k.tenant()},
              {"functions", FunctionsJson(k.functions())},
              {"rate_per_sec", k.rate_per_sec()},
              {"burst", k.burst()},
              {"key", reply.secret()}};
}

json TriggerStatusToJson(const faas::v1::TriggerStatus& s) {
  const faas::v1::Trigger& t = s.trigger();
  return json{{"name", t.name()},
              {"function", t.function()},
              {"source", t.source()},
              {"stream", t.stream()},
              {"group", t.group()},
              {"queue", t.queue()},
              {"batch", t.batch()},
              {"concurrency", t.concurrency()},
              {"max_attempts", t.max_attempts()},
              {"backoff_min_ms", t.backoff_min_ms()},
              {"backoff_max_ms", t.backoff_max_ms()},
              {"dlq", t.dlq()},
              {"visibility_timeout_ms", t.visibility_timeout_ms()},
              {"paused", t.paused()},
              {"state", s.state()},
              {"last_error", s.last_error()},
              {"lag", s.lag()},
              {"in_flight", s.in_flight()},
              {"delivered", s.delivered()},
              {"failed", s.failed()},
              {"dead_lettered", s.dead_lettered()}};
}

json QueueStatsToJson(const faas::v1::QueueStats& q) {
  return json{{"queue", q.queue()},     {"ready", q.ready()},
              {"delayed", q.delayed()}, {"in_flight", q.in_flight()},
              {"dead", q.dead()},       {"published", q.published()},
              {"acked", q.acked()},     {"oldest_ready_unix_ms", q.oldest_ready_unix_ms()}};
}

json DeadMessageToJson(const faas::v1::DeadMessage& m) {
  json j{{"message_id", m.message_id()},
         {"origin_queue", m.origin_queue()},
         {"attempts", m.attempts()},
         {"error", m.error()},
         {"dead_unix_ms", m.dead_unix_ms()}};
  PutBytes(j, "body", m.body());
  return j;
}

json ListDeadReplyToJson(std::string_view dlq, const faas::v1::ListDeadReply& reply) {
  return json{{"dlq", std::string(dlq)},
              {"messages", ArrayOf(reply.messages(), DeadMessageToJson)},
              {"replayed", reply.replayed()}};
}

json RouteToJson(const faas::v1::Route& r) {
  return json{{"method", r.method()},
              {"path", r.path()},
              {"host", r.host()},
              {"function", r.function()},
              {"created_unix_ms", r.created_unix_ms()}};
}

json PrewarmReplyToJson(const faas::v1::PrewarmReply& reply) {
  return json{{"started", reply.started()}, {"idle", reply.idle()}};
}

json ConfigToJson(const faas::v1::FunctionConfig& c) {
  json env = json::object();
  for (const auto& [k, v] : c.env()) {
    env[k] = v;
  }
  return json{{"memory_mb", c.memory_mb()},
              {"timeout_ms", c.timeout_ms()},
              {"cpu_limit_ms", c.cpu_limit_ms()},
              {"min_warm", c.min_warm()},
              {"max_instances", c.max_instances()},
              {"idle_ttl_ms", c.idle_ttl_ms()},
              {"isolation", c.isolation()},
              {"network", c.network()},
              {"env", std::move(env)},
              {"is_public", c.is_public()},
              {"idempotent", c.idempotent()},
              {"rate_per_sec", c.rate_per_sec()},
              {"burst", c.burst()}};
}

json VersionInfoToJson(const faas::v1::VersionInfo& v) {
  return json{{"function", v.function()},           {"version", v.version()},
              {"content_hash", v.content_hash()},   {"artifact_sha256", v.artifact_sha256()},
              {"size_bytes", v.size_bytes()},       {"created_unix_ms", v.created_unix_ms()},
              {"config", ConfigToJson(v.config())}, {"latest", v.latest()}};
}

json DeployReplyToJson(const faas::v1::DeployReply& r) {
  return json{{"version", VersionInfoToJson(r.version())},
              {"unchanged", r.unchanged()},
              {"probe_ms", r.probe_ms()}};
}

json FunctionInfoToJson(const faas::v1::FunctionInfo& f) {
  return json{{"name", f.name()},
              {"latest_version", f.latest_version()},
              {"version_count", f.version_count()},
              {"latest", VersionInfoToJson(f.latest())},
              {"instances_idle", f.instances_idle()},
              {"instances_busy", f.instances_busy()},
              {"invocations", f.invocations()},
              {"cold_starts", f.cold_starts()}};
}

json InvokeReplyToJson(const faas::v1::InvokeReply& r) {
  json headers = ArrayOf(r.headers(), [](const faas::v1::HttpHeader& h) {
    json header = json::object();
    PutBytes(header, "name", h.name());
    PutBytes(header, "value", h.value());
    return header;
  });
  json timings = ArrayOf(r.timings(), [](const faas::v1::PhaseTiming& t) {
    return json{{"phase", t.phase()}, {"ms", t.ms()}};
  });
  json j{{"invocation_id", r.invocation_id()}, {"status", r.status()},
         {"headers", std::move(headers)},      {"cold_start", r.cold_start()},
         {"timings", std::move(timings)},      {"cpu_ms", r.cpu_ms()},
         {"error_code", r.error_code()},       {"error_message", r.error_message()}};
  PutBytes(j, "body", r.body());
  PutBytes(j, "logs", r.logs());
  return j;
}

json BillRowToJson(const faas::v1::BillRow& row) {
  return json{{"key", row.key()},
              {"invocations", row.invocations()},
              {"cpu_ms", row.cpu_ms()},
              {"billed_ms", row.billed_ms()},
              {"cost_micros", row.cost_micros()},
              {"cost", FormatMicros(row.cost_micros())},
              {"cold_starts", row.cold_starts()},
              {"errors", row.errors()}};
}

json BillReplyToJson(const faas::v1::BillReply& reply) {
  return json{{"rows", ArrayOf(reply.rows(), BillRowToJson)},
              {"total", BillRowToJson(reply.total())},
              {"currency_unit", reply.currency_unit()}};
}

json InvocationRecordToJson(const faas::v1::InvocationRecord& r) {
  return json{{"invocation_id", r.invocation_id()},
              {"function", r.function()},
              {"version", r.version()},
              {"trigger", r.trigger()},
              {"kind", r.kind()},
              {"start_unix_ms", r.start_unix_ms()},
              {"wall_ns", r.wall_ns()},
              {"cpu_ns", r.cpu_ns()},
              {"billed_ms", r.billed_ms()},
              {"cost_micros", r.cost_micros()},
              {"cost", FormatMicros(r.cost_micros())},
              {"peak_memory_bytes", r.peak_memory_bytes()},
              {"cold_start", r.cold_start()},
              {"outcome", r.outcome()},
              {"error_code", r.error_code()},
              {"queue_ns", r.queue_ns()},
              {"spawn_ns", r.spawn_ns()},
              {"load_ns", r.load_ns()},
              {"init_ns", r.init_ns()},
              {"exec_ns", r.exec_ns()},
              {"tenant", r.tenant()},
              {"queue", r.queue()},
              {"message_id", r.message_id()}};
}

json ListFunctionsReplyToJson(const faas::v1::ListFunctionsReply& reply) {
  return json{{"functions", ArrayOf(reply.functions(), FunctionInfoToJson)}};
}

json ListVersionsReplyToJson(const faas::v1::ListVersionsReply& reply) {
  return json{{"versions", ArrayOf(reply.versions(), VersionInfoToJson)}};
}

json ListInvocationsReplyToJson(const faas::v1::ListInvocationsReply& reply) {
  return json{{"invocations", ArrayOf(reply.invocations(), InvocationRecordToJson)}};
}

json ListRoutesReplyToJson(const faas::v1::ListRoutesReply& reply) {
  return json{{"routes", ArrayOf(reply.routes(), RouteToJson)}};
}

json ListKeysReplyToJson(const faas::v1::ListKeysReply& reply) {
  return json{{"keys", ArrayOf(reply.keys(), ApiKeyToJson)}};
}

json ClusterNodeToJson(const faas::v1::ClusterNode& n) {
  json j{{"id", n.id()},
         {"address", n.address()},
         {"http_address", n.http_address()},
         {"capacity", n.capacity()},
         {"state", n.state()},
         {"epoch", n.epoch()},
         {"load", n.load() >= 0 ? json(n.load()) : json(nullptr)},
         {"heartbeat_age_ms", n.heartbeat_age_ms()},
         {"registered_unix_ms", n.registered_unix_ms()}};
  // What the node told the gateway just now; null when it did not (not up, no answer in time,
  // or a faasd that is no gateway).
  if (!n.stats_known()) {
    j["instances"] = nullptr;
    j["functions"] = nullptr;
    return j;
  }
  j["instances"] = {{"idle", n.instances_idle()}, {"busy", n.instances_busy()}};
  j["functions"] = ArrayOf(n.functions(), [](const faas::v1::ClusterNodeFunction& f) {
    return json{{"function", f.function()}, {"idle", f.idle()}, {"busy", f.busy()}};
  });
  return j;
}

json ListNodesReplyToJson(const faas::v1::ListNodesReply& reply) {
  return json{{"nodes", ArrayOf(reply.nodes(), ClusterNodeToJson)}};
}

json ListTriggersReplyToJson(const faas::v1::ListTriggersReply& reply) {
  return json{{"triggers", ArrayOf(reply.triggers(), TriggerStatusToJson)}};
}

std::string DumpJson(const json& j) {
  // error_handler_t::replace: invalid UTF-8 becomes U+FFFD instead of a type_error throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace faas::cli
