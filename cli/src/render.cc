#include "faas/cli/render.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/base/text.h"
#include "faas/base/time.h"
#include "faas/cli/table.h"

namespace faas::cli {
namespace {

using nlohmann::json;

std::string MillisDuration(uint64_t ms) {
  if (ms == 0) {
    return "-";
  }
  return FormatDuration(std::chrono::milliseconds(static_cast<int64_t>(ms)));
}

std::string MemoryMb(uint64_t mb) {
  return mb == 0 ? "-" : std::to_string(mb) + " MiB";
}

// First `n` characters of a hex digest, "-" when there is none.
std::string ShortHash(const std::string& hash, std::size_t n) {
  if (hash.empty()) {
    return "-";
  }
  return hash.substr(0, n);
}

// Bytes as a JSON value: a string when valid UTF-8, else base64 under "<key>_base64".
void PutBytes(json& j, const std::string& key, const std::string& bytes) {
  if (IsValidUtf8(bytes)) {
    j[key] = bytes;
  } else {
    j[key + "_base64"] = Base64Encode(bytes);
  }
}

std::string FormatMs(double ms) {
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1f", ms);
  return buf;
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

// One bill line after the key column.
std::vector<std::string> BillCells(const faas::v1::BillRow& row) {
  return {std::to_string(row.invocations()), FormatMs(row.cpu_ms()),
          std::to_string(row.billed_ms()),   FormatMicros(row.cost_micros()),
          std::to_string(row.cold_starts()), std::to_string(row.errors())};
}

// 60 bytes: enough to recognise a message or an error in a table row.
constexpr std::size_t kPreviewBytes = 60;

std::string OrDashNumber(uint64_t n) {
  return n == 0 ? "-" : std::to_string(n);
}

std::string FunctionList(const google::protobuf::RepeatedPtrField<std::string>& functions) {
  if (functions.empty()) {
    return "*";
  }
  std::string out;
  for (const auto& f : functions) {
    if (!out.empty()) {
      out += ',';
    }
    out += f;
  }
  return out;
}

json FunctionsJson(const google::protobuf::RepeatedPtrField<std::string>& functions) {
  json out = json::array();
  for (const auto& f : functions) {
    out.push_back(f);
  }
  return out;
}

std::string TriggerTarget(const faas::v1::Trigger& t) {
  return t.source() == "embedded" ? t.queue() : t.stream();
}

}  // namespace

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
  if (o.rate_per_sec) {
    c.set_rate_per_sec(*o.rate_per_sec);
  }
  if (o.burst) {
    c.set_burst(*o.burst);
  }
  return c;
}

std::string RenderDeploy(const faas::v1::DeployReply& reply) {
  const faas::v1::VersionInfo& v = reply.version();
  if (reply.unchanged()) {
    return v.function() + " unchanged at version " + std::to_string(v.version()) + "\n";
  }
  return "deployed " + v.function() + " version " + std::to_string(v.version()) + " (sha256 " +
         ShortHash(v.artifact_sha256(), 8) + "\u2026, probe " + FormatMs(reply.probe_ms()) +
         " ms)\n";
}

std::string RenderFunctionTable(const faas::v1::ListFunctionsReply& reply) {
  Table t(
      {"NAME", "VERSION", "VERSIONS", "IDLE", "BUSY", "INVOCATIONS", "COLD", "MEMORY", "TIMEOUT"});
  for (const auto& f : reply.functions()) {
    const faas::v1::FunctionConfig& c = f.latest().config();
    t.AddRow({f.name(), std::to_string(f.latest_version()), std::to_string(f.version_count()),
              std::to_string(f.instances_idle()), std::to_string(f.instances_busy()),
              std::to_string(f.invocations()), std::to_string(f.cold_starts()),
              MemoryMb(c.memory_mb()), MillisDuration(c.timeout_ms())});
  }
  return t.Render();
}

std::string RenderDescribe(const faas::v1::FunctionInfo& f) {
  const faas::v1::VersionInfo& v = f.latest();
  const faas::v1::FunctionConfig& c = v.config();
  std::string out;
  auto line = [&out](std::string_view key, const std::string& value) {
    out.append(key);
    out += ": ";
    out += value;
    out += '\n';
  };
  line("name", f.name());
  line("latest version", std::to_string(f.latest_version()));
  line("versions", std::to_string(f.version_count()));
  line("created", FormatUnixMillis(v.created_unix_ms()));
  line("sha256", v.artifact_sha256().empty() ? "-" : v.artifact_sha256());
  line("content hash", v.content_hash().empty() ? "-" : v.content_hash());
  line("size", FormatBytes(v.size_bytes()));
  line("memory", MemoryMb(c.memory_mb()));
  line("timeout", MillisDuration(c.timeout_ms()));
  line("cpu limit", MillisDuration(c.cpu_limit_ms()));
  line("min warm", std::to_string(c.min_warm()));
  line("max instances", std::to_string(c.max_instances()));
  line("idle ttl", MillisDuration(c.idle_ttl_ms()));
  line("isolation", c.isolation().empty() ? "-" : c.isolation());
  line("network", c.network().empty() ? "-" : c.network());
  line("public", c.is_public() ? "yes" : "no");
  line("rate", FormatRate(c.rate_per_sec()));
  line("burst", OrDashNumber(c.burst()));
  // protobuf maps are unordered; sort for stable output.
  std::map<std::string, std::string> env(c.env().begin(), c.env().end());
  for (const auto& [k, val] : env) {
    line("env " + k, val);
  }
  line("instances idle", std::to_string(f.instances_idle()));
  line("instances busy", std::to_string(f.instances_busy()));
  line("invocations", std::to_string(f.invocations()));
  line("cold starts", std::to_string(f.cold_starts()));
  return out;
}

std::string RenderVersionsTable(const faas::v1::ListVersionsReply& reply) {
  Table t({"VERSION", "CREATED", "SHA256", "SIZE", "MEMORY", "TIMEOUT", "LATEST"});
  for (const auto& v : reply.versions()) {
    t.AddRow({std::to_string(v.version()), FormatUnixMillis(v.created_unix_ms()),
              ShortHash(v.artifact_sha256(), 12), FormatBytes(v.size_bytes()),
              MemoryMb(v.config().memory_mb()), MillisDuration(v.config().timeout_ms()),
              v.latest() ? "*" : ""});
  }
  return t.Render();
}

std::string RenderInvokeDetails(const faas::v1::InvokeReply& reply) {
  std::string out;
  out += "status: " + std::to_string(reply.status()) + "\n";
  out += "invocation: " + (reply.invocation_id().empty() ? "-" : reply.invocation_id()) + "\n";
  out += std::string("cold start: ") + (reply.cold_start() ? "yes" : "no") + "\n";
  for (const auto& t : reply.timings()) {
    out += t.phase() + ": " + FormatMillis(t.ms()) + "\n";
  }
  out += "cpu: " + FormatMillis(reply.cpu_ms()) + "\n";
  if (!reply.logs().empty()) {
    out += "--- logs ---\n";
    out += reply.logs();
    if (reply.logs().back() != '\n') {
      out += '\n';
    }
  }
  return out;
}

std::string RenderBillTable(const faas::v1::BillReply& reply, std::string_view by) {
  std::string currency = CurrencyName(reply.currency_unit());
  std::vector<std::string> headers = {
      "INVOCATIONS", "CPU MS", "BILLED MS", currency.empty() ? "COST" : "COST (" + currency + ")",
      "COLD STARTS", "ERRORS"};
  if (by.empty()) {
    Table t(std::move(headers));
    t.AddRow(BillCells(reply.total()));
    return t.Render();
  }
  std::string key_header = by == "function" ? "FUNCTION"
                           : by == "tenant" ? "TENANT"
                           : by == "day"    ? "DAY"
                                            : "HOUR";
  headers.insert(headers.begin(), std::move(key_header));
  Table t(std::move(headers));
  auto add = [&t](std::string key, const faas::v1::BillRow& row) {
    std::vector<std::string> cells = BillCells(row);
    cells.insert(cells.begin(), std::move(key));
    t.AddRow(std::move(cells));
  };
  for (const auto& row : reply.rows()) {
    add(OrDash(row.key()), row);
  }
  add("TOTAL", reply.total());
  return t.Render();
}

std::string RenderInvocationsTable(const faas::v1::ListInvocationsReply& reply) {
  Table t({"ID", "START", "OUTCOME", "COLD", "WALL MS", "CPU MS", "BILLED MS", "PEAK MEM", "KIND"});
  for (const auto& r : reply.invocations()) {
    t.AddRow({OrDash(r.invocation_id()), FormatUnixMillisPrecise(r.start_unix_ms()),
              OrDash(r.outcome()), r.cold_start() ? "yes" : "no", FormatNanosAsMillis(r.wall_ns()),
              FormatNanosAsMillis(r.cpu_ns()), std::to_string(r.billed_ms()),
              r.peak_memory_bytes() == 0 ? "-" : FormatBytes(r.peak_memory_bytes()),
              OrDash(r.kind())});
  }
  return t.Render();
}

std::string DescribeRoute(const faas::v1::Route& r) {
  std::string out = r.method() + " " + r.path();
  if (!r.host().empty()) {
    out += " (host " + r.host() + ")";
  }
  return out + " -> " + r.function();
}

std::string RenderRoutesTable(const faas::v1::ListRoutesReply& reply) {
  Table t({"METHOD", "PATH", "HOST", "FUNCTION"});
  for (const auto& r : reply.routes()) {
    t.AddRow({r.method(), r.path(), OrDash(r.host()), r.function()});
  }
  return t.Render();
}

std::string RenderPrewarm(const std::string& name, const faas::v1::PrewarmReply& reply) {
  return "started " + std::to_string(reply.started()) + " instances of " + name + " (" +
         std::to_string(reply.idle()) + " idle)\n";
}

std::string RenderKeyCreated(const faas::v1::CreateKeyReply& reply) {
  const faas::v1::ApiKey& k = reply.key();
  return "id: " + k.id() + "\ntenant: " + k.tenant() +
         "\nfunctions: " + FunctionList(k.functions()) + "\nrate: " + FormatRate(k.rate_per_sec()) +
         "\nburst: " + OrDashNumber(k.burst()) + "\nkey: " + reply.secret() +
         "\nwarning: this is the only time the key is shown; store it now (faasd keeps only its "
         "hash)\n";
}

std::string RenderKeysTable(const faas::v1::ListKeysReply& reply) {
  Table t({"ID", "TENANT", "FUNCTIONS", "RATE", "BURST", "CREATED", "STATE"});
  for (const auto& k : reply.keys()) {
    t.AddRow({k.id(), k.tenant(), FunctionList(k.functions()), FormatRate(k.rate_per_sec()),
              OrDashNumber(k.burst()), FormatUnixMillis(k.created_unix_ms()),
              k.revoked_unix_ms() == 0 ? "active" : "revoked"});
  }
  return t.Render();
}

std::string DescribeTriggerSource(const faas::v1::Trigger& t) {
  if (t.source() == "embedded") {
    return "embedded queue " + t.queue();
  }
  return t.source() + " stream " + t.stream();
}

std::string RenderTriggerAdded(const faas::v1::TriggerStatus& status) {
  const faas::v1::Trigger& t = status.trigger();
  return "added trigger " + t.name() + ": " + DescribeTriggerSource(t) + " -> " + t.function() +
         " (" + OrDash(status.state()) + ")\n";
}

std::string RenderTriggerState(std::string_view verb, const faas::v1::TriggerStatus& status) {
  std::string out =
      std::string(verb) + " trigger " + status.trigger().name() + ": " + OrDash(status.state());
  if (!status.last_error().empty()) {
    out += " (" + PreviewBytes(status.last_error(), kPreviewBytes) + ")";
  }
  return out + "\n";
}

std::string RenderTriggersTable(const faas::v1::ListTriggersReply& reply) {
  Table t({"NAME", "FUNCTION", "SOURCE", "STREAM/QUEUE", "STATE", "LAG", "IN FLIGHT", "DELIVERED",
           "FAILED", "DEAD", "LAST ERROR"});
  for (const auto& s : reply.triggers()) {
    const faas::v1::Trigger& tr = s.trigger();
    t.AddRow({tr.name(), tr.function(), tr.source(), OrDash(TriggerTarget(tr)), OrDash(s.state()),
              s.lag() < 0 ? "-" : std::to_string(s.lag()), std::to_string(s.in_flight()),
              std::to_string(s.delivered()), std::to_string(s.failed()),
              std::to_string(s.dead_lettered()),
              s.last_error().empty() ? "-" : PreviewBytes(s.last_error(), kPreviewBytes)});
  }
  return t.Render();
}

std::string RenderQueueStats(const faas::v1::QueueStats& q) {
  return "queue: " + q.queue() + "\nready: " + std::to_string(q.ready()) +
         "\ndelayed: " + std::to_string(q.delayed()) +
         "\nin flight: " + std::to_string(q.in_flight()) + "\ndead: " + std::to_string(q.dead()) +
         "\npublished: " + std::to_string(q.published()) + "\nacked: " + std::to_string(q.acked()) +
         "\noldest ready: " + FormatUnixMillis(q.oldest_ready_unix_ms()) + "\n";
}

std::string RenderDeadTable(const faas::v1::ListDeadReply& reply) {
  Table t({"ID", "ORIGIN", "ATTEMPTS", "ERROR", "TIME", "BODY"});
  for (const auto& m : reply.messages()) {
    t.AddRow({m.message_id(), OrDash(m.origin_queue()), std::to_string(m.attempts()),
              m.error().empty() ? "-" : PreviewBytes(m.error(), kPreviewBytes),
              FormatUnixMillis(m.dead_unix_ms()), PreviewBytes(m.body(), kPreviewBytes)});
  }
  return t.Render();
}

std::string RenderReplayed(std::string_view dlq, const faas::v1::ListDeadReply& reply) {
  uint64_t n = reply.replayed();
  return "replayed " + std::to_string(n) + (n == 1 ? " message" : " messages") + " from " +
         std::string(dlq) + "\n";
}

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
  json messages = json::array();
  for (const auto& m : reply.messages()) {
    messages.push_back(DeadMessageToJson(m));
  }
  return json{
      {"dlq", std::string(dlq)}, {"messages", std::move(messages)}, {"replayed", reply.replayed()}};
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
  json headers = json::array();
  for (const auto& h : r.headers()) {
    json header = json::object();
    PutBytes(header, "name", h.name());
    PutBytes(header, "value", h.value());
    headers.push_back(std::move(header));
  }
  json timings = json::array();
  for (const auto& t : r.timings()) {
    timings.push_back(json{{"phase", t.phase()}, {"ms", t.ms()}});
  }
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
  json rows = json::array();
  for (const auto& row : reply.rows()) {
    rows.push_back(BillRowToJson(row));
  }
  return json{{"rows", std::move(rows)},
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

std::string DumpJson(const json& j) {
  // error_handler_t::replace: invalid UTF-8 becomes U+FFFD instead of a type_error throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string FormatUnixMillis(int64_t unix_ms) {
  if (unix_ms == 0) {
    return "-";
  }
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm_utc {};
  if (gmtime_r(&secs, &tm_utc) == nullptr) {
    return "-";
  }
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return n == 0 ? "-" : std::string(buf, n);
}

std::string FormatMillis(double ms) {
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  return buf;
}

std::string FormatRate(double per_sec) {
  if (!std::isfinite(per_sec) || !(per_sec > 0)) {
    return "-";
  }
  // The slack absorbs rounding in n/60 and n/3600 (6000/m is 100/s; 1/m times 60 is 1).
  constexpr double kSlack = 1e-9;
  char buf[48];
  if (per_sec >= 1 - kSlack) {
    (void)std::snprintf(buf, sizeof buf, "%.10g/s", per_sec);
  } else if (per_sec * 60 >= 1 - kSlack) {
    (void)std::snprintf(buf, sizeof buf, "%.10g/m", per_sec * 60);
  } else {
    (void)std::snprintf(buf, sizeof buf, "%.10g/h", per_sec * 3600);
  }
  return buf;
}

std::string PreviewBytes(std::string_view data, std::size_t max_bytes) {
  std::size_t end = std::min(data.size(), max_bytes);
  std::string out;
  std::size_t i = 0;
  char buf[16];
  while (i < end) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20U && c < 0x7FU) {
      out += static_cast<char>(c);
    } else {
      // 0 for a control byte, DEL or a byte that does not start well-formed UTF-8.
      std::size_t len = c >= 0x80U ? Utf8SequenceLength(data, i) : 0;
      if (len > 0) {
        if (i + len > end) {
          break;  // the character does not fit; never split it
        }
        uint32_t cp = c & (0x7FU >> len);
        for (std::size_t k = 1; k < len; ++k) {
          cp = (cp << 6) | (static_cast<unsigned char>(data[i + k]) & 0x3FU);
        }
        // C1 controls, zero-width and direction marks, line separators and bidi
        // overrides/isolates can hide or rearrange what a terminal shows.
        bool hidden = cp <= 0x9FU || (cp >= 0x200BU && cp <= 0x200FU) ||
                      (cp >= 0x2028U && cp <= 0x202EU) || (cp >= 0x2066U && cp <= 0x2069U) ||
                      cp == 0xFEFFU;
        if (hidden) {
          (void)std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
          out += buf;
        } else {
          out.append(data.substr(i, len));
        }
        i += len;
        continue;
      }
      (void)std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
      out += buf;
    }
    ++i;
  }
  if (i < data.size()) {
    out += "\u2026";
  }
  return out;
}

