// faasctl queue publish|stats|dlq: the embedded queue.
#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

constexpr uint32_t kMaxDeadLetters = 1000;

void AddPublish(CLI::App* queue, Subcommands& commands) {
  auto data = std::make_shared<std::string>();
  auto& p = AddSubcommand<QueuePublishCommand>(
      queue, commands, "publish", "add a message to a queue and print its id",
      [data](Subcommand<QueuePublishCommand>& sub, Problems& problems) {
        CheckQueueName(sub.cmd.queue, "Q", problems);
        sub.cmd.data = ParseDataSource(*data);
      });
  p.app->add_option("Q", p.cmd.queue, "queue name")->required();
  p.app->add_option("DATA", *data, "body: @file, - for stdin, or the text itself")
      ->type_name("@FILE|-|STRING")
      ->required();
}

void AddDlq(CLI::App* queue, Subcommands& commands) {
  auto& d = AddSubcommand<QueueDlqCommand>(
      queue, commands, "dlq", "dead letters of Q (read from Q.dlq unless Q already ends in .dlq)",
      [](Subcommand<QueueDlqCommand>& sub, Problems& problems) {
        CheckQueueName(sub.cmd.queue, "Q", problems);
        sub.cmd.dlq = DeadLetterQueueName(sub.cmd.queue);
        sub.flags.Check(problems);
      });
  QueueDlqCommand& c = d.cmd;
  d.app->add_option("Q", c.queue, "queue name")->required();
  d.app->add_flag("--replay", c.replay, "move every dead letter back to its queue, ready now");
  d.flags
      .Add("--limit", "how many to list (1-1000, default 100)",
           [&c](const std::string& raw, Problems& problems) {
             if (auto n = ParseBounded<uint32_t>(raw, "--limit", 1, kMaxDeadLetters, problems)) {
               c.limit = *n;
             }
             if (c.replay) {
               // faasd replays every dead letter of the queue; a limit would be silently ignored.
               problems.Add("--limit", raw, "cannot be used with --replay (it replays all)");
             }
           })
      ->type_name("N");
}

}  // namespace

std::string DeadLetterQueueName(std::string_view queue) {
  if (queue.ends_with(".dlq")) {
    return std::string(queue);
  }
  return std::string(queue) + ".dlq";
}

void AddQueues(CLI::App& app, Subcommands& commands) {
  CLI::App* queue = AddGroup(app, "queue", "the embedded queue: publish, stats, dead letters");
  AddPublish(queue, commands);
  AddOneArg(queue, commands, "stats", "a queue's message counts", "Q", "queue name",
            &QueueStatsCommand::queue, CheckQueueName);
  AddDlq(queue, commands);
}

}  // namespace faas::cli
