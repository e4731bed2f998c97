// ToHttpError: the HTTP status for each outcome, with the scheduler's code; one row per outcome.
#include <string_view>

#include <gtest/gtest.h>

#include "faas/gateway/gateway.h"

namespace faas::gateway {
namespace {

using scheduler::Outcome;

void ExpectHttpError(Outcome outcome, int status, std::string_view code) {
  HttpError e = ToHttpError(outcome);
  EXPECT_EQ(e.status, status) << code;
  EXPECT_EQ(std::string_view(e.code), code);
}

TEST(ToHttpError, OneRowPerOutcome) {
  ExpectHttpError(Outcome::kOk, 200, "ok");
  ExpectHttpError(Outcome::kFunctionError, 500, "function_error");
  ExpectHttpError(Outcome::kCrashed, 502, "function_crashed");
  ExpectHttpError(Outcome::kTimeout, 504, "function_timeout");
  ExpectHttpError(Outcome::kInitFailed, 502, "init_failed");
  ExpectHttpError(Outcome::kResponseTooLarge, 502, "response_too_large");
  ExpectHttpError(Outcome::kSandboxViolation, 502, "sandbox_violation");
  ExpectHttpError(Outcome::kNoCapacity, 503, "no_capacity");
  ExpectHttpError(Outcome::kNotFound, 404, "function_not_found");
  ExpectHttpError(Outcome::kPayloadTooLarge, 413, "payload_too_large");
  ExpectHttpError(Outcome::kShuttingDown, 503, "shutting_down");
  ExpectHttpError(Outcome::kInternal, 500, "internal");
  ExpectHttpError(Outcome::kNodeLost, 502, "node_lost");
}

}  // namespace
}  // namespace faas::gateway