std::string FormatUnixMillisPrecise(int64_t unix_ms) {
  if (unix_ms == 0) {
    return "-";
  }
  // Floor division, so times before 1970 still get a millisecond part in 0..999.
  int64_t secs = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm_utc {};
  if (gmtime_r(&t, &tm_utc) == nullptr) {
    return "-";
  }
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  if (n == 0) {
    return "-";
  }
  char ms_buf[8];
  (void)std::snprintf(ms_buf, sizeof ms_buf, ".%03dZ", static_cast<int>(millis));
  return std::string(buf, n) + ms_buf;
}

std::string FormatNanosAsMillis(uint64_t ns) {
  // Hundredths of a millisecond, rounded half up without overflowing near UINT64_MAX.
  uint64_t hundredths = ns / 10'000 + (ns % 10'000 >= 5'000 ? 1 : 0);
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%llu.%02llu",
                      static_cast<unsigned long long>(hundredths / 100),
                      static_cast<unsigned long long>(hundredths % 100));
  return buf;
}

std::string FormatMicros(int64_t micros) {
  constexpr uint64_t kMicrosPerUnit = 1'000'000;
  // The magnitude in unsigned arithmetic, so INT64_MIN does not overflow.
  uint64_t magnitude =
      micros < 0 ? ~static_cast<uint64_t>(micros) + 1 : static_cast<uint64_t>(micros);
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%s%llu.%06llu", micros < 0 ? "-" : "",
                      static_cast<unsigned long long>(magnitude / kMicrosPerUnit),
                      static_cast<unsigned long long>(magnitude % kMicrosPerUnit));
  return buf;
}

std::string CurrencyName(std::string_view currency_unit) {
  while (!currency_unit.empty() && currency_unit.back() == ' ') {
    currency_unit.remove_suffix(1);
  }
  std::size_t cut = currency_unit.find_last_of(" -");
  std::string_view last =
      cut == std::string_view::npos ? currency_unit : currency_unit.substr(cut + 1);
  return std::string(last);
}

}  // namespace faas::cli
