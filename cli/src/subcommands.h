// faasctl's subcommands, one Add function per group (private to cli/). Each adds its CLI11
// subcommands to `app` and registers, for each, how its flags become a Command after the parse.
//
//   Subcommands commands;
//   AddDeploy(app, commands);
//   ...app.parse(args)...
//   Problems problems;
//   std::optional<Command> cmd = commands.Finish(problems);  // the one that was given
//
// Parse() (parse.cc) calls them in help order.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"

namespace faas::cli {

class Subcommands {
 public:
  // Checks the values CLI11 stored for one subcommand and returns its Command; problems go to
  // the argument.
  using FinishFn = std::function<Command(Problems&)>;

  // `finish` runs only if `cmd` is the subcommand given.
  void Add(CLI::App* cmd, FinishFn finish) { commands_.emplace_back(cmd, std::move(finish)); }
  // The given subcommand's Command; nullopt when none was given.
  std::optional<Command> Finish(Problems& problems) const {
    for (const auto& [cmd, finish] : commands_) {
      if (cmd->parsed()) {
        return finish(problems);
      }
    }
    return std::nullopt;
  }

 private:
  std::vector<std::pair<CLI::App*, FinishFn>> commands_;
};

// A command group such as `route`: one of its subcommands must follow.
inline CLI::App* AddGroup(CLI::App& app, const std::string& name, const std::string& description) {
  CLI::App* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

// One subcommand: its CLI11 app, the Command CLI11 fills in, and its checked flags.
template <typename T>
struct Subcommand {
  explicit Subcommand(CLI::App* a) : app(a), flags(a) {}
  CLI::App* app;
  T cmd;
  CheckedFlags flags;
};

template <typename T>
using CheckFn = std::function<void(Subcommand<T>&, Problems&)>;

// Adds subcommand `name` to `parent`. If it is the one given, `check` (by default just
// flags.Check) runs after the parse and `cmd` becomes the Command. The returned object lives as
// long as `commands`.
template <typename T>
Subcommand<T>& AddSubcommand(CLI::App* parent, Subcommands& commands, const std::string& name,
                             const std::string& description, CheckFn<T> check = nullptr) {
  auto sub = std::make_shared<Subcommand<T>>(parent->add_subcommand(name, description));
  commands.Add(sub->app, [sub, check = std::move(check)](Problems& problems) -> Command {
    if (check) {
      check(*sub, problems);
    } else {
      sub->flags.Check(problems);
    }
    return std::move(sub->cmd);
  });
  return *sub;
}

// A subcommand without arguments, e.g. `list`.
template <typename T>
void AddNoArgs(CLI::App* parent, Subcommands& commands, const std::string& name,
               const std::string& description) {
  AddSubcommand<T>(parent, commands, name, description);
}

// A subcommand whose one required argument `arg` goes to `field`, checked by `check` if given,
// e.g. `describe NAME` or `trigger pause NAME`.
template <typename T>
void AddOneArg(CLI::App* parent, Subcommands& commands, const std::string& name,
               const std::string& description, const std::string& arg, const std::string& arg_help,
               std::string T::*field,
               void (*check)(const std::string&, std::string_view, Problems&) = nullptr) {
  CheckFn<T> check_arg;
  if (check != nullptr) {
    check_arg = [field, arg, check](Subcommand<T>& sub, Problems& problems) {
      check(sub.cmd.*field, arg, problems);
    };
  }
  Subcommand<T>& sub = AddSubcommand<T>(parent, commands, name, description, std::move(check_arg));
  sub.app->add_option(arg, sub.cmd.*field, arg_help)->required();
}

// deploy, list, describe, delete, versions, rollback (parse_functions.cc).
void AddDeploy(CLI::App& app, Subcommands& commands);
// invoke (parse_invoke.cc).
void AddInvoke(CLI::App& app, Subcommands& commands);
// bill, invocations, logs (parse_ledger.cc).
void AddBill(CLI::App& app, Subcommands& commands);
// prewarm (parse_functions.cc).
void AddPrewarm(CLI::App& app, Subcommands& commands);
// route add|list|delete (parse_routes.cc).
void AddRoute(CLI::App& app, Subcommands& commands);
// key create|list|revoke (parse_keys.cc).
void AddKeys(CLI::App& app, Subcommands& commands);
// trigger add|list|pause|resume|delete (parse_triggers.cc).
void AddTriggers(CLI::App& app, Subcommands& commands);
// queue publish|stats|dlq (parse_queues.cc).
void AddQueues(CLI::App& app, Subcommands& commands);
// invocation ID: the status of an async invocation (parse_invoke.cc).
void AddAsyncStatus(CLI::App& app, Subcommands& commands);
// bench cold-start|warm (parse_invoke.cc).
void AddBench(CLI::App& app, Subcommands& commands);
// node list|drain, and `nodes` for node list (parse_nodes.cc).
void AddNodes(CLI::App& app, Subcommands& commands);

}  // namespace faas::cli
