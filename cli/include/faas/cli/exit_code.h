// How a faasctl command ends: exit status and the line printed to stderr (docs/cli.md).
//
//   Outcome o = Outcome::RpcFailed({RpcCode::kNotFound, "no function \"x\"", "not_found", true});
//   ExitReport r = MapOutcome(o, "127.0.0.1:9090");  // {kRefused, "error: not_found: no ..."}
//
// MapOutcome is the only place that chooses an exit status; each row has a unit test.
#pragma once

#include <string>
#include <string_view>

namespace faas::cli {

enum class ExitCode : int {
  kOk = 0,
  kRefused = 1,      // the server (or the function, for invoke) said no
  kUsage = 2,        // bad arguments or flag values; nothing was sent
  kUnreachable = 3,  // no answer from faasd
};

// gRPC status codes, same numbers as grpc::StatusCode (checked in run.cc), so this header
// needs no gRPC include.
enum class RpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "not_found", "deadline_exceeded", ...; "code_<n>" for numbers outside the table.
std::string RpcCodeName(RpcCode code);

// A finished RPC that did not succeed.
struct RpcError {
  RpcCode code = RpcCode::kOk;
  std::string message;     // the gRPC status message
  std::string faas_code;   // trailing metadata "faas-code"; empty when absent
  bool connected = false;  // the channel had reached faasd (READY) when the call ended
};

struct Outcome {
  enum class Kind { kOk, kUsage, kRefused, kRpcFailed };
  Kind kind = Kind::kOk;
  std::string message;  // kUsage: what is wrong; kRefused: "<code>: <message>"
  RpcError rpc;         // kRpcFailed

  static Outcome Ok() { return {}; }
  static Outcome Usage(std::string m) { return {Kind::kUsage, std::move(m), {}}; }
  static Outcome Refused(std::string m) { return {Kind::kRefused, std::move(m), {}}; }
  static Outcome RpcFailed(RpcError e) { return {Kind::kRpcFailed, {}, std::move(e)}; }
};

struct ExitReport {
  ExitCode code = ExitCode::kOk;
  std::string error;  // for stderr, without trailing newline; empty when there is nothing to say
};

// The table:
//   kOk                                          → 0
//   kUsage                                       → 2 "error: <message>\nrun faasctl --help"
//   kRefused                                     → 1 "error: <message>"
//   kRpcFailed with faas-code                    → 1 "error: <faas-code>: <message>"
//   kRpcFailed UNAVAILABLE (no faas-code)        → 3 "error: cannot reach faasd at <server>:
//   <message>" kRpcFailed DEADLINE_EXCEEDED, not connected  → 3 (same line) kRpcFailed any other
//   code                    → 1 "error: <code_name>: <message>"
ExitReport MapOutcome(const Outcome& outcome, std::string_view server);

}  // namespace faas::cli
