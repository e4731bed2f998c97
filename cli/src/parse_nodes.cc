// faasctl node list|drain (and `nodes`): a cluster's worker nodes (docs/cli.md).
#include <string>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {

void AddNodes(CLI::App& app, Subcommands& commands) {
  CLI::App* node = AddGroup(app, "node", "a cluster's worker nodes (PostgreSQL store)");
  AddNoArgs<NodeListCommand>(node, commands, "list",
                             "list nodes: state, epoch, load, last heartbeat");
  AddOneArg(node, commands, "drain",
            "drain a node: gateways stop sending it work, it finishes what it runs", "ID",
            "the node's id, from node list", &NodeDrainCommand::id, CheckNotEmpty);
  AddNoArgs<NodeListCommand>(&app, commands, "nodes", "same as node list");
}

}  // namespace faas::cli
