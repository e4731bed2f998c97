// faasctl trigger add|list|pause|resume|delete: queue triggers (docs/triggers.md).
#include <chrono>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "faas/base/time.h"
#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

// The trigger manager's bounds (triggers/triggers.h TriggerSpec).
constexpr uint32_t kMaxConcurrency = 1024;
constexpr uint32_t kMaxAttempts = 100;

constexpr std::string_view kSourceForms = "must be redis://HOST:PORT[/DB] or embedded";

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
  CheckNotEmptyIfGiven(cmd, "--stream", t.stream, problems);
  CheckNotEmptyIfGiven(cmd, "--group", t.group, problems);
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
    // trigger connects with (redis::RedisUrlProblem): one definition of what is valid.
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

void CheckTriggerAdd(Subcommand<TriggerAddCommand>& sub, Problems& problems) {
  CheckName(sub.cmd.name, "NAME", problems);
  CheckName(sub.cmd.function, "--function", problems);
  CheckTriggerSource(sub.app, sub.cmd, problems);
  sub.flags.Check(problems);
}

void AddTriggerAdd(CLI::App* trigger, Subcommands& commands) {
  auto& add = AddSubcommand<TriggerAddCommand>(
      trigger, commands, "add",
      "feed a Redis stream (--stream) or an embedded queue (--queue) to a function",
      CheckTriggerAdd);
  TriggerAddCommand& t = add.cmd;
  add.app->add_option("NAME", t.name, "trigger name")->required();
  add.app->add_option("--function", t.function, "function to invoke")->type_name("FN")->required();
  add.app->add_option("--source", t.source, "redis://HOST:PORT[/DB] or embedded")
      ->type_name("SRC")
      ->required();
  add.app->add_option("--stream", t.stream, "redis: the stream key")->type_name("S");
  add.app->add_option("--group", t.group, "redis: consumer group (default faas-NAME)")
      ->type_name("G");
  add.app->add_option("--queue", t.queue, "embedded: the queue name")->type_name("Q");
  add.flags.Unsigned<uint32_t>("--batch", "messages fetched per read (default 16)", t.batch, 1)
      ->type_name("N");
  add.flags
      .Unsigned<uint32_t>("--concurrency", "invocations in flight, 1-1024 (default 1)",
                          t.concurrency, 1, kMaxConcurrency)
      ->type_name("N");
  add.flags
      .Unsigned<uint32_t>("--max-attempts", "attempts before dead-lettering, 1-100 (default 5)",
                          t.max_attempts, 1, kMaxAttempts)
      ->type_name("N");
  add.flags
      .Add("--backoff", "retry delay range, doubling per attempt, with jitter (default 100ms..30s)",
           [&t](const std::string& raw, Problems& problems) { ParseBackoff(raw, t, problems); })
      ->type_name("MIN..MAX");
  add.flags
      .Add("--dlq", "dead-letter queue or stream (default: the stream's or queue's name + .dlq)",
           [&t](const std::string& raw, Problems& problems) {
             CheckNotEmpty(raw, "--dlq", problems);
             t.dlq = raw;
           })
      ->type_name("NAME");
  add.flags
      .Millis("--visibility-timeout",
              "redeliver a message unfinished after this (default: function timeout + 30s)",
              t.visibility_timeout)
      ->type_name("DUR");
}

}  // namespace

void AddTriggers(CLI::App& app, Subcommands& commands) {
  CLI::App* trigger =
      AddGroup(app, "trigger", "queue triggers: a function for each message of a queue");
  AddTriggerAdd(trigger, commands);
  AddNoArgs<TriggerListCommand>(trigger, commands, "list",
                                "triggers with their state and counters");
  AddOneArg(trigger, commands, "pause", "stop fetching messages (deliveries in flight finish)",
            "NAME", "trigger name", &TriggerPauseCommand::name, CheckName);
  AddOneArg(trigger, commands, "resume", "fetch messages again after pause", "NAME", "trigger name",
            &TriggerResumeCommand::name, CheckName);
  AddOneArg(trigger, commands, "delete", "remove a trigger (its messages stay in the queue)",
            "NAME", "trigger name", &TriggerDeleteCommand::name, CheckName);
}

}  // namespace faas::cli
