#include "faas/cli/exit_code.h"

#include <gtest/gtest.h>

namespace faas::cli {
namespace {

constexpr const char* kServer = "127.0.0.1:9090";

RpcError Rpc(RpcCode code, std::string message, std::string faas_code, bool connected) {
  return {code, std::move(message), std::move(faas_code), connected};
}

TEST(MapOutcome, OkIsZeroWithNothingToSay) {
  ExitReport r = MapOutcome(Outcome::Ok(), kServer);
  EXPECT_EQ(r.code, ExitCode::kOk);
  EXPECT_EQ(r.error, "");
}

TEST(MapOutcome, UsageIsTwoAndPointsAtHelp) {
  ExitReport r = MapOutcome(Outcome::Usage("NAME is required"), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 2);
  EXPECT_EQ(r.error, "error: NAME is required\nrun faasctl --help");
}

TEST(MapOutcome, RefusedIsOne) {
  ExitReport r = MapOutcome(Outcome::Refused("function_timeout: took 10s"), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 1);
  EXPECT_EQ(r.error, "error: function_timeout: took 10s");
}

TEST(MapOutcome, FaasCodeFromTrailersIsOneAndPrinted) {
  ExitReport r = MapOutcome(Outcome::RpcFailed(Rpc(RpcCode::kInvalidArgument, "not an ELF file",
                                                   "invalid_artifact", true)),
                            kServer);
  EXPECT_EQ(static_cast<int>(r.code), 1);
  EXPECT_EQ(r.error, "error: invalid_artifact: not an ELF file");
}

TEST(MapOutcome, FaasCodeWinsEvenOverUnavailable) {
  // faasd itself answered "unavailable": it was reached, so the server said no.
  ExitReport r = MapOutcome(
      Outcome::RpcFailed(Rpc(RpcCode::kUnavailable, "draining", "no_capacity", true)), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 1);
  EXPECT_EQ(r.error, "error: no_capacity: draining");
}

TEST(MapOutcome, UnavailableWithoutFaasCodeIsThree) {
  ExitReport r = MapOutcome(
      Outcome::RpcFailed(Rpc(RpcCode::kUnavailable, "Connection refused", "", false)), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 3);
  EXPECT_EQ(r.error, "error: cannot reach faasd at 127.0.0.1:9090: Connection refused");
}

TEST(MapOutcome, DeadlineBeforeConnectingIsThree) {
  ExitReport r = MapOutcome(
      Outcome::RpcFailed(Rpc(RpcCode::kDeadlineExceeded, "Deadline Exceeded", "", false)), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 3);
  EXPECT_EQ(r.error, "error: cannot reach faasd at 127.0.0.1:9090: Deadline Exceeded");
}

TEST(MapOutcome, DeadlineAfterConnectingIsOne) {
  ExitReport r = MapOutcome(
      Outcome::RpcFailed(Rpc(RpcCode::kDeadlineExceeded, "Deadline Exceeded", "", true)), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 1);
  EXPECT_EQ(r.error, "error: deadline_exceeded: Deadline Exceeded");
}

TEST(MapOutcome, OtherCodeWithoutFaasCodeIsOneWithSnakeCaseName) {
  ExitReport r = MapOutcome(
      Outcome::RpcFailed(Rpc(RpcCode::kFailedPrecondition, "no cgroup", "", true)), kServer);
  EXPECT_EQ(static_cast<int>(r.code), 1);
  EXPECT_EQ(r.error, "error: failed_precondition: no cgroup");
}

TEST(RpcCodeName, IsLowerSnakeCase) {
  EXPECT_EQ(RpcCodeName(RpcCode::kNotFound), "not_found");
  EXPECT_EQ(RpcCodeName(RpcCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(RpcCodeName(RpcCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(RpcCodeName(static_cast<RpcCode>(99)), "code_99");
}

}  // namespace
}  // namespace faas::cli
