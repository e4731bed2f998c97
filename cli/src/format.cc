// Small formatters for faasctl's output (declared in render.h): sizes, times, rates, money,
// and byte previews safe to print on a terminal.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>

#include "faas/base/text.h"
#include "faas/cli/render.h"

namespace faas::cli {

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string FormatUnixMillis(int64_t unix_ms) {
  if (unix_ms == 0) {
    return "-";
  }
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm_utc {};
  if (gmtime_r(&secs, &tm_utc) == nullptr) {
    return "-";
  }
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return n == 0 ? "-" : std::string(buf, n);
}

std::string FormatMillis(double ms) {
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  return buf;
}

std::string FormatRate(double per_sec) {
  if (!std::isfinite(per_sec) || !(per_sec > 0)) {
    return "-";
  }
  // The slack absorbs rounding in n/60 and n/3600 (6000/m is 100/s; 1/m times 60 is 1).
  constexpr double kSlack = 1e-9;
  char buf[48];
  if (per_sec >= 1 - kSlack) {
    (void)std::snprintf(buf, sizeof buf, "%.10g/s", per_sec);
  } else if (per_sec * 60 >= 1 - kSlack) {
    (void)std::snprintf(buf, sizeof buf, "%.10g/m", per_sec * 60);
  } else {
    (void)std::snprintf(buf, sizeof buf, "%.10g/h", per_sec * 3600);
  }
  return buf;
}

std::string PreviewBytes(std::string_view data, std::size_t max_bytes) {
  std::size_t end = std::min(data.size(), max_bytes);
  std::string out;
  std::size_t i = 0;
  char buf[16];
  while (i < end) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20U && c < 0x7FU) {
      out += static_cast<char>(c);
    } else {
      // 0 for a control byte, DEL or a byte that does not start well-formed UTF-8.
      std::size_t len = c >= 0x80U ? Utf8SequenceLength(data, i) : 0;
      if (len > 0) {
        if (i + len > end) {
          break;  // the character does not fit; never split it
        }
        uint32_t cp = c & (0x7FU >> len);
        for (std::size_t k = 1; k < len; ++k) {
          cp = (cp << 6) | (static_cast<unsigned char>(data[i + k]) & 0x3FU);
        }
        // C1 controls, zero-width and direction marks, line separators and bidi
        // overrides/isolates can hide or rearrange what a terminal shows.
        bool hidden = cp <= 0x9FU || (cp >= 0x200BU && cp <= 0x200FU) ||
                      (cp >= 0x2028U && cp <= 0x202EU) || (cp >= 0x2066U && cp <= 0x2069U) ||
                      cp == 0xFEFFU;
        if (hidden) {
          (void)std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
          out += buf;
        } else {
          out.append(data.substr(i, len));
        }
        i += len;
        continue;
      }
      (void)std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
      out += buf;
    }
    ++i;
  }
  if (i < data.size()) {
    out += "\u2026";
  }
  return out;
}

std::string FormatUnixMillisPrecise(int64_t unix_ms) {
  if (unix_ms == 0) {
    return "-";
  }
  // Floor division, so times before 1970 still get a millisecond part in 0..999.
  int64_t secs = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm_utc {};
  if (gmtime_r(&t, &tm_utc) == nullptr) {
    return "-";
  }
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  if (n == 0) {
    return "-";
  }
  char ms_buf[8];
  (void)std::snprintf(ms_buf, sizeof ms_buf, ".%03dZ", static_cast<int>(millis));
  return std::string(buf, n) + ms_buf;
}

std::string FormatNanosAsMillis(uint64_t ns) {
  // Hundredths of a millisecond, rounded half up without overflowing near UINT64_MAX.
  uint64_t hundredths = ns / 10'000 + (ns % 10'000 >= 5'000 ? 1 : 0);
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%llu.%02llu",
                      static_cast<unsigned long long>(hundredths / 100),
                      static_cast<unsigned long long>(hundredths % 100));
  return buf;
}

std::string FormatMicros(int64_t micros) {
  constexpr uint64_t kMicrosPerUnit = 1'000'000;
  // The magnitude in unsigned arithmetic, so INT64_MIN does not overflow.
  uint64_t magnitude =
      micros < 0 ? ~static_cast<uint64_t>(micros) + 1 : static_cast<uint64_t>(micros);
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%s%llu.%06llu", micros < 0 ? "-" : "",
                      static_cast<unsigned long long>(magnitude / kMicrosPerUnit),
                      static_cast<unsigned long long>(magnitude % kMicrosPerUnit));
  return buf;
}

std::string CurrencyName(std::string_view currency_unit) {
  while (!currency_unit.empty() && currency_unit.back() == ' ') {
    currency_unit.remove_suffix(1);
  }
  std::size_t cut = currency_unit.find_last_of(" -");
  std::string_view last =
      cut == std::string_view::npos ? currency_unit : currency_unit.substr(cut + 1);
  return std::string(last);
}

}  // namespace faas::cli
