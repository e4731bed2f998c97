// CpuAccount: the sums that split an instance's kernel CPU into init, platform, invocations,
// background and teardown, fed the readings the process part would read.
#include "faas/metering/cpu_account.h"

#include <gtest/gtest.h>

namespace faas::metering {
namespace {

using std::chrono::nanoseconds;

TEST(CpuAccount, SpawnedWorkerSplitsItsStartAtTheJailedReading) {
  CpuAccount a;
  EXPECT_FALSE(a.IsReady());
  a.Ready(nanoseconds(9'000), nanoseconds(6'000));  // exec + jail 6 µs, load + faas_init 3 µs
  EXPECT_TRUE(a.IsReady());
  EXPECT_EQ(a.InitCpu(), nanoseconds(3'000));
  EXPECT_EQ(a.PlatformCpu(), nanoseconds(6'000));
}

TEST(CpuAccount, ForkedInstanceStartsInitialisedSoItsStartIsThePlatforms) {
  CpuAccount a;
  a.Ready(nanoseconds(400), std::nullopt);
  EXPECT_EQ(a.InitCpu(), nanoseconds(0));
  EXPECT_EQ(a.PlatformCpu(), nanoseconds(400));
}

TEST(CpuAccount, ACounterThatWentBackwardsBillsNothingNegative) {
  CpuAccount a;
  a.Ready(nanoseconds(100), nanoseconds(500));  // a jailed reading above the ready one
  EXPECT_EQ(a.InitCpu(), nanoseconds(0));
  EXPECT_EQ(a.PlatformCpu(), nanoseconds(100));
  a.InvocationStarts(nanoseconds(50));
  EXPECT_EQ(a.TakeBackground(nanoseconds(60)), nanoseconds(0));
  EXPECT_EQ(a.Since(nanoseconds(10)), nanoseconds(0));
}

TEST(CpuAccount, UseBetweenInvocationsIsBackgroundAndTheirOwnIsNot) {
  CpuAccount a;
  a.Ready(nanoseconds(1'000), std::nullopt);
  a.InvocationStarts(nanoseconds(1'200));  // 200 since ready: background
  a.InvocationEnded(nanoseconds(5'200));   // 4'000 the invocation's own (its caller's sum)
  a.InvocationStarts(nanoseconds(5'250));  // 50 between the two
  a.InvocationEnded(nanoseconds(6'000));
  EXPECT_EQ(a.TakeBackground(std::nullopt), nanoseconds(250));
  EXPECT_EQ(a.TakeBackground(std::nullopt), nanoseconds(0));  // taken once
}

TEST(CpuAccount, FinalReadingCountsTheTailThenTheTeardownIsThePlatforms) {
  CpuAccount a;
  a.Ready(nanoseconds(1'000), std::nullopt);
  a.InvocationStarts(nanoseconds(1'000));
  a.InvocationEnded(nanoseconds(2'000));
  EXPECT_EQ(a.TakeBackground(nanoseconds(2'300)), nanoseconds(300));  // a thread left running
  EXPECT_EQ(a.Since(nanoseconds(2'700)), nanoseconds(400));           // the kill and reap
}

TEST(CpuAccount, NoFinalReadingBeforeReady) {
  CpuAccount a;
  EXPECT_EQ(a.TakeBackground(nanoseconds(5'000)), nanoseconds(0));
}

}  // namespace
}  // namespace faas::metering
