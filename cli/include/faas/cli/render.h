// Rendering control-API replies for people (tables, key: value lines) and scripts (JSON),
// and building request messages from parsed flags. Pure functions; no I/O, no gRPC.
//
//   out << RenderFunctionTable(reply);           // faasctl list
//   out << DumpJson(FunctionInfoToJson(info));    // faasctl describe -o json
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "faas/base/status.h"
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
// Pretty JSON plus '\n'; invalid UTF-8 in strings is replaced, never thrown.
std::string DumpJson(const nlohmann::json& j);

// Small helpers, public for tests.
bool IsValidUtf8(std::string_view s);
std::string Base64Encode(std::string_view data);
// 1536 → "1.5 KiB"; below 1 KiB "812 B".
std::string FormatBytes(uint64_t bytes);
// Unix ms → "2024-05-01T12:00:00Z" (UTC); 0 → "-".
std::string FormatUnixMillis(int64_t unix_ms);
// 3.2 → "3.20 ms"
std::string FormatMillis(double ms);
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
