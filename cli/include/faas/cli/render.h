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

nlohmann::json ConfigToJson(const faas::v1::FunctionConfig& config);
nlohmann::json VersionInfoToJson(const faas::v1::VersionInfo& info);
nlohmann::json DeployReplyToJson(const faas::v1::DeployReply& reply);
nlohmann::json FunctionInfoToJson(const faas::v1::FunctionInfo& info);
// Body and logs as UTF-8 strings ("body", "logs") when valid UTF-8, else base64 under
// "body_base64" / "logs_base64".
nlohmann::json InvokeReplyToJson(const faas::v1::InvokeReply& reply);
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

}  // namespace faas::cli
