#include "flags.h"

#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/time.h"
#include "faas/cli/command.h"

namespace faas::cli {
namespace {

// store::Queue refuses longer queue names.
constexpr std::size_t kMaxQueueNameBytes = 200;
// Far above what one faasd serves; a bigger number is a typo.
constexpr double kMaxRatePerSec = 1'000'000;
constexpr std::string_view kRateForms =
    "must be a number per second (100), or per /s, /m or /h (100/s, 6000/m, 10/h)";

}  // namespace

void Problems::Add(std::string_view flag, std::string_view value, std::string_view why) {
  std::string line = std::string(flag) + " \"" + std::string(value) + "\": " + std::string(why);
  lines_.push_back(std::move(line));
}

Status Problems::ToStatus() const {
  std::string joined;
  for (const auto& line : lines_) {
    if (!joined.empty()) {
      joined += "; ";
    }
    joined += line;
  }
  return InvalidArgumentError(std::move(joined));
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::optional<std::chrono::milliseconds> ParseMillis(const std::string& text, std::string_view flag,
                                                     Problems& problems) {
  Result<std::chrono::nanoseconds> d = ParseDuration(text);
  if (!d.ok()) {
    problems.Add(flag, text, d.status().message());
    return std::nullopt;
  }
  if (*d < std::chrono::milliseconds(1)) {
    problems.Add(flag, text, "must be at least 1ms");
    return std::nullopt;
  }
  if (*d % std::chrono::milliseconds(1) != std::chrono::nanoseconds(0)) {
    problems.Add(flag, text, "must be a whole number of milliseconds");
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  return name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string_view::npos;
}

void CheckName(const std::string& name, std::string_view flag, Problems& problems) {
  if (!IsValidName(name)) {
    problems.Add(flag, name, kNamePattern);
  }
}

void CheckQueueName(const std::string& queue, std::string_view flag, Problems& problems) {
  if (queue.empty()) {
    problems.Add(flag, queue, "must not be empty");
  } else if (queue.size() > kMaxQueueNameBytes) {
    problems.Add(flag, queue, "must be at most 200 bytes");
  }
}

void CheckNotEmpty(const std::string& value, std::string_view flag, Problems& problems) {
  if (value.empty()) {
    problems.Add(flag, value, "must not be empty");
  }
}

void CheckNotEmptyIfGiven(const CLI::App* cmd, std::string_view flag, const std::string& value,
                          Problems& problems) {
  if (cmd->count(std::string(flag)) > 0) {
    CheckNotEmpty(value, flag, problems);
  }
}

CLI::Option* CheckedFlags::Add(const std::string& name, const std::string& help, CheckFn check) {
  std::string& raw = raw_.emplace_back();
  CLI::Option* option = cmd_->add_option(name, raw, help);
  entries_.push_back({option, &raw, std::move(check)});
  return option;
}

CLI::Option* CheckedFlags::Millis(const std::string& name, const std::string& help,
                                  std::optional<std::chrono::milliseconds>& out) {
  return Add(name, help, [&out, name](const std::string& raw, Problems& problems) {
    out = ParseMillis(raw, name, problems);
  });
}

void CheckedFlags::AddRate(std::string_view rate_what, std::string_view burst_what,
                           std::optional<double>& rate, std::optional<uint32_t>& burst) {
  CLI::Option* rate_option = Add(
      "--rate",
      std::string(rate_what) + ": 100/s, 6000/m, 10/h or a number per second (default: no limit)",
      [&rate](const std::string& raw, Problems& problems) {
        Result<double> r = ParseRate(raw);
        if (r.ok()) {
          rate = *r;
        } else {
          problems.Add("--rate", raw, r.status().message());
        }
      });
  rate_option->type_name("RATE");
  Add("--burst",
      "with --rate: " + std::string(burst_what) +
          " allowed at once (default: the rate, rounded up)",
      [&burst, rate_option](const std::string& raw, Problems& problems) {
        burst = ParseBounded<uint32_t>(raw, "--burst", 1, UINT32_MAX, problems);
        if (rate_option->count() == 0) {
          problems.Add("--burst", raw, "needs --rate");
        }
      })
      ->type_name("N");
}

void CheckedFlags::Check(Problems& problems) const {
  for (const Entry& e : entries_) {
    if (e.option->count() > 0) {
      e.check(*e.raw, problems);
    }
  }
}

Result<double> ParseRate(std::string_view text) {
  if (text.empty()) {
    return InvalidArgumentError("must not be empty");
  }
  std::string_view number = text;
  double seconds_per_unit = 1;
  if (std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    number = text.substr(0, slash);
    std::string_view unit = text.substr(slash + 1);
    if (unit == "m") {
      seconds_per_unit = 60;
    } else if (unit == "h") {
      seconds_per_unit = 3600;
    } else if (unit != "s") {
      return InvalidArgumentError("unknown unit \"" + std::string(unit) + "\" (use /s, /m or /h)");
    }
  }
  // Digits with an optional fraction: from_chars alone would also take "1e3", "inf" and "nan".
  std::size_t dot = number.find('.');
  if (!AllDigits(number.substr(0, dot)) ||
      (dot != std::string_view::npos && !AllDigits(number.substr(dot + 1)))) {
    return InvalidArgumentError(std::string(kRateForms));
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value,
                                   std::chars_format::fixed);
  if (ec == std::errc::result_out_of_range) {
    return InvalidArgumentError("too large (at most 1000000/s)");
  }
  if (ec != std::errc() || ptr != number.data() + number.size()) {
    return InvalidArgumentError(std::string(kRateForms));
  }
  double per_sec = value / seconds_per_unit;
  if (!(per_sec > 0)) {
    return InvalidArgumentError("must be more than 0 (leave it out for no limit)");
  }
  if (per_sec > kMaxRatePerSec) {
    return InvalidArgumentError("too large (at most 1000000/s)");
  }
  return per_sec;
}

Result<std::map<std::string, std::string>> ParseEnv(const std::vector<std::string>& pairs) {
  Problems problems;
  std::map<std::string, std::string> env;
  for (const auto& pair : pairs) {
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      problems.Add("--env", pair, "must be K=V with a non-empty K");
      continue;
    }
    std::string key = pair.substr(0, eq);
    if (!env.emplace(key, pair.substr(eq + 1)).second) {
      problems.Add("--env", pair, "\"" + key + "\" given more than once");
    }
  }
  if (!problems.Empty()) {
    return problems.ToStatus();
  }
  return env;
}

}  // namespace faas::cli
