// Control-API replies as text for people: tables and "key: value" lines. The JSON forms are in
// render_json.cc, the formatters in format.cc, the request builders in requests.cc.
#include "faas/cli/render.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/time.h"
#include "faas/cli/table.h"

namespace faas::cli {
namespace {

// 60 bytes: enough to recognise a message or an error in a table row.
constexpr std::size_t kPreviewBytes = 60;

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

std::string FormatMs(double ms) {
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1f", ms);
  return buf;
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string OrDashNumber(uint64_t n) {
  return n == 0 ? "-" : std::to_string(n);
}

// Error text for a table cell: a preview, "-" when there is none.
std::string ErrorPreview(const std::string& error) {
  return error.empty() ? "-" : PreviewBytes(error, kPreviewBytes);
}

// One bill line after the key column.
std::vector<std::string> BillCells(const faas::v1::BillRow& row) {
  return {std::to_string(row.invocations()), FormatMs(row.cpu_ms()),
          std::to_string(row.billed_ms()),   FormatMicros(row.cost_micros()),
          std::to_string(row.cold_starts()), std::to_string(row.errors())};
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

std::string TriggerTarget(const faas::v1::Trigger& t) {
  return t.source() == "embedded" ? t.queue() : t.stream();
}

// A table with one row, `row(item)`, per item.
template <typename Items, typename RowFn>
std::string TableOf(std::vector<std::string> headers, const Items& items, RowFn row) {
  Table t(std::move(headers));
  for (const auto& item : items) {
    t.AddRow(row(item));
  }
  return t.Render();
}

// Appends "key: value\n".
void AddLine(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out += ": ";
  out.append(value);
  out += '\n';
}

}  // namespace

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
  return TableOf(
      {"NAME", "VERSION", "VERSIONS", "IDLE", "BUSY", "INVOCATIONS", "COLD", "MEMORY", "TIMEOUT"},
      reply.functions(), [](const faas::v1::FunctionInfo& f) -> std::vector<std::string> {
        const faas::v1::FunctionConfig& c = f.latest().config();
        return {f.name(),
                std::to_string(f.latest_version()),
                std::to_string(f.version_count()),
                std::to_string(f.instances_idle()),
                std::to_string(f.instances_busy()),
                std::to_string(f.invocations()),
                std::to_string(f.cold_starts()),
                MemoryMb(c.memory_mb()),
                MillisDuration(c.timeout_ms())};
      });
}

std::string RenderDescribe(const faas::v1::FunctionInfo& f) {
  const faas::v1::VersionInfo& v = f.latest();
  const faas::v1::FunctionConfig& c = v.config();
  std::string out;
  AddLine(out, "name", f.name());
  AddLine(out, "latest version", std::to_string(f.latest_version()));
  AddLine(out, "versions", std::to_string(f.version_count()));
  AddLine(out, "created", FormatUnixMillis(v.created_unix_ms()));
  AddLine(out, "sha256", OrDash(v.artifact_sha256()));
  AddLine(out, "content hash", OrDash(v.content_hash()));
  AddLine(out, "size", FormatBytes(v.size_bytes()));
  AddLine(out, "memory", MemoryMb(c.memory_mb()));
  AddLine(out, "timeout", MillisDuration(c.timeout_ms()));
  AddLine(out, "cpu limit", MillisDuration(c.cpu_limit_ms()));
  AddLine(out, "min warm", std::to_string(c.min_warm()));
  AddLine(out, "max instances", std::to_string(c.max_instances()));
  AddLine(out, "idle ttl", MillisDuration(c.idle_ttl_ms()));
  AddLine(out, "isolation", OrDash(c.isolation()));
  AddLine(out, "network", OrDash(c.network()));
  AddLine(out, "public", c.is_public() ? "yes" : "no");
  AddLine(out, "idempotent", c.idempotent() ? "yes" : "no");
  AddLine(out, "rate", FormatRate(c.rate_per_sec()));
  AddLine(out, "burst", OrDashNumber(c.burst()));
  // protobuf maps are unordered; sort for stable output.
  std::map<std::string, std::string> env(c.env().begin(), c.env().end());
  for (const auto& [k, val] : env) {
    AddLine(out, "env " + k, val);
  }
  AddLine(out, "instances idle", std::to_string(f.instances_idle()));
  AddLine(out, "instances busy", std::to_string(f.instances_busy()));
  AddLine(out, "invocations", std::to_string(f.invocations()));
  AddLine(out, "cold starts", std::to_string(f.cold_starts()));
  return out;
}

std::string RenderVersionsTable(const faas::v1::ListVersionsReply& reply) {
  return TableOf({"VERSION", "CREATED", "SHA256", "SIZE", "MEMORY", "TIMEOUT", "LATEST"},
                 reply.versions(), [](const faas::v1::VersionInfo& v) -> std::vector<std::string> {
                   return {std::to_string(v.version()),
                           FormatUnixMillis(v.created_unix_ms()),
                           ShortHash(v.artifact_sha256(), 12),
                           FormatBytes(v.size_bytes()),
                           MemoryMb(v.config().memory_mb()),
                           MillisDuration(v.config().timeout_ms()),
                           v.latest() ? "*" : ""};
                 });
}

std::string RenderInvokeDetails(const faas::v1::InvokeReply& reply) {
  std::string out;
  AddLine(out, "status", std::to_string(reply.status()));
  AddLine(out, "invocation", OrDash(reply.invocation_id()));
  AddLine(out, "cold start", reply.cold_start() ? "yes" : "no");
  for (const auto& t : reply.timings()) {
    AddLine(out, t.phase(), FormatMillis(t.ms()));
  }
  AddLine(out, "cpu", FormatMillis(reply.cpu_ms()));
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
  return TableOf(
      {"ID", "START", "OUTCOME", "COLD", "WALL MS", "CPU MS", "BILLED MS", "PEAK MEM", "KIND"},
      reply.invocations(), [](const faas::v1::InvocationRecord& r) -> std::vector<std::string> {
        return {OrDash(r.invocation_id()),
                FormatUnixMillisPrecise(r.start_unix_ms()),
                OrDash(r.outcome()),
                r.cold_start() ? "yes" : "no",
                FormatNanosAsMillis(r.wall_ns()),
                FormatNanosAsMillis(r.cpu_ns()),
                std::to_string(r.billed_ms()),
                r.peak_memory_bytes() == 0 ? "-" : FormatBytes(r.peak_memory_bytes()),
                OrDash(r.kind())};
      });
}

std::string DescribeRoute(const faas::v1::Route& r) {
  std::string out = r.method() + " " + r.path();
  if (!r.host().empty()) {
    out += " (host " + r.host() + ")";
  }
  return out + " -> " + r.function();
}

std::string RenderRoutesTable(const faas::v1::ListRoutesReply& reply) {
  return TableOf({"METHOD", "PATH", "HOST", "FUNCTION"}, reply.routes(),
                 [](const faas::v1::Route& r) -> std::vector<std::string> {
                   return {r.method(), r.path(), OrDash(r.host()), r.function()};
                 });
}

std::string RenderPrewarm(const std::string& name, const faas::v1::PrewarmReply& reply) {
  return "started " + std::to_string(reply.started()) + " instances of " + name + " (" +
         std::to_string(reply.idle()) + " idle)\n";
}

std::string RenderKeyCreated(const faas::v1::CreateKeyReply& reply) {
  const faas::v1::ApiKey& k = reply.key();
  std::string out;
  AddLine(out, "id", k.id());
  AddLine(out, "tenant", k.tenant());
  AddLine(out, "functions", FunctionList(k.functions()));
  AddLine(out, "rate", FormatRate(k.rate_per_sec()));
  AddLine(out, "burst", OrDashNumber(k.burst()));
  AddLine(out, "key", reply.secret());
  AddLine(out, "warning",
          "this is the only time the key is shown; store it now (faasd keeps only its hash)");
  return out;
}

std::string RenderKeysTable(const faas::v1::ListKeysReply& reply) {
  return TableOf({"ID", "TENANT", "FUNCTIONS", "RATE", "BURST", "CREATED", "STATE"}, reply.keys(),
                 [](const faas::v1::ApiKey& k) -> std::vector<std::string> {
                   return {k.id(),
                           k.tenant(),
                           FunctionList(k.functions()),
                           FormatRate(k.rate_per_sec()),
                           OrDashNumber(k.burst()),
                           FormatUnixMillis(k.created_unix_ms()),
                           k.revoked_unix_ms() == 0 ? "active" : "revoked"};
                 });
}

std::string RenderNodesTable(const faas::v1::ListNodesReply& reply) {
  return TableOf(
      {"ID", "STATE", "EPOCH", "LOAD", "CAPACITY", "HEARTBEAT", "INSTANCES", "WARM", "ADDRESS",
       "HTTP"},
      reply.nodes(), [](const faas::v1::ClusterNode& n) -> std::vector<std::string> {
        char load[32] = "-";
        if (n.load() >= 0) {
          (void)std::snprintf(load, sizeof(load), "%.2f", n.load());
        }
        char capacity[32];
        (void)std::snprintf(capacity, sizeof(capacity), "%g", n.capacity());
        char age[32];
        (void)std::snprintf(age, sizeof(age), "%.1fs ago",
                            static_cast<double>(n.heartbeat_age_ms()) / 1000.0);
        // Instances and warm functions: what the node told the gateway just now
        // ("-" when it did not answer, or the faasd asked is no gateway).
        std::string instances = "-";
        std::string warm = "-";
        if (n.stats_known()) {
          instances = std::to_string(n.instances_idle()) + " idle, " +
                      std::to_string(n.instances_busy()) + " busy";
          std::string names;
          for (const faas::v1::ClusterNodeFunction& f : n.functions()) {
            names += (names.empty() ? "" : ",") + f.function();
          }
          warm = OrDash(names);
        }
        return {n.id(), n.state(),   std::to_string(n.epoch()), load, capacity, age, instances,
                warm,   n.address(), OrDash(n.http_address())};
      });
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
  return TableOf({"NAME", "FUNCTION", "SOURCE", "STREAM/QUEUE", "STATE", "LAG", "IN FLIGHT",
                  "DELIVERED", "FAILED", "DEAD", "LAST ERROR"},
                 reply.triggers(),
                 [](const faas::v1::TriggerStatus& s) -> std::vector<std::string> {
                   const faas::v1::Trigger& tr = s.trigger();
                   return {tr.name(),
                           tr.function(),
                           tr.source(),
                           OrDash(TriggerTarget(tr)),
                           OrDash(s.state()),
                           s.lag() < 0 ? "-" : std::to_string(s.lag()),
                           std::to_string(s.in_flight()),
                           std::to_string(s.delivered()),
                           std::to_string(s.failed()),
                           std::to_string(s.dead_lettered()),
                           ErrorPreview(s.last_error())};
                 });
}

std::string RenderQueueStats(const faas::v1::QueueStats& q) {
  std::string out;
  AddLine(out, "queue", q.queue());
  AddLine(out, "ready", std::to_string(q.ready()));
  AddLine(out, "delayed", std::to_string(q.delayed()));
  AddLine(out, "in flight", std::to_string(q.in_flight()));
  AddLine(out, "dead", std::to_string(q.dead()));
  AddLine(out, "published", std::to_string(q.published()));
  AddLine(out, "acked", std::to_string(q.acked()));
  AddLine(out, "oldest ready", FormatUnixMillis(q.oldest_ready_unix_ms()));
  return out;
}

std::string RenderDeadTable(const faas::v1::ListDeadReply& reply) {
  return TableOf({"ID", "ORIGIN", "ATTEMPTS", "ERROR", "TIME", "BODY"}, reply.messages(),
                 [](const faas::v1::DeadMessage& m) -> std::vector<std::string> {
                   return {m.message_id(),
                           OrDash(m.origin_queue()),
                           std::to_string(m.attempts()),
                           ErrorPreview(m.error()),
                           FormatUnixMillis(m.dead_unix_ms()),
                           PreviewBytes(m.body(), kPreviewBytes)};
                 });
}

std::string RenderReplayed(std::string_view dlq, const faas::v1::ListDeadReply& reply) {
  uint64_t n = reply.replayed();
  return "replayed " + std::to_string(n) + (n == 1 ? " message" : " messages") + " from " +
         std::string(dlq) + "\n";
}

}  // namespace faas::cli
