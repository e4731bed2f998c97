// Durations: parsing user-facing strings ("250ms", "2s", "5m", "1h") and formatting them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "faas/base/status.h"

namespace faas {

using Clock = std::chrono::steady_clock;

// Parses "<integer><unit>" with unit ns|us|ms|s|m|h, or a bare integer meaning milliseconds.
// Errors name the bad value: `duration "2x": unknown unit "x" (use ms, s, m or h)`.
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);
// "2s", "250ms", "1.5ms" style, for humans.
std::string FormatDuration(std::chrono::nanoseconds d);
// Wall-clock now in Unix milliseconds.
int64_t UnixMillisNow();
// Milliseconds as a double, for Server-Timing and tables.
inline double ToMillis(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

}  // namespace faas
