#include "faas/base/time.h"

#include <charconv>
#include <cstdio>

namespace faas {

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("duration \"" + std::string(text) + "\": " + std::string(why));
  };
  if (text.empty()) {
    return bad("empty");
  }
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) {
    return bad("must start with a non-negative integer");
  }
  std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  uint64_t mult = 0;
  if (unit.empty() || unit == "ms") {
    mult = 1'000'000;
  } else if (unit == "ns") {
    mult = 1;
  } else if (unit == "us") {
    mult = 1'000;
  } else if (unit == "s") {
    mult = 1'000'000'000;
  } else if (unit == "m") {
    mult = 60'000'000'000;
  } else if (unit == "h") {
    mult = 3'600'000'000'000;
  } else {
    return bad("unknown unit \"" + std::string(unit) + "\" (use ms, s, m or h)");
  }
  if (value > static_cast<uint64_t>(INT64_MAX) / mult) {
    return bad("too large");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(value * mult));
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  char buf[64];
  if (ns % 3'600'000'000'000 == 0 && ns != 0) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(ns / 3'600'000'000'000));
  } else if (ns % 60'000'000'000 == 0 && ns != 0) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(ns / 60'000'000'000));
  } else if (ns % 1'000'000'000 == 0 && ns != 0) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ns / 1'000'000'000));
  } else if (ns % 1'000'000 == 0) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ns / 1'000'000));
  } else {
    std::snprintf(buf, sizeof buf, "%.3fms", ToMillis(d));
  }
  return buf;
}

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace faas
