// The Server-Timing header faasd sends with each invocation: millisecond values with three
// decimals, as "%.3f" printed them before they were formatted with integers (issue #14).
#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "faas/gateway/gateway.h"

namespace faas::gateway {
namespace {

using std::chrono::nanoseconds;

scheduler::InvokeResult Timings(nanoseconds queue, nanoseconds cold, nanoseconds exec,
                                nanoseconds cpu) {
  scheduler::InvokeResult r;
  r.timings.queue = queue;
  r.timings.cold = cold;
  r.timings.exec = exec;
  r.cpu = cpu;
  return r;
}

TEST(ServerTiming, NamesEachPhaseInMilliseconds) {
  EXPECT_EQ(ServerTiming(Timings(nanoseconds(12'000), nanoseconds(3'100'000), nanoseconds(200'000),
                                 nanoseconds(150'000))),
            "queue;dur=0.012, cold;dur=3.100, exec;dur=0.200, cpu;dur=0.150");
  EXPECT_EQ(ServerTiming(Timings(nanoseconds(0), nanoseconds(0), nanoseconds(0), nanoseconds(0))),
            "queue;dur=0.000, cold;dur=0.000, exec;dur=0.000, cpu;dur=0.000");
}

TEST(ServerTiming, RoundsToTheNearestMicrosecond) {
  const std::string s = ServerTiming(
      Timings(nanoseconds(1'499), nanoseconds(1'500), nanoseconds(999'999), nanoseconds(-2'600)));
  EXPECT_EQ(s, "queue;dur=0.001, cold;dur=0.002, exec;dur=1.000, cpu;dur=-0.003");
}

TEST(ServerTiming, MatchesPrintfAwayFromHalfMicroseconds) {
  for (int64_t ns : {int64_t{7}, int64_t{81'234}, int64_t{1'672'001}, int64_t{30'000'000'400},
                     int64_t{123'456'789'012}}) {
    char want[64];
    std::snprintf(want, sizeof want, "%.3f", static_cast<double>(ns) / 1e6);
    const std::string got =
        ServerTiming(Timings(nanoseconds(ns), nanoseconds(0), nanoseconds(0), nanoseconds(0)));
    EXPECT_EQ(got.substr(0, got.find(',')), std::string("queue;dur=") + want) << ns;
  }
}

}  // namespace
}  // namespace faas::gateway
