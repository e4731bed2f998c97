// argv → Invocation with CLI11. CLI11 checks the shape (subcommands, arity, enum values);
// we check the values CLI11 cannot (durations, integers, K=V) and report them all at once.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/base/time.h"
#include "faas/base/unique_fd.h"
#include "faas/cli/command.h"

namespace faas::cli {
namespace {

// Collects every bad flag value so the user sees all of them in one run (STYLE §4).
class Problems {
 public:
  void Add(std::string_view flag, std::string_view value, std::string_view why) {
    std::string line = std::string(flag) + " \"" + std::string(value) + "\": " + std::string(why);
    lines_.push_back(std::move(line));
  }
  void AddRaw(std::string line) { lines_.push_back(std::move(line)); }
  bool Empty() const { return lines_.empty(); }
  Status ToStatus() const {
    std::string joined;
    for (const auto& line : lines_) {
      if (!joined.empty()) {
        joined += "; ";
      }
      joined += line;
    }
    return InvalidArgumentError(std::move(joined));
  }

 private:
  std::vector<std::string> lines_;
};

// Decimal only: CLI11's own unsigned conversion accepts "-5" (strtoull wraps) and octal.
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

// The control API carries milliseconds; 0 would mean "default", so durations must be >= 1ms
// and whole milliseconds.
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

// A --since/--until value as Unix ms, with `now` fixed once per parse so relative values agree.
std::optional<int64_t> ParseTimeFlag(const std::string& text, std::string_view flag, int64_t now,
                                     Problems& problems) {
  Result<int64_t> t = ParseTimeArg(text, now);
  if (!t.ok()) {
    problems.Add(flag, text, t.status().message());
    return std::nullopt;
  }
  return *t;
}

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

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
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

// Raw flag values, filled by CLI11, checked after the parse.
struct RawDeploy {
  std::string memory, timeout, cpu_limit, min_warm, max_instances, idle_ttl, max_body;
  std::string queue_depth, queue_timeout;
  std::vector<std::string> env;
};
struct RawRollback {
  std::string version;
};
struct RawBill {
  std::string since, until;
};
struct RawInvocations {
  std::string last;
};
struct RawRate {
  std::string rate, burst;
};
struct RawTrigger {
  std::string batch, concurrency, max_attempts, backoff, visibility_timeout;
};

constexpr uint32_t kMaxInvocations = 1000;
constexpr uint32_t kMaxPrewarm = 1000;
constexpr uint32_t kMaxDeadLetters = 1000;
// The trigger manager's bounds (triggers/triggers.h TriggerSpec).
constexpr uint32_t kMaxConcurrency = 1024;
constexpr uint32_t kMaxAttempts = 100;
// store::Queue refuses longer queue names.
constexpr std::size_t kMaxQueueNameBytes = 200;
// Far above what one faasd serves; a bigger number is a typo.
constexpr double kMaxRatePerSec = 1'000'000;

constexpr std::string_view kNamePattern = "must match [a-z][a-z0-9-]{0,62}";
constexpr std::string_view kRateForms =
    "must be a number per second (100), or per /s, /m or /h (100/s, 6000/m, 10/h)";
constexpr std::string_view kSourceForms = "must be redis://HOST:PORT[/DB] or embedded";

// Function and trigger names: [a-z][a-z0-9-]{0,62} (DESIGN §4.4).
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

// A flag that was given must have a value.
void CheckNotEmpty(const CLI::App* cmd, std::string_view flag, const std::string& value,
                   Problems& problems) {
  if (cmd->count(std::string(flag)) > 0 && value.empty()) {
    problems.Add(flag, value, "must not be empty");
  }
}

// An unsigned flag value within [min, max].
std::optional<uint32_t> ParseBounded(const std::string& text, std::string_view flag, uint32_t min,
                                     uint32_t max, Problems& problems) {
  std::optional<uint32_t> v = ParseUnsigned<uint32_t>(text, flag, problems);
  if (!v) {
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    problems.Add(flag, text,
                 max == UINT32_MAX ? "must be at least " + std::to_string(min)
                                   : "must be " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

// --rate and --burst, shared by deploy and key create.
void ParseRateFlags(const CLI::App* cmd, const RawRate& raw, std::optional<double>& rate,
                    std::optional<uint32_t>& burst, Problems& problems) {
  bool has_rate = cmd->count("--rate") > 0;
  if (has_rate) {
    Result<double> r = ParseRate(raw.rate);
    if (r.ok()) {
      rate = *r;
    } else {
      problems.Add("--rate", raw.rate, r.status().message());
    }
  }
  if (cmd->count("--burst") > 0) {
    burst = ParseBounded(raw.burst, "--burst", 1, UINT32_MAX, problems);
    if (!has_rate) {
      problems.Add("--burst", raw.burst, "needs --rate");
    }
  }
}

// --backoff MIN..MAX, two durations of whole milliseconds with MIN <= MAX.
void ParseBackoff(const std::string& text, TriggerAddCommand& cmd, Problems& problems) {
  std::size_t dots = text.find("..");
  if (dots == std::string::npos) {
    problems.Add("--backoff", text, "must be MIN..MAX, e.g. 100ms..30s");
    return;
  }
  std::optional<std::chrono::milliseconds> min =
      ParseMillis(text.substr(0, dots), "--backoff minimum", problems);
  std::optional<std::chrono::milliseconds> max =
      ParseMillis(text.substr(dots + 2), "--backoff maximum", problems);
  if (min && max && *min > *max) {
    problems.Add("--backoff", text,
                 "minimum " + FormatDuration(*min) + " is above maximum " + FormatDuration(*max));
    return;
  }
  cmd.backoff_min = min;
  cmd.backoff_max = max;
}

// Source, stream, group and queue of `trigger add`, checked together.
void CheckTriggerSource(const CLI::App* cmd, const TriggerAddCommand& t, Problems& problems) {
  bool has_stream = cmd->count("--stream") > 0;
  bool has_group = cmd->count("--group") > 0;
  bool has_queue = cmd->count("--queue") > 0;
  CheckNotEmpty(cmd, "--stream", t.stream, problems);
  CheckNotEmpty(cmd, "--group", t.group, problems);
  if (has_queue) {
    CheckQueueName(t.queue, "--queue", problems);
  }
  if (t.source == "embedded") {
    if (!has_queue) {
      problems.Add("--source", t.source, "needs --queue");
    }
    if (has_stream) {
      problems.Add("--stream", t.stream, "is only for a redis:// source");
    }
    if (has_group) {
      problems.Add("--group", t.group, "is only for a redis:// source");
    }
  } else if (t.source.starts_with("redis://")) {
    // The rest of the address (host, port, DB) is checked by faasd, with the same parser the
    // trigger connects with (triggers::ParseRedisSource): one definition of what is valid.
    if (!has_stream) {
      problems.Add("--source", t.source, "needs --stream");
    }
    if (has_queue) {
      problems.Add("--queue", t.queue, "is only for --source embedded");
    }
  } else {
    problems.Add("--source", t.source, kSourceForms);
  }
}

// Upper-cases `method` and checks it is one a route may have.
void CheckRouteMethod(std::string& method, Problems& problems) {
  std::string given = method;
  for (char& c : method) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  for (std::string_view m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"}) {
    if (method == m) {
      return;
    }
  }
  problems.Add("METHOD", given, "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, ANY");
}

}  // namespace

DataSource ParseDataSource(const std::string& arg) {
  if (arg == "-") {
    return {DataSource::Kind::kStdin, {}};
  }
  if (!arg.empty() && arg.front() == '@') {
    return {DataSource::Kind::kFile, arg.substr(1)};
  }
  return {DataSource::Kind::kLiteral, arg};
}

Result<std::string> ReadData(const DataSource& source, std::istream& in, std::string_view what) {
  switch (source.kind) {
    case DataSource::Kind::kNone:
      return std::string();
    case DataSource::Kind::kLiteral:
      return source.value;
    case DataSource::Kind::kFile: {
      Result<std::string> data = ReadFile(source.value);
      if (!data.ok()) {
        return InvalidArgumentError(std::string(what) + " \"@" + source.value +
                                    "\": " + data.status().message());
      }
      return data;
    }
    case DataSource::Kind::kStdin: {
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (in.bad()) {
        return InvalidArgumentError(std::string(what) + " \"-\": reading stdin failed");
      }
      return data;
    }
  }
  return InternalError("unknown data source");
}

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

std::string DeadLetterQueueName(std::string_view queue) {
  if (queue.ends_with(".dlq")) {
    return std::string(queue);
  }
  return std::string(queue) + ".dlq";
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

Result<Invocation> Parse(const std::vector<std::string>& args) {
  Invocation inv;
  std::string output = "table";
  std::string rpc_timeout = "60s";

  CLI::App app(
      "faasctl: deploy, inspect and invoke functions on faasd; manage its routes, API keys, "
      "queue triggers and embedded queues",
      "faasctl");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  app.add_option("--server", inv.global.server, "faasd control API address")
      ->envname("FAAS_SERVER")
      ->capture_default_str();
  app.add_option("--token", inv.global.token, "API token, sent as a Bearer token")
      ->envname("FAAS_TOKEN");
  app.add_option("-o,--output", output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--rpc-timeout", rpc_timeout, "deadline for the call to faasd")
      ->type_name("DUR")
      ->capture_default_str();

  // deploy
  DeployCommand deploy;
  RawDeploy raw;
  CLI::App* deploy_cmd = app.add_subcommand("deploy", "upload a library as a new version");
  deploy_cmd->add_option("NAME", deploy.name, "function name")->required();
  deploy_cmd->add_option("LIB.so", deploy.library_path, "shared library to upload")->required();
  deploy_cmd->add_option("--memory", raw.memory, "memory limit in MiB (default 128)")
      ->type_name("MB");
  deploy_cmd->add_option("--timeout", raw.timeout, "wall-clock limit, e.g. 10s (default 10s)")
      ->type_name("DUR");
  deploy_cmd->add_option("--cpu-limit", raw.cpu_limit, "CPU time per invocation (default: timeout)")
      ->type_name("DUR");
  deploy_cmd->add_option("--min-warm", raw.min_warm, "instances kept ready (default 0)")
      ->type_name("N");
  deploy_cmd->add_option("--max-instances", raw.max_instances, "instance cap (default 16)")
      ->type_name("N");
  deploy_cmd->add_option("--idle-ttl", raw.idle_ttl, "stop idle instances after (default 5m)")
      ->type_name("DUR");
  deploy_cmd->add_option("--isolation", deploy.options.isolation, "warm or fresh")
      ->check(CLI::IsMember({"warm", "fresh"}));
  deploy_cmd->add_option("--network", deploy.options.network, "none or outbound")
      ->check(CLI::IsMember({"none", "outbound"}));
  deploy_cmd->add_option("--env", raw.env, "K=V visible to the function (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  deploy_cmd->add_flag("--public", deploy.options.is_public, "invocable without an API key");
  deploy_cmd->add_option("--max-body", raw.max_body, "request/response size limit in bytes")
      ->type_name("BYTES");
  deploy_cmd
      ->add_option("--queue-depth", raw.queue_depth,
                   "requests that may wait for a free instance at max-instances (default 1000)")
      ->type_name("N");
  deploy_cmd
      ->add_option("--queue-timeout", raw.queue_timeout,
                   "longest wait for a free instance (default: the timeout)")
      ->type_name("DUR");
  RawRate raw_deploy_rate;
  deploy_cmd
      ->add_option("--rate", raw_deploy_rate.rate,
                   "invocations over all callers: 100/s, 6000/m, 10/h or a number per second "
                   "(default: no limit)")
      ->type_name("RATE");
  deploy_cmd
      ->add_option("--burst", raw_deploy_rate.burst,
                   "with --rate: invocations allowed at once (default: the rate, rounded up)")
      ->type_name("N");

  CLI::App* list_cmd = app.add_subcommand("list", "list functions");

  DescribeCommand describe;
  CLI::App* describe_cmd = app.add_subcommand("describe", "show one function");
  describe_cmd->add_option("NAME", describe.name, "function name")->required();

  DeleteCommand del;
  CLI::App* delete_cmd = app.add_subcommand("delete", "delete a function and its versions");
  delete_cmd->add_option("NAME", del.name, "function name")->required();

  VersionsCommand versions;
  CLI::App* versions_cmd = app.add_subcommand("versions", "list a function's versions");
  versions_cmd->add_option("NAME", versions.name, "function name")->required();

  RollbackCommand rollback;
  RawRollback raw_rollback;
  CLI::App* rollback_cmd = app.add_subcommand("rollback", "point latest at an older version");
  rollback_cmd->add_option("NAME", rollback.name, "function name")->required();
  rollback_cmd->add_option("VERSION", raw_rollback.version, "version number")
      ->type_name("N")
      ->required();

  InvokeCommand invoke;
  std::string data_arg;
  CLI::App* invoke_cmd = app.add_subcommand("invoke", "call a function once and print its body");
  invoke_cmd->add_option("NAME", invoke.name, "function name")->required();
  CLI::Option* data_opt =
      invoke_cmd->add_option("-d,--data", data_arg, "body: @file, - for stdin, or the text itself")
          ->type_name("@FILE|-|STRING");
  invoke_cmd->add_option("-X,--method", invoke.method, "HTTP method (default POST)");
  invoke_cmd->add_option("--path", invoke.path, "path after /function/NAME");
  invoke_cmd->add_option("--query", invoke.query, "query string, without '?'");
  invoke_cmd->add_flag("-v,--verbose", invoke.verbose, "status, timings and logs on stderr");
  invoke_cmd->add_flag("--fresh", invoke.fresh,
                       "force a cold start: a new instance, discarded afterwards");
  invoke_cmd->add_flag("--async", invoke.async, "queue the invocation and print its id");
  invoke_cmd
      ->add_option("--callback-url", invoke.callback_url,
                   "with --async: http(s) URL that receives the result")
      ->type_name("URL");

  BillCommand bill;
  RawBill raw_bill;
  CLI::App* bill_cmd = app.add_subcommand("bill", "CPU-ms billing totals");
  bill_cmd->add_option("--function", bill.function, "only this function (default: all)")
      ->type_name("NAME");
  bill_cmd
      ->add_option("--since", raw_bill.since,
                   "from T: UTC date or time (2026-11-29, 2026-11-29T13:00) or a duration "
                   "back from now (30m, 1h, 7d)")
      ->type_name("T");
  bill_cmd->add_option("--until", raw_bill.until, "until T, same forms (default: now)")
      ->type_name("T");
  bill_cmd->add_option("--by", bill.by, "one row per function, tenant, day or hour (UTC)")
      ->check(CLI::IsMember({"function", "tenant", "day", "hour"}));

  InvocationsCommand invocations;
  RawInvocations raw_invocations;
  CLI::App* invocations_cmd =
      app.add_subcommand("invocations", "a function's latest invocations from the ledger");
  invocations_cmd->add_option("NAME", invocations.name, "function name")->required();
  invocations_cmd->add_option("--last", raw_invocations.last, "how many (1-1000, default 20)")
      ->type_name("N");
  invocations_cmd
      ->add_option("--outcome", invocations.outcome,
                   "only this outcome, e.g. ok or function_timeout")
      ->type_name("O");

  LogsCommand logs;
  std::string raw_logs_last;
  CLI::App* logs_cmd = app.add_subcommand("logs", "a function's captured stdout/stderr");
  logs_cmd->add_option("NAME", logs.name, "function name")->required();
  logs_cmd->add_option("--invocation", logs.invocation, "only this invocation's output")
      ->type_name("ID");
  logs_cmd->add_option("--last", raw_logs_last, "how many invocations (1-1000, default 20)")
      ->type_name("N");
  logs_cmd->add_flag("--follow,-f", logs.follow, "keep printing new output until interrupted");

  PrewarmCommand prewarm;
  std::string raw_prewarm_count;
  CLI::App* prewarm_cmd = app.add_subcommand("prewarm", "start N instances of a function now");
  prewarm_cmd->add_option("NAME", prewarm.name, "function name")->required();
  prewarm_cmd->add_option("N", raw_prewarm_count, "how many (1-1000)")->required();

  CLI::App* route_cmd = app.add_subcommand("route", "custom HTTP routes to functions");
  route_cmd->require_subcommand(1);
  RouteAddCommand route_add;
  CLI::App* route_add_cmd =
      route_cmd->add_subcommand("add", "route METHOD PATH (on --host, if given) to FUNCTION");
  route_add_cmd
      ->add_option("METHOD", route_add.method,
                   "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY")
      ->required();
  route_add_cmd
      ->add_option("PATH", route_add.path, "template: /literal, /{param}, a last /{rest...}")
      ->required();
  route_add_cmd->add_option("FUNCTION", route_add.function, "function name")->required();
  route_add_cmd->add_option("--host", route_add.host, "only requests with this Host header")
      ->type_name("HOST");
  CLI::App* route_list_cmd = route_cmd->add_subcommand("list", "list routes");
  RouteDeleteCommand route_delete;
  CLI::App* route_delete_cmd = route_cmd->add_subcommand("delete", "delete a route");
  route_delete_cmd->add_option("METHOD", route_delete.method, "the route's method")->required();
  route_delete_cmd->add_option("PATH", route_delete.path, "the route's path, as added")->required();
  route_delete_cmd->add_option("--host", route_delete.host, "the route's host, if it has one")
      ->type_name("HOST");

  CLI::App* key_cmd = app.add_subcommand("key", "API keys for the HTTP gateway");
  key_cmd->require_subcommand(1);
  KeyCreateCommand key_create;
  RawRate raw_key_rate;
  std::vector<std::string> raw_key_functions;
  CLI::App* key_create_cmd =
      key_cmd->add_subcommand("create", "create a key for a tenant and print it (shown once)");
  key_create_cmd->add_option("--tenant", key_create.tenant, "who the key belongs to")
      ->type_name("T")
      ->required();
  key_create_cmd
      ->add_option("--functions", raw_key_functions,
                   "only these functions, comma-separated (default: every function)")
      ->type_name("FN,...")
      ->allow_extra_args(false);
  key_create_cmd
      ->add_option("--rate", raw_key_rate.rate,
                   "requests with this key: 100/s, 6000/m, 10/h or a number per second "
                   "(default: no limit)")
      ->type_name("RATE");
  key_create_cmd
      ->add_option("--burst", raw_key_rate.burst,
                   "with --rate: requests allowed at once (default: the rate, rounded up)")
      ->type_name("N");
  CLI::App* key_list_cmd = key_cmd->add_subcommand("list", "list keys (never their secrets)");
  KeyRevokeCommand key_revoke;
  CLI::App* key_revoke_cmd = key_cmd->add_subcommand("revoke", "revoke a key at once");
  key_revoke_cmd->add_option("ID", key_revoke.id, "the key's id, from key list")->required();

  CLI::App* trigger_cmd =
      app.add_subcommand("trigger", "queue triggers: a function for each message of a queue");
  trigger_cmd->require_subcommand(1);
  TriggerAddCommand trigger_add;
  RawTrigger raw_trigger;
  CLI::App* trigger_add_cmd = trigger_cmd->add_subcommand(
      "add", "feed a Redis stream (--stream) or an embedded queue (--queue) to a function");
  trigger_add_cmd->add_option("NAME", trigger_add.name, "trigger name")->required();
  trigger_add_cmd->add_option("--function", trigger_add.function, "function to invoke")
      ->type_name("FN")
      ->required();
  trigger_add_cmd->add_option("--source", trigger_add.source, "redis://HOST:PORT[/DB] or embedded")
      ->type_name("SRC")
      ->required();
  trigger_add_cmd->add_option("--stream", trigger_add.stream, "redis: the stream key")
      ->type_name("S");
  trigger_add_cmd
      ->add_option("--group", trigger_add.group, "redis: consumer group (default faas-NAME)")
      ->type_name("G");
  trigger_add_cmd->add_option("--queue", trigger_add.queue, "embedded: the queue name")
      ->type_name("Q");
  trigger_add_cmd
      ->add_option("--batch", raw_trigger.batch, "messages fetched per read (default 16)")
      ->type_name("N");
  trigger_add_cmd
      ->add_option("--concurrency", raw_trigger.concurrency,
                   "invocations in flight, 1-1024 (default 1)")
      ->type_name("N");
  trigger_add_cmd
      ->add_option("--max-attempts", raw_trigger.max_attempts,
                   "attempts before dead-lettering, 1-100 (default 5)")
      ->type_name("N");
  trigger_add_cmd
      ->add_option("--backoff", raw_trigger.backoff,
                   "retry delay range, doubling per attempt, with jitter (default 100ms..30s)")
      ->type_name("MIN..MAX");
  trigger_add_cmd
      ->add_option("--dlq", trigger_add.dlq,
                   "dead-letter queue or stream (default: the stream's or queue's name + .dlq)")
      ->type_name("NAME");
  trigger_add_cmd
      ->add_option("--visibility-timeout", raw_trigger.visibility_timeout,
                   "redeliver a message unfinished after this (default: function timeout + 30s)")
      ->type_name("DUR");
  CLI::App* trigger_list_cmd =
      trigger_cmd->add_subcommand("list", "triggers with their state and counters");
  TriggerPauseCommand trigger_pause;
  CLI::App* trigger_pause_cmd =
      trigger_cmd->add_subcommand("pause", "stop fetching messages (deliveries in flight finish)");
  trigger_pause_cmd->add_option("NAME", trigger_pause.name, "trigger name")->required();
  TriggerResumeCommand trigger_resume;
  CLI::App* trigger_resume_cmd =
      trigger_cmd->add_subcommand("resume", "fetch messages again after pause");
  trigger_resume_cmd->add_option("NAME", trigger_resume.name, "trigger name")->required();
  TriggerDeleteCommand trigger_delete;
  CLI::App* trigger_delete_cmd =
      trigger_cmd->add_subcommand("delete", "remove a trigger (its messages stay in the queue)");
  trigger_delete_cmd->add_option("NAME", trigger_delete.name, "trigger name")->required();

  CLI::App* queue_cmd =
      app.add_subcommand("queue", "the embedded queue: publish, stats, dead letters");
  queue_cmd->require_subcommand(1);
  QueuePublishCommand queue_publish;
  std::string raw_publish_data;
  CLI::App* queue_publish_cmd =
      queue_cmd->add_subcommand("publish", "add a message to a queue and print its id");
  queue_publish_cmd->add_option("Q", queue_publish.queue, "queue name")->required();
  queue_publish_cmd
      ->add_option("DATA", raw_publish_data, "body: @file, - for stdin, or the text itself")
      ->type_name("@FILE|-|STRING")
      ->required();
  AsyncStatusCommand async_status;
  CLI::App* async_status_cmd = app.add_subcommand(
      "invocation", "status and stored result of one async invocation (invoke --async)");
  async_status_cmd->add_option("ID", async_status.id, "invocation id")->required();
  QueueStatsCommand queue_stats;
  CLI::App* queue_stats_cmd = queue_cmd->add_subcommand("stats", "a queue's message counts");
  queue_stats_cmd->add_option("Q", queue_stats.queue, "queue name")->required();
  QueueDlqCommand queue_dlq;
  std::string raw_dlq_limit;
  CLI::App* queue_dlq_cmd = queue_cmd->add_subcommand(
      "dlq", "dead letters of Q (read from Q.dlq unless Q already ends in .dlq)");
  queue_dlq_cmd->add_option("Q", queue_dlq.queue, "queue name")->required();
  queue_dlq_cmd->add_flag("--replay", queue_dlq.replay,
                          "move every dead letter back to its queue, ready now");
  queue_dlq_cmd->add_option("--limit", raw_dlq_limit, "how many to list (1-1000, default 100)")
      ->type_name("N");

  BenchCommand bench;
  std::string raw_bench_n, raw_bench_c;
  CLI::App* bench_cmd = app.add_subcommand("bench", "measure cold starts or warm invocations");
  bench_cmd->require_subcommand(1);
  CLI::App* bench_cold =
      bench_cmd->add_subcommand("cold-start", "N forced cold starts (new instances, no reuse)");
  bench_cold->add_option("NAME", bench.name, "function name")->required();
  bench_cold->add_option("-n", raw_bench_n, "invocations (default 100)")->type_name("N");
  CLI::App* bench_warm = bench_cmd->add_subcommand("warm", "N warm invocations, C at a time");
  bench_warm->add_option("NAME", bench.name, "function name")->required();
  bench_warm->add_option("-n", raw_bench_n, "invocations (default 100)")->type_name("N");
  bench_warm->add_option("-c", raw_bench_c, "concurrent clients (default 1)")->type_name("C");

  CLI::App* version_cmd = app.add_subcommand("version", "client and server versions");
  // Set last: subcommands created after it would copy it into their own help.
  app.footer(
      "Run faasctl SUBCOMMAND --help for its flags. Exit status: 0 ok, 1 faasd said no, 2 usage "
      "error, 3 faasd unreachable.");

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    inv.command = HelpCommand{app.help()};
    return inv;
  } catch (const CLI::CallForAllHelp&) {
    inv.command = HelpCommand{app.help("", CLI::AppFormatMode::All)};
    return inv;
  } catch (const CLI::ParseError& e) {
    return InvalidArgumentError(e.what());
  }

  Problems problems;
  inv.global.output = output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  if (auto ms = ParseMillis(rpc_timeout, "--rpc-timeout", problems)) {
    inv.global.rpc_timeout = *ms;
  }
  if (inv.global.server.empty()) {
    problems.AddRaw("--server must not be empty");
  }

  if (deploy_cmd->parsed()) {
    DeployOptions& o = deploy.options;
    if (deploy_cmd->count("--memory") > 0) {
      o.memory_mb = ParseUnsigned<uint64_t>(raw.memory, "--memory", problems);
      if (o.memory_mb && *o.memory_mb == 0) {
        problems.Add("--memory", raw.memory, "must be at least 1");
      }
    }
    if (deploy_cmd->count("--timeout") > 0) {
      o.timeout = ParseMillis(raw.timeout, "--timeout", problems);
    }
    if (deploy_cmd->count("--cpu-limit") > 0) {
      o.cpu_limit = ParseMillis(raw.cpu_limit, "--cpu-limit", problems);
    }
    if (deploy_cmd->count("--min-warm") > 0) {
      o.min_warm = ParseUnsigned<uint32_t>(raw.min_warm, "--min-warm", problems);
    }
    if (deploy_cmd->count("--max-instances") > 0) {
      o.max_instances = ParseUnsigned<uint32_t>(raw.max_instances, "--max-instances", problems);
      if (o.max_instances && *o.max_instances == 0) {
        problems.Add("--max-instances", raw.max_instances, "must be at least 1");
      }
    }
    if (deploy_cmd->count("--idle-ttl") > 0) {
      o.idle_ttl = ParseMillis(raw.idle_ttl, "--idle-ttl", problems);
    }
    if (deploy_cmd->count("--max-body") > 0) {
      o.max_body_bytes = ParseUnsigned<uint64_t>(raw.max_body, "--max-body", problems);
    }
    if (deploy_cmd->count("--queue-depth") > 0) {
      o.queue_depth = ParseUnsigned<uint32_t>(raw.queue_depth, "--queue-depth", problems);
    }
    if (deploy_cmd->count("--queue-timeout") > 0) {
      o.queue_timeout = ParseMillis(raw.queue_timeout, "--queue-timeout", problems);
    }
    ParseRateFlags(deploy_cmd, raw_deploy_rate, o.rate_per_sec, o.burst, problems);
    Result<std::map<std::string, std::string>> env = ParseEnv(raw.env);
    if (env.ok()) {
      o.env = std::move(env).value();
    } else {
      problems.AddRaw(env.status().message());
    }
    inv.command = std::move(deploy);
  } else if (list_cmd->parsed()) {
    inv.command = ListCommand{};
  } else if (describe_cmd->parsed()) {
    inv.command = std::move(describe);
  } else if (delete_cmd->parsed()) {
    inv.command = std::move(del);
  } else if (versions_cmd->parsed()) {
    inv.command = std::move(versions);
  } else if (rollback_cmd->parsed()) {
    if (auto v = ParseUnsigned<uint32_t>(raw_rollback.version, "VERSION", problems)) {
      rollback.version = *v;
    }
    inv.command = std::move(rollback);
  } else if (invoke_cmd->parsed()) {
    if (data_opt->count() > 0) {
      invoke.data = ParseDataSource(data_arg);
    }
    if (invoke_cmd->count("--callback-url") > 0) {
      const std::string& url = invoke.callback_url;
      if (!invoke.async) {
        problems.Add("--callback-url", url, "needs --async");
      }
      // The URL itself is checked by faasd (gateway's ParseHttpUrl): one definition of valid.
    }
    inv.command = std::move(invoke);
  } else if (bill_cmd->parsed()) {
    if (bill_cmd->count("--function") > 0 && bill.function.empty()) {
      problems.Add("--function", bill.function, "must not be empty");
    }
    int64_t now = UnixMillisNow();
    std::optional<int64_t> since;
    std::optional<int64_t> until;
    if (bill_cmd->count("--since") > 0) {
      since = ParseTimeFlag(raw_bill.since, "--since", now, problems);
    }
    if (bill_cmd->count("--until") > 0) {
      until = ParseTimeFlag(raw_bill.until, "--until", now, problems);
    }
    if (since && until && *since > *until) {
      problems.AddRaw("--since \"" + raw_bill.since + "\" is after --until \"" + raw_bill.until +
                      "\"");
    }
    bill.since_unix_ms = since.value_or(0);
    bill.until_unix_ms = until.value_or(0);
    inv.command = std::move(bill);
  } else if (invocations_cmd->parsed()) {
    if (invocations_cmd->count("--last") > 0) {
      if (auto n = ParseUnsigned<uint32_t>(raw_invocations.last, "--last", problems)) {
        if (*n < 1 || *n > kMaxInvocations) {
          problems.Add("--last", raw_invocations.last, "must be 1..1000");
        } else {
          invocations.last = *n;
        }
      }
    }
    if (invocations_cmd->count("--outcome") > 0 &&
        (invocations.outcome.empty() ||
         invocations.outcome.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
             std::string::npos)) {
      problems.Add("--outcome", invocations.outcome,
                   "must be an outcome such as ok or function_timeout");
    }
    inv.command = std::move(invocations);
  } else if (logs_cmd->parsed()) {
    if (logs_cmd->count("--last") > 0) {
      if (auto n = ParseUnsigned<uint32_t>(raw_logs_last, "--last", problems)) {
        if (*n < 1 || *n > kMaxInvocations) {
          problems.Add("--last", raw_logs_last, "must be 1..1000");
        } else {
          logs.last = *n;
        }
      }
    }
    inv.command = std::move(logs);
  } else if (prewarm_cmd->parsed()) {
    if (auto n = ParseUnsigned<uint32_t>(raw_prewarm_count, "N", problems)) {
      if (*n < 1 || *n > kMaxPrewarm) {
        problems.Add("N", raw_prewarm_count, "must be 1..1000");
      } else {
        prewarm.count = *n;
      }
    }
    inv.command = std::move(prewarm);
  } else if (route_add_cmd->parsed()) {
    CheckRouteMethod(route_add.method, problems);
    if (route_add_cmd->count("--host") > 0 && route_add.host.empty()) {
      problems.Add("--host", route_add.host, "must not be empty");
    }
    inv.command = std::move(route_add);
  } else if (route_list_cmd->parsed()) {
    inv.command = RouteListCommand{};
  } else if (route_delete_cmd->parsed()) {
    CheckRouteMethod(route_delete.method, problems);
    if (route_delete_cmd->count("--host") > 0 && route_delete.host.empty()) {
      problems.Add("--host", route_delete.host, "must not be empty");
    }
    inv.command = std::move(route_delete);
  } else if (key_create_cmd->parsed()) {
    if (key_create.tenant.empty()) {
      problems.Add("--tenant", key_create.tenant, "must not be empty");
    }
    std::set<std::string> seen;
    for (const std::string& list : raw_key_functions) {
      std::string_view rest = list;
      while (true) {
        std::size_t comma = rest.find(',');
        std::string fn(rest.substr(0, comma));
        if (fn.empty()) {
          problems.Add("--functions", list, "has an empty name");
        } else if (!IsValidName(fn)) {
          problems.Add("--functions", list, "\"" + fn + "\" " + std::string(kNamePattern));
        } else if (!seen.insert(fn).second) {
          problems.Add("--functions", list, "\"" + fn + "\" given more than once");
        } else {
          key_create.functions.push_back(std::move(fn));
        }
        if (comma == std::string_view::npos) {
          break;
        }
        rest.remove_prefix(comma + 1);
      }
    }
    ParseRateFlags(key_create_cmd, raw_key_rate, key_create.rate_per_sec, key_create.burst,
                   problems);
    inv.command = std::move(key_create);
  } else if (key_list_cmd->parsed()) {
    inv.command = KeyListCommand{};
  } else if (key_revoke_cmd->parsed()) {
    if (key_revoke.id.empty()) {
      problems.Add("ID", key_revoke.id, "must not be empty");
    }
    inv.command = std::move(key_revoke);
  } else if (trigger_add_cmd->parsed()) {
    TriggerAddCommand& t = trigger_add;
    CheckName(t.name, "NAME", problems);
    CheckName(t.function, "--function", problems);
    CheckTriggerSource(trigger_add_cmd, t, problems);
    if (trigger_add_cmd->count("--batch") > 0) {
      t.batch = ParseBounded(raw_trigger.batch, "--batch", 1, UINT32_MAX, problems);
    }
    if (trigger_add_cmd->count("--concurrency") > 0) {
      t.concurrency =
          ParseBounded(raw_trigger.concurrency, "--concurrency", 1, kMaxConcurrency, problems);
    }
    if (trigger_add_cmd->count("--max-attempts") > 0) {
      t.max_attempts =
          ParseBounded(raw_trigger.max_attempts, "--max-attempts", 1, kMaxAttempts, problems);
    }
    if (trigger_add_cmd->count("--backoff") > 0) {
      ParseBackoff(raw_trigger.backoff, t, problems);
    }
    CheckNotEmpty(trigger_add_cmd, "--dlq", t.dlq, problems);
    if (trigger_add_cmd->count("--visibility-timeout") > 0) {
      t.visibility_timeout =
          ParseMillis(raw_trigger.visibility_timeout, "--visibility-timeout", problems);
    }
    inv.command = std::move(trigger_add);
  } else if (trigger_list_cmd->parsed()) {
    inv.command = TriggerListCommand{};
  } else if (trigger_pause_cmd->parsed()) {
    CheckName(trigger_pause.name, "NAME", problems);
    inv.command = std::move(trigger_pause);
  } else if (trigger_resume_cmd->parsed()) {
    CheckName(trigger_resume.name, "NAME", problems);
    inv.command = std::move(trigger_resume);
  } else if (trigger_delete_cmd->parsed()) {
    CheckName(trigger_delete.name, "NAME", problems);
    inv.command = std::move(trigger_delete);
  } else if (queue_publish_cmd->parsed()) {
    CheckQueueName(queue_publish.queue, "Q", problems);
    queue_publish.data = ParseDataSource(raw_publish_data);
    inv.command = std::move(queue_publish);
  } else if (async_status_cmd->parsed()) {
    inv.command = std::move(async_status);
  } else if (queue_stats_cmd->parsed()) {
    CheckQueueName(queue_stats.queue, "Q", problems);
    inv.command = std::move(queue_stats);
  } else if (queue_dlq_cmd->parsed()) {
    CheckQueueName(queue_dlq.queue, "Q", problems);
    queue_dlq.dlq = DeadLetterQueueName(queue_dlq.queue);
    if (queue_dlq_cmd->count("--limit") > 0) {
      if (auto n = ParseBounded(raw_dlq_limit, "--limit", 1, kMaxDeadLetters, problems)) {
        queue_dlq.limit = *n;
      }
      if (queue_dlq.replay) {
        // faasd replays every dead letter of the queue; a limit would be silently ignored.
        problems.Add("--limit", raw_dlq_limit, "cannot be used with --replay (it replays all)");
      }
    }
    inv.command = std::move(queue_dlq);
  } else if (bench_cmd->parsed()) {
    bench.cold = bench_cold->parsed();
    if (!raw_bench_n.empty()) {
      if (auto n = ParseUnsigned<uint32_t>(raw_bench_n, "-n", problems)) {
        if (*n < 1 || *n > 100000) {
          problems.Add("-n", raw_bench_n, "must be 1..100000");
        } else {
          bench.n = *n;
        }
      }
    }
    if (!raw_bench_c.empty()) {
      if (auto c = ParseUnsigned<uint32_t>(raw_bench_c, "-c", problems)) {
        if (*c < 1 || *c > 256) {
          problems.Add("-c", raw_bench_c, "must be 1..256");
        } else {
          bench.concurrency = *c;
        }
      }
    }
    inv.command = std::move(bench);
  } else if (version_cmd->parsed()) {
    inv.command = VersionCommand{};
  } else {
    return InvalidArgumentError("a subcommand is required");
  }

  if (!problems.Empty()) {
    return problems.ToStatus();
  }
  return inv;
}

}  // namespace faas::cli
