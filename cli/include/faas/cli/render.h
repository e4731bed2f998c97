// Rendering control-API replies for people (tables, key: value lines) and scripts (JSON),
// and building request messages from parsed flags. Pure functions; no I/O, no gRPC.
//
//   out << RenderFunctionTable(reply);           // faasctl list
//   out << DumpJson(FunctionInfoToJson(info));    // faasctl describe -o json
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "faas/base/status.h"
#include "faas/base/text.h"
#include "faas/cli/command.h"
#include "faas/v1/control.pb.h"

namespace faas::cli {

// Flags → FunctionConfig. kInvalidArgument for a flag the control API cannot carry yet.
Result<faas::v1::FunctionConfig> ToProtoConfig(const DeployOptions& options);

// Flags → requests; 0 and "" are the control API's "no bound" / "all".
faas::v1::BillRequest ToBillRequest(const BillCommand& cmd);
faas::v1::ListInvocationsRequest ToListInvocationsRequest(const InvocationsCommand& cmd);
faas::v1::AddRouteRequest ToAddRouteRequest(const RouteAddCommand& cmd);
faas::v1::RouteKey ToRouteKey(const RouteDeleteCommand& cmd);
faas::v1::PrewarmRequest ToPrewarmRequest(const PrewarmCommand& cmd);
faas::v1::InvokeRequest ToInvokeRequest(const InvokeCommand& cmd, std::string body);
faas::v1::CreateKeyRequest ToCreateKeyRequest(const KeyCreateCommand& cmd);
// Unset optionals stay 0 (faasd's default); durations in whole milliseconds.
faas::v1::AddTriggerRequest ToAddTriggerRequest(const TriggerAddCommand& cmd);
faas::v1::ListDeadRequest ToListDeadRequest(const QueueDlqCommand& cmd);

// "deployed NAME version N (sha256 abcd1234…, probe 3 ms)" or "NAME unchanged at version N".
std::string RenderDeploy(const faas::v1::DeployReply& reply);
// NAME VERSION VERSIONS IDLE BUSY INVOCATIONS COLD MEMORY TIMEOUT
std::string RenderFunctionTable(const faas::v1::ListFunctionsReply& reply);
// "key: value" lines: config, latest version, hashes, instance counts.
std::string RenderDescribe(const faas::v1::FunctionInfo& info);
// VERSION CREATED SHA256 SIZE MEMORY TIMEOUT LATEST
std::string RenderVersionsTable(const faas::v1::ListVersionsReply& reply);
// `invoke -v` details for stderr: status, invocation, cold start, timings, cpu, logs.
std::string RenderInvokeDetails(const faas::v1::InvokeReply& reply);
// `by` "" (one line, the total): INVOCATIONS CPU MS BILLED MS COST (USD) COLD STARTS ERRORS.
// `by` "function", "day" or "hour": a first column FUNCTION, DAY or HOUR, one line per row,
// then a TOTAL line. The currency is the last word of reply.currency_unit ("micro-USD").
std::string RenderBillTable(const faas::v1::BillReply& reply, std::string_view by);
// ID START OUTCOME COLD WALL MS CPU MS BILLED MS PEAK MEM KIND
std::string RenderInvocationsTable(const faas::v1::ListInvocationsReply& reply);
// "GET /users/{id} -> users" or "GET /users/{id} (host api.example.com) -> users"
std::string DescribeRoute(const faas::v1::Route& route);
// METHOD PATH HOST FUNCTION; HOST is "-" for a route on every host.
std::string RenderRoutesTable(const faas::v1::ListRoutesReply& reply);
// "started 3 instances of NAME (5 idle)"
std::string RenderPrewarm(const std::string& name, const faas::v1::PrewarmReply& reply);
// `key create`: "key: value" lines (id, tenant, functions, rate, burst, key), then a line
// warning that the key is shown only this once.
std::string RenderKeyCreated(const faas::v1::CreateKeyReply& reply);
// ID TENANT FUNCTIONS RATE BURST CREATED STATE; FUNCTIONS is "*" for every function, RATE and
// BURST "-" when unset, STATE "active" or "revoked". No secrets: ApiKey has none.
std::string RenderKeysTable(const faas::v1::ListKeysReply& reply);
// ID STATE EPOCH LOAD CAPACITY HEARTBEAT ADDRESS HTTP; LOAD "-" when unknown, HEARTBEAT the
// age of the last one ("0.4s ago").
std::string RenderNodesTable(const faas::v1::ListNodesReply& reply);
// {"id", "address", "http_address", "capacity", "state", "epoch", "load" (null when unknown),
//  "heartbeat_age_ms", "registered_unix_ms"}; the list as {"nodes": [...]}.
nlohmann::json ClusterNodeToJson(const faas::v1::ClusterNode& node);
nlohmann::json ListNodesReplyToJson(const faas::v1::ListNodesReply& reply);
// "redis://127.0.0.1:6379 stream orders" or "embedded queue emails"
std::string DescribeTriggerSource(const faas::v1::Trigger& trigger);
// "added trigger NAME: <source> -> FUNCTION (state)"
std::string RenderTriggerAdded(const faas::v1::TriggerStatus& status);
// "<verb> trigger NAME: state" plus " (last error)" when there is one; verb "paused", "resumed".
std::string RenderTriggerState(std::string_view verb, const faas::v1::TriggerStatus& status);
// NAME FUNCTION SOURCE STREAM/QUEUE STATE LAG IN FLIGHT DELIVERED FAILED DEAD LAST ERROR;
// LAG "-" when unknown, LAST ERROR a PreviewBytes of 60 bytes ("-" when none).
std::string RenderTriggersTable(const faas::v1::ListTriggersReply& reply);
// "key: value" lines: queue, ready, delayed, in flight, dead, published, acked, oldest ready.
std::string RenderQueueStats(const faas::v1::QueueStats& stats);
// ID ORIGIN ATTEMPTS ERROR TIME BODY; ERROR and BODY are PreviewBytes of 60 bytes.
std::string RenderDeadTable(const faas::v1::ListDeadReply& reply);
// "replayed N messages from DLQ"
std::string RenderReplayed(std::string_view dlq, const faas::v1::ListDeadReply& reply);

nlohmann::json ConfigToJson(const faas::v1::FunctionConfig& config);
nlohmann::json VersionInfoToJson(const faas::v1::VersionInfo& info);
nlohmann::json DeployReplyToJson(const faas::v1::DeployReply& reply);
nlohmann::json FunctionInfoToJson(const faas::v1::FunctionInfo& info);
// Body and logs as UTF-8 strings ("body", "logs") when valid UTF-8, else base64 under
// "body_base64" / "logs_base64".
nlohmann::json InvokeReplyToJson(const faas::v1::InvokeReply& reply);
// Every field, cost_micros as an integer plus "cost", the same as a decimal string.
nlohmann::json BillRowToJson(const faas::v1::BillRow& row);
// {"rows": [...], "total": {...}, "currency_unit": "micro-USD"}
nlohmann::json BillReplyToJson(const faas::v1::BillReply& reply);
// Every field of the record, plus "cost" as for a bill row.
nlohmann::json InvocationRecordToJson(const faas::v1::InvocationRecord& record);
// {"method", "path", "host", "function", "created_unix_ms"}
nlohmann::json RouteToJson(const faas::v1::Route& route);
// {"started": S, "idle": I}
nlohmann::json PrewarmReplyToJson(const faas::v1::PrewarmReply& reply);
// {"id", "tenant", "functions": [...], "rate_per_sec", "burst", "created_unix_ms",
//  "revoked_unix_ms", "state": "active"|"revoked"}
nlohmann::json ApiKeyToJson(const faas::v1::ApiKey& key);
// {"id", "tenant", "functions", "rate_per_sec", "burst", "key"}: the one place the secret is
// printed.
nlohmann::json CreateKeyReplyToJson(const faas::v1::CreateKeyReply& reply);
// Every Trigger field (backoff as backoff_min_ms/backoff_max_ms) plus "state", "last_error",
// "lag", "in_flight", "delivered", "failed", "dead_lettered", in one flat object.
nlohmann::json TriggerStatusToJson(const faas::v1::TriggerStatus& status);
// Every QueueStats field.
nlohmann::json QueueStatsToJson(const faas::v1::QueueStats& stats);
// {"message_id", "origin_queue", "attempts", "error", "dead_unix_ms", "body"} with the body
// as for InvokeReplyToJson ("body_base64" when not UTF-8).
nlohmann::json DeadMessageToJson(const faas::v1::DeadMessage& message);
// {"dlq": DLQ, "messages": [...], "replayed": N}
nlohmann::json ListDeadReplyToJson(std::string_view dlq, const faas::v1::ListDeadReply& reply);
// The list replies as {"functions": [...]}, {"versions": [...]}, {"invocations": [...]},
// {"routes": [...]}, {"keys": [...]} and {"triggers": [...]}, each element as above.
nlohmann::json ListFunctionsReplyToJson(const faas::v1::ListFunctionsReply& reply);
nlohmann::json ListVersionsReplyToJson(const faas::v1::ListVersionsReply& reply);
nlohmann::json ListInvocationsReplyToJson(const faas::v1::ListInvocationsReply& reply);
nlohmann::json ListRoutesReplyToJson(const faas::v1::ListRoutesReply& reply);
nlohmann::json ListKeysReplyToJson(const faas::v1::ListKeysReply& reply);
nlohmann::json ListTriggersReplyToJson(const faas::v1::ListTriggersReply& reply);
// Pretty JSON plus '\n'; invalid UTF-8 in strings is replaced, never thrown.
std::string DumpJson(const nlohmann::json& j);

// Small helpers, public for tests.
using faas::Base64Encode;  // faas/base/text.h
using faas::IsValidUtf8;
// 1536 → "1.5 KiB"; below 1 KiB "812 B".
std::string FormatBytes(uint64_t bytes);
// Unix ms → "2024-05-01T12:00:00Z" (UTC); 0 → "-".
std::string FormatUnixMillis(int64_t unix_ms);
// 3.2 → "3.20 ms"
std::string FormatMillis(double ms);
// A rate for people: "100/s", "2.5/s"; below 1/s per minute ("30/m"), below 1/m per hour
// ("10/h"); 0 (no limit) → "-".
std::string FormatRate(double per_sec);
// At most the first `max_bytes` bytes of `data` on one line: printable ASCII and valid UTF-8
// as is, \n \r \t \\ escaped, other bytes as \xNN, C1 controls and bidi overrides as
// \uNNNN; "…" appended when something was cut. A UTF-8 character is never split.
std::string PreviewBytes(std::string_view data, std::size_t max_bytes);
// Unix ms → "2026-11-29T13:04:05.123Z" (UTC); 0 → "-".
std::string FormatUnixMillisPrecise(int64_t unix_ms);
// Nanoseconds as milliseconds with 2 decimals, rounded half up: 1'234'567 → "1.23".
std::string FormatNanosAsMillis(uint64_t ns);
// Money: micro-units as a decimal with 6 fractional digits, by integer arithmetic only
// (no rounding, no floating point): 1234 → "0.001234", 123456789 → "123.456789",
// -1 → "-0.000001".
std::string FormatMicros(int64_t micros);
// The currency from a unit such as "micro-USD": its last word ("USD"); "" when there is none.
std::string CurrencyName(std::string_view currency_unit);

}  // namespace faas::cli
