// faasctl invoke, invocation ID and bench.
#include <string>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

constexpr uint32_t kMaxBenchInvocations = 100'000;
constexpr uint32_t kMaxBenchClients = 256;

// An optional count within [min, max]. Given but empty means the default, as it always has.
CheckedFlags::CheckFn CountUnlessEmpty(uint32_t& out, std::string_view flag, uint32_t min,
                                       uint32_t max) {
  return [&out, flag, min, max](const std::string& raw, Problems& problems) {
    if (raw.empty()) {
      return;
    }
    if (std::optional<uint32_t> v = ParseBounded<uint32_t>(raw, flag, min, max, problems)) {
      out = *v;
    }
  };
}

void AddBenchMode(CLI::App* bench, Subcommands& commands, bool cold, const std::string& name,
                  const std::string& description) {
  auto& b = AddSubcommand<BenchCommand>(bench, commands, name, description);
  b.cmd.cold = cold;
  b.app->add_option("NAME", b.cmd.name, "function name")->required();
  b.flags
      .Add("-n", "invocations (default 100)",
           CountUnlessEmpty(b.cmd.n, "-n", 1, kMaxBenchInvocations))
      ->type_name("N");
  if (!cold) {
    b.flags
        .Add("-c", "concurrent clients (default 1)",
             CountUnlessEmpty(b.cmd.concurrency, "-c", 1, kMaxBenchClients))
        ->type_name("C");
  } else {
    b.flags
        .Millis("--after-idle",
                "each call after the function scaled to zero and DUR more (deploy it with a "
                "short --idle-ttl and --min-warm 0)",
                b.cmd.after_idle)
        ->type_name("DUR");
  }
}

}  // namespace

void AddInvoke(CLI::App& app, Subcommands& commands) {
  auto& i = AddSubcommand<InvokeCommand>(
      &app, commands, "invoke", "call a function once and print its body",
      [](Subcommand<InvokeCommand>& sub, Problems& problems) {
        sub.flags.Check(problems);
        if (sub.app->count("--callback-url") > 0 && !sub.cmd.async) {
          // The URL itself is checked by faasd (gateway's ParseHttpUrl): one definition of valid.
          problems.Add("--callback-url", sub.cmd.callback_url, "needs --async");
        }
      });
  i.app->add_option("NAME", i.cmd.name, "function name")->required();
  i.flags
      .Add("-d,--data", "body: @file, - for stdin, or the text itself",
           [&data = i.cmd.data](const std::string& raw, Problems&) { data = ParseDataSource(raw); })
      ->type_name("@FILE|-|STRING");
  i.app->add_option("-X,--method", i.cmd.method, "HTTP method (default POST)");
  i.app->add_option("--path", i.cmd.path, "path after /function/NAME");
  i.app->add_option("--query", i.cmd.query, "query string, without '?'");
  i.app->add_flag("-v,--verbose", i.cmd.verbose, "status, timings and logs on stderr");
  i.app->add_flag("--fresh", i.cmd.fresh,
                  "force a cold start: a new instance, discarded afterwards");
  i.app->add_flag("--async", i.cmd.async, "queue the invocation and print its id");
  i.app
      ->add_option("--callback-url", i.cmd.callback_url,
                   "with --async: http(s) URL that receives the result")
      ->type_name("URL");
}

void AddAsyncStatus(CLI::App& app, Subcommands& commands) {
  AddOneArg(&app, commands, "invocation",
            "status and stored result of one async invocation (invoke --async)", "ID",
            "invocation id", &AsyncStatusCommand::id);
}

void AddBench(CLI::App& app, Subcommands& commands) {
  CLI::App* bench = AddGroup(app, "bench", "measure cold starts or warm invocations");
  AddBenchMode(bench, commands, true, "cold-start",
               "N forced cold starts (new instances, no reuse)");
  AddBenchMode(bench, commands, false, "warm", "N warm invocations, C at a time");
}

}  // namespace faas::cli
