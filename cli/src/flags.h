// Checking faasctl's flag values (private to cli/). CLI11 checks the shape of the command line;
// these check the values it cannot (integers, durations, names) after app.parse(), and collect
// every problem so the user sees all of them in one run.
//
//   CheckedFlags flags(deploy_cmd);
//   flags.Millis("--timeout", "wall-clock limit", cmd.options.timeout)->type_name("DUR");
//   ...app.parse(args)...
//   Problems problems;
//   flags.Check(problems);  // "--timeout \"2x\": duration \"2x\": unknown unit ..."
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/base/status.h"

namespace faas::cli {

// Lines such as `--memory "0": must be at least 1`, joined with "; " into one kInvalidArgument.
class Problems {
 public:
  void Add(std::string_view flag, std::string_view value, std::string_view why);
  void AddRaw(std::string line) { lines_.push_back(std::move(line)); }
  bool Empty() const { return lines_.empty(); }
  Status ToStatus() const;

 private:
  std::vector<std::string> lines_;
};

constexpr std::string_view kNamePattern = "must match [a-z][a-z0-9-]{0,62}";

// Decimal digits only: CLI11's own unsigned conversion accepts "-5" (strtoull wraps) and octal.
template <typename T>
std::optional<T> ParseUnsigned(const std::string& text, std::string_view flag, Problems& problems) {
  T value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::result_out_of_range) {
    problems.Add(flag, text, text.empty() ? "must not be empty" : "too large");
    return std::nullopt;
  }
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    problems.Add(flag, text, "must be a non-negative integer");
    return std::nullopt;
  }
  return value;
}

// An unsigned value within [min, max]; "must be at least MIN" when max is T's maximum.
template <typename T>
std::optional<T> ParseBounded(const std::string& text, std::string_view flag, T min, T max,
                              Problems& problems) {
  std::optional<T> v = ParseUnsigned<T>(text, flag, problems);
  if (v && (*v < min || *v > max)) {
    problems.Add(flag, text,
                 max == std::numeric_limits<T>::max()
                     ? "must be at least " + std::to_string(min)
                     : "must be " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return v;
}
// A duration of whole milliseconds, at least 1ms: the control API carries milliseconds and 0
// means "default".
std::optional<std::chrono::milliseconds> ParseMillis(const std::string& text, std::string_view flag,
                                                     Problems& problems);

// True for a non-empty run of ASCII digits.
bool AllDigits(std::string_view s);

// Function and trigger names: [a-z][a-z0-9-]{0,62} (docs/cli.md).
bool IsValidName(std::string_view name);
// Checks of one value, all with the same signature so a subcommand can take any of them.
void CheckName(const std::string& name, std::string_view flag, Problems& problems);
void CheckQueueName(const std::string& queue, std::string_view flag, Problems& problems);
void CheckNotEmpty(const std::string& value, std::string_view flag, Problems& problems);
// A flag that was given must have a value.
void CheckNotEmptyIfGiven(const CLI::App* cmd, std::string_view flag, const std::string& value,
                          Problems& problems);

// Options of one subcommand that CLI11 stores as text and Check() parses afterwards: each check
// runs only if its option was given, in the order the options were added. Not copyable: CLI11
// keeps pointers into it.
class CheckedFlags {
 public:
  using CheckFn = std::function<void(const std::string& raw, Problems& problems)>;

  explicit CheckedFlags(CLI::App* cmd) : cmd_(cmd) {}
  CheckedFlags(const CheckedFlags&) = delete;
  CheckedFlags& operator=(const CheckedFlags&) = delete;

  // `check` gets the raw text; problems name the option by `name` (e.g. "--batch", "N").
  CLI::Option* Add(const std::string& name, const std::string& help, CheckFn check);
  // An unsigned number within [min, max] into `out` (T or std::optional<T>).
  template <typename T, typename Out>
  CLI::Option* Unsigned(const std::string& name, const std::string& help, Out& out, T min = 0,
                        T max = std::numeric_limits<T>::max()) {
    return Add(name, help, [&out, name, min, max](const std::string& raw, Problems& problems) {
      if (std::optional<T> v = ParseBounded<T>(raw, name, min, max, problems)) {
        out = *v;
      }
    });
  }
  CLI::Option* Millis(const std::string& name, const std::string& help,
                      std::optional<std::chrono::milliseconds>& out);
  // --rate and --burst (deploy, key create): `what` is what they count, e.g. "requests with this
  // key" and "requests" for the help text.
  void AddRate(std::string_view rate_what, std::string_view burst_what, std::optional<double>& rate,
               std::optional<uint32_t>& burst);

  void Check(Problems& problems) const;

 private:
  struct Entry {
    CLI::Option* option;
    const std::string* raw;
    CheckFn check;
  };
  CLI::App* cmd_;
  std::deque<std::string> raw_;  // a deque: CLI11 holds pointers to its elements
  std::vector<Entry> entries_;
};

}  // namespace faas::cli
