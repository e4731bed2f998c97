// faasctl key create|list|revoke: API keys for the gateway (docs/http-api.md).
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

// --functions a,b (repeatable): each a valid function name, each once.
void ParseFunctionLists(const std::vector<std::string>& lists, std::vector<std::string>& out,
                        Problems& problems) {
  std::set<std::string> seen;
  for (const std::string& list : lists) {
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
        out.push_back(std::move(fn));
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
}

}  // namespace

void AddKeys(CLI::App& app, Subcommands& commands) {
  CLI::App* key = AddGroup(app, "key", "API keys for the HTTP gateway");

  auto functions = std::make_shared<std::vector<std::string>>();
  auto& create = AddSubcommand<KeyCreateCommand>(
      key, commands, "create", "create a key for a tenant and print it (shown once)",
      [functions](Subcommand<KeyCreateCommand>& sub, Problems& problems) {
        CheckNotEmpty(sub.cmd.tenant, "--tenant", problems);
        ParseFunctionLists(*functions, sub.cmd.functions, problems);
        sub.flags.Check(problems);
      });
  create.app->add_option("--tenant", create.cmd.tenant, "who the key belongs to")
      ->type_name("T")
      ->required();
  create.app
      ->add_option("--functions", *functions,
                   "only these functions, comma-separated (default: every function)")
      ->type_name("FN,...")
      ->allow_extra_args(false);
  create.flags.AddRate("requests with this key", "requests", create.cmd.rate_per_sec,
                       create.cmd.burst);

  AddNoArgs<KeyListCommand>(key, commands, "list", "list keys (never their secrets)");
  AddOneArg(key, commands, "revoke", "revoke a key at once", "ID", "the key's id, from key list",
            &KeyRevokeCommand::id, CheckNotEmpty);
}

}  // namespace faas::cli
