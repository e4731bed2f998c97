// faasctl bill, invocations and logs: reading the ledger and captured output.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "faas/base/time.h"
#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

constexpr uint32_t kMaxInvocations = 1000;

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

struct BillTimes {
  std::string since;
  std::string until;
};

void CheckBill(const BillTimes& raw, Subcommand<BillCommand>& sub, Problems& problems) {
  CheckNotEmptyIfGiven(sub.app, "--function", sub.cmd.function, problems);
  int64_t now = UnixMillisNow();
  std::optional<int64_t> since;
  std::optional<int64_t> until;
  if (sub.app->count("--since") > 0) {
    since = ParseTimeFlag(raw.since, "--since", now, problems);
  }
  if (sub.app->count("--until") > 0) {
    until = ParseTimeFlag(raw.until, "--until", now, problems);
  }
  if (since && until && *since > *until) {
    problems.AddRaw("--since \"" + raw.since + "\" is after --until \"" + raw.until + "\"");
  }
  sub.cmd.since_unix_ms = since.value_or(0);
  sub.cmd.until_unix_ms = until.value_or(0);
}

void AddBillCommand(CLI::App& app, Subcommands& commands) {
  auto raw = std::make_shared<BillTimes>();
  auto& b = AddSubcommand<BillCommand>(
      &app, commands, "bill", "CPU-ms billing totals",
      [raw](Subcommand<BillCommand>& sub, Problems& problems) { CheckBill(*raw, sub, problems); });
  b.app->add_option("--function", b.cmd.function, "only this function (default: all)")
      ->type_name("NAME");
  b.app
      ->add_option("--since", raw->since,
                   "from T: UTC date or time (2026-11-29, 2026-11-29T13:00) or a duration "
                   "back from now (30m, 1h, 7d)")
      ->type_name("T");
  b.app->add_option("--until", raw->until, "until T, same forms (default: now)")->type_name("T");
  b.app->add_option("--by", b.cmd.by, "one row per function, tenant, day or hour (UTC)")
      ->check(CLI::IsMember({"function", "tenant", "day", "hour"}));
}

void AddInvocations(CLI::App& app, Subcommands& commands) {
  auto& i = AddSubcommand<InvocationsCommand>(
      &app, commands, "invocations", "a function's latest invocations from the ledger",
      [](Subcommand<InvocationsCommand>& sub, Problems& problems) {
        sub.flags.Check(problems);
        const std::string& outcome = sub.cmd.outcome;
        if (sub.app->count("--outcome") > 0 &&
            (outcome.empty() ||
             outcome.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
                 std::string::npos)) {
          problems.Add("--outcome", outcome, "must be an outcome such as ok or function_timeout");
        }
      });
  i.app->add_option("NAME", i.cmd.name, "function name")->required();
  i.flags
      .Unsigned<uint32_t>("--last", "how many (1-1000, default 20)", i.cmd.last, 1, kMaxInvocations)
      ->type_name("N");
  i.app->add_option("--outcome", i.cmd.outcome, "only this outcome, e.g. ok or function_timeout")
      ->type_name("O");
}

void AddLogs(CLI::App& app, Subcommands& commands) {
  auto& l =
      AddSubcommand<LogsCommand>(&app, commands, "logs", "a function's captured stdout/stderr");
  l.app->add_option("NAME", l.cmd.name, "function name")->required();
  l.app->add_option("--invocation", l.cmd.invocation, "only this invocation's output")
      ->type_name("ID");
  l.flags
      .Unsigned<uint32_t>("--last", "how many invocations (1-1000, default 20)", l.cmd.last, 1,
                          kMaxInvocations)
      ->type_name("N");
  l.app->add_flag("--follow,-f", l.cmd.follow, "keep printing new output until interrupted");
}

}  // namespace

void AddBill(CLI::App& app, Subcommands& commands) {
  AddBillCommand(app, commands);
  AddInvocations(app, commands);
  AddLogs(app, commands);
}

}  // namespace faas::cli
