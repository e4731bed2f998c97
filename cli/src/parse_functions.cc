// faasctl deploy, list, describe, delete, versions, rollback and prewarm.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

constexpr uint32_t kMaxPrewarm = 1000;

void AddDeployCommand(CLI::App& app, Subcommands& commands) {
  auto env = std::make_shared<std::vector<std::string>>();  // K=V pairs, checked last
  auto& d = AddSubcommand<DeployCommand>(
      &app, commands, "deploy", "upload a library as a new version",
      [env](Subcommand<DeployCommand>& sub, Problems& problems) {
        sub.flags.Check(problems);
        Result<std::map<std::string, std::string>> parsed = ParseEnv(*env);
        if (parsed.ok()) {
          sub.cmd.options.env = std::move(parsed).value();
        } else {
          problems.AddRaw(parsed.status().message());
        }
      });
  DeployOptions& o = d.cmd.options;
  CheckedFlags& flags = d.flags;
  d.app->add_option("NAME", d.cmd.name, "function name")->required();
  d.app->add_option("LIB.so", d.cmd.library_path, "shared library to upload")->required();
  flags.Unsigned<uint64_t>("--memory", "memory limit in MiB (default 128)", o.memory_mb, 1)
      ->type_name("MB");
  flags.Millis("--timeout", "wall-clock limit, e.g. 10s (default 10s)", o.timeout)
      ->type_name("DUR");
  flags.Millis("--cpu-limit", "CPU time per invocation (default: timeout)", o.cpu_limit)
      ->type_name("DUR");
  flags.Unsigned<uint32_t>("--min-warm", "instances kept ready (default 0)", o.min_warm)
      ->type_name("N");
  flags.Unsigned<uint32_t>("--max-instances", "instance cap (default 16)", o.max_instances, 1)
      ->type_name("N");
  flags.Millis("--idle-ttl", "stop idle instances after (default 5m)", o.idle_ttl)
      ->type_name("DUR");
  d.app->add_option("--isolation", o.isolation, "warm or fresh")
      ->check(CLI::IsMember({"warm", "fresh"}));
  d.app->add_option("--network", o.network, "none or outbound")
      ->check(CLI::IsMember({"none", "outbound"}));
  d.app->add_option("--env", *env, "K=V visible to the function (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  d.app->add_flag("--public", o.is_public, "invocable without an API key");
  d.app->add_flag("--idempotent", o.idempotent,
                  "safe to run twice: a call lost with its node is retried once on another");
  flags.Unsigned<uint64_t>("--max-body", "request/response size limit in bytes", o.max_body_bytes)
      ->type_name("BYTES");
  flags
      .Unsigned<uint32_t>("--queue-depth",
                          "requests that may wait for a free instance at max-instances (default "
                          "1000)",
                          o.queue_depth)
      ->type_name("N");
  flags
      .Millis("--queue-timeout", "longest wait for a free instance (default: the timeout)",
              o.queue_timeout)
      ->type_name("DUR");
  flags.AddRate("invocations over all callers", "invocations", o.rate_per_sec, o.burst);
}

}  // namespace

void AddDeploy(CLI::App& app, Subcommands& commands) {
  AddDeployCommand(app, commands);
  AddNoArgs<ListCommand>(&app, commands, "list", "list functions");
  AddOneArg(&app, commands, "describe", "show one function", "NAME", "function name",
            &DescribeCommand::name);
  AddOneArg(&app, commands, "delete", "delete a function and its versions", "NAME", "function name",
            &DeleteCommand::name);
  AddOneArg(&app, commands, "versions", "list a function's versions", "NAME", "function name",
            &VersionsCommand::name);
  auto& rollback = AddSubcommand<RollbackCommand>(&app, commands, "rollback",
                                                  "point latest at an older version");
  rollback.app->add_option("NAME", rollback.cmd.name, "function name")->required();
  rollback.flags.Unsigned<uint32_t>("VERSION", "version number", rollback.cmd.version)
      ->type_name("N")
      ->required();
}

void AddPrewarm(CLI::App& app, Subcommands& commands) {
  auto& p = AddSubcommand<PrewarmCommand>(&app, commands, "prewarm",
                                          "start N instances of a function now");
  p.app->add_option("NAME", p.cmd.name, "function name")->required();
  p.flags.Unsigned<uint32_t>("N", "how many (1-1000)", p.cmd.count, 1, kMaxPrewarm)->required();
}

}  // namespace faas::cli
