// OutcomeName: the one table of outcome codes (the ledger, logs and the API's error codes use
// it); one row per outcome.
#include <cstring>
#include <string_view>

#include <gtest/gtest.h>

#include "faas/scheduler/scheduler.h"

namespace faas::scheduler {
namespace {

TEST(OutcomeName, OneStableCodePerOutcome) {
  EXPECT_EQ(OutcomeName(Outcome::kOk), "ok");
  EXPECT_EQ(OutcomeName(Outcome::kFunctionError), "function_error");
  EXPECT_EQ(OutcomeName(Outcome::kCrashed), "function_crashed");
  EXPECT_EQ(OutcomeName(Outcome::kTimeout), "function_timeout");
  EXPECT_EQ(OutcomeName(Outcome::kInitFailed), "init_failed");
  EXPECT_EQ(OutcomeName(Outcome::kResponseTooLarge), "response_too_large");
  EXPECT_EQ(OutcomeName(Outcome::kSandboxViolation), "sandbox_violation");
  EXPECT_EQ(OutcomeName(Outcome::kNoCapacity), "no_capacity");
  EXPECT_EQ(OutcomeName(Outcome::kNotFound), "function_not_found");
  EXPECT_EQ(OutcomeName(Outcome::kPayloadTooLarge), "payload_too_large");
  EXPECT_EQ(OutcomeName(Outcome::kShuttingDown), "shutting_down");
  EXPECT_EQ(OutcomeName(Outcome::kInternal), "internal");
}

TEST(OutcomeName, IsACStringToo) {
  // gateway::HttpError keeps .data() as a const char*.
  std::string_view name = OutcomeName(Outcome::kTimeout);
  EXPECT_EQ(std::strlen(name.data()), name.size());
}

}  // namespace
}  // namespace faas::scheduler
