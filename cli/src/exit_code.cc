#include "faas/cli/exit_code.h"

#include <array>
#include <string_view>

namespace faas::cli {
namespace {

constexpr std::array<std::string_view, 17> kRpcCodeNames = {
    "ok",                   // 0
    "cancelled",            // 1
    "unknown",              // 2
    "invalid_argument",     // 3
    "deadline_exceeded",    // 4
    "not_found",            // 5
    "already_exists",       // 6
    "permission_denied",    // 7
    "resource_exhausted",   // 8
    "failed_precondition",  // 9
    "aborted",              // 10
    "out_of_range",         // 11
    "unimplemented",        // 12
    "internal",             // 13
    "unavailable",          // 14
    "data_loss",            // 15
    "unauthenticated",      // 16
};

}  // namespace

std::string RpcCodeName(RpcCode code) {
  int n = static_cast<int>(code);
  if (n >= 0 && static_cast<std::size_t>(n) < kRpcCodeNames.size()) {
    return std::string(kRpcCodeNames[static_cast<std::size_t>(n)]);
  }
  return "code_" + std::to_string(n);
}

ExitReport MapOutcome(const Outcome& outcome, std::string_view server) {
  switch (outcome.kind) {
    case Outcome::Kind::kOk:
      return {ExitCode::kOk, {}};
    case Outcome::Kind::kUsage:
      return {ExitCode::kUsage, "error: " + outcome.message + "\nrun faasctl --help"};
    case Outcome::Kind::kRefused:
      return {ExitCode::kRefused, "error: " + outcome.message};
    case Outcome::Kind::kRpcFailed:
      break;
  }
  const RpcError& rpc = outcome.rpc;
  if (!rpc.faas_code.empty()) {
    // faasd answered with a docs/http-api.md code: whatever the gRPC code, the server said no.
    return {ExitCode::kRefused, "error: " + rpc.faas_code + ": " + rpc.message};
  }
  bool unreachable = rpc.code == RpcCode::kUnavailable ||
                     (rpc.code == RpcCode::kDeadlineExceeded && !rpc.connected);
  if (unreachable) {
    return {ExitCode::kUnreachable,
            "error: cannot reach faasd at " + std::string(server) + ": " + rpc.message};
  }
  return {ExitCode::kRefused, "error: " + RpcCodeName(rpc.code) + ": " + rpc.message};
}

}  // namespace faas::cli
