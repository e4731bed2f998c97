// `bill --since/--until` values: a UTC date or date-time, or a duration back from now.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "faas/base/time.h"
#include "faas/cli/command.h"

#include "flags.h"

namespace faas::cli {
namespace {

// Reads exactly `n` ASCII digits at `pos` and moves past them.
bool ReadDigits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) {
    return false;
  }
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

Status BadTime(std::string_view text, std::string_view why) {
  return InvalidArgumentError("time \"" + std::string(text) + "\": " + std::string(why));
}

constexpr int64_t kMillisPerDay = 86'400'000;
constexpr std::string_view kTimeForms =
    "not a date (2026-11-29, 2026-11-29T13:00, 2026-11-29T13:00:00Z) or a duration back from "
    "now (30m, 1h, 7d)";

// "YYYY-MM-DD[(T|t| )HH:MM[:SS[.fff]][Z|z|(+|-)HH:MM]]" → Unix ms; no zone means UTC.
Result<int64_t> ParseDateTime(std::string_view text) {
  auto bad = [text](std::string_view why) { return BadTime(text, why); };
  std::size_t pos = 0;
  int year = 0;
  int month = 0;
  int day = 0;
  if (!ReadDigits(text, pos, 4, year) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, pos, 2, month) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, pos, 2, day)) {
    return bad("a date must look like 2026-11-29");
  }
  if (month < 1 || month > 12) {
    return bad("month must be 01..12");
  }
  std::chrono::year_month_day ymd{std::chrono::year(year),
                                  std::chrono::month(static_cast<unsigned>(month)),
                                  std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) {
    return bad("no such day");
  }
  int64_t ms =
      static_cast<int64_t>(std::chrono::sys_days{ymd}.time_since_epoch().count()) * kMillisPerDay;
  if (pos == text.size()) {
    return ms;
  }
  static constexpr std::string_view kTimeShape =
      "a time must look like T13:00, T13:00:00 or T13:00:00.250, then Z or +HH:MM if not UTC";
  char sep = text[pos++];
  int hour = 0;
  int minute = 0;
  int second = 0;
  if ((sep != 'T' && sep != 't' && sep != ' ') || !ReadDigits(text, pos, 2, hour) ||
      pos >= text.size() || text[pos++] != ':' || !ReadDigits(text, pos, 2, minute)) {
    return bad(kTimeShape);
  }
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!ReadDigits(text, pos, 2, second)) {
      return bad(kTimeShape);
    }
  }
  int64_t fraction_ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) {  // milliseconds; finer digits are dropped
        fraction_ms = fraction_ms * 10 + (text[pos] - '0');
      }
      ++digits;
      ++pos;
    }
    if (digits == 0) {
      return bad(kTimeShape);
    }
    for (std::size_t d = digits; d < 3; ++d) {
      fraction_ms *= 10;
    }
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return bad("hour must be 00..23, minutes and seconds 00..59");
  }
  int64_t offset_ms = 0;
  if (pos < text.size()) {
    char zone = text[pos++];
    if (zone == 'Z' || zone == 'z') {
      // UTC
    } else if (zone == '+' || zone == '-') {
      int offset_hour = 0;
      int offset_minute = 0;
      if (!ReadDigits(text, pos, 2, offset_hour) || pos >= text.size() || text[pos++] != ':' ||
          !ReadDigits(text, pos, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
        return bad("a zone offset must look like +02:00");
      }
      offset_ms = (int64_t{offset_hour} * 60 + offset_minute) * 60'000;
      if (zone == '-') {
        offset_ms = -offset_ms;
      }
    } else {
      return bad(kTimeShape);
    }
    if (pos != text.size()) {
      return bad(kTimeShape);
    }
  }
  // Local time = UTC + offset, so UTC = local time - offset.
  return ms + ((int64_t{hour} * 60 + minute) * 60 + second) * 1000 + fraction_ms - offset_ms;
}

// "30m", "1h", "7d" → milliseconds.
Result<int64_t> ParseAgo(std::string_view text) {
  auto bad = [text](std::string_view why) { return BadTime(text, why); };
  if (AllDigits(text)) {
    // ParseDuration would read a bare number as ms; here that is more likely a mistake.
    return bad("a duration back from now needs a unit (30m, 1h, 7d)");
  }
  if (text.back() == 'd') {
    std::string_view number = text.substr(0, text.size() - 1);
    uint64_t days = 0;
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), days);
    if (!AllDigits(number) || ptr != number.data() + number.size()) {
      return bad(kTimeForms);
    }
    if (ec == std::errc::result_out_of_range ||
        days > static_cast<uint64_t>(INT64_MAX / kMillisPerDay)) {
      return bad("too large");
    }
    return static_cast<int64_t>(days) * kMillisPerDay;
  }
  Result<std::chrono::nanoseconds> d = ParseDuration(text);
  if (!d.ok()) {
    bool too_large = d.status().message().ends_with("too large");
    return bad(too_large ? std::string_view("too large") : kTimeForms);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
}

}  // namespace

Result<int64_t> ParseTimeArg(std::string_view text, int64_t now_unix_ms) {
  if (text.empty()) {
    return BadTime(text, "must not be empty");
  }
  // A date starts with a four-digit year and '-'; anything else is a duration back from now.
  bool is_date = text.size() >= 5 && AllDigits(text.substr(0, 4)) && text[4] == '-';
  int64_t t = 0;
  if (is_date) {
    FAAS_ASSIGN_OR_RETURN(t, ParseDateTime(text));
  } else {
    FAAS_ASSIGN_OR_RETURN(int64_t ago, ParseAgo(text));
    if (ago > now_unix_ms) {
      return BadTime(text, "is before 1970");
    }
    t = now_unix_ms - ago;
  }
  // 0 means "no bound" on the wire, so the first representable instant is 1 ms after the epoch.
  if (t < 1) {
    return BadTime(text, "is before 1970");
  }
  return t;
}

}  // namespace faas::cli
