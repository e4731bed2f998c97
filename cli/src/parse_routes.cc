// faasctl route add|list|delete: custom HTTP routes (docs/http-api.md).
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {
namespace {

// Upper-cases the method and checks it is one a route may have; a --host given must not be empty.
// faasd checks the rest.
template <typename T>
void CheckRoute(Subcommand<T>& sub, Problems& problems) {
  std::string& method = sub.cmd.method;
  std::string given = method;
  for (char& c : method) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  bool known = false;
  for (std::string_view m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"}) {
    known = known || method == m;
  }
  if (!known) {
    problems.Add("METHOD", given,
                 "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, ANY");
  }
  CheckNotEmptyIfGiven(sub.app, "--host", sub.cmd.host, problems);
}

}  // namespace

void AddRoute(CLI::App& app, Subcommands& commands) {
  CLI::App* route = AddGroup(app, "route", "custom HTTP routes to functions");

  auto& add = AddSubcommand<RouteAddCommand>(route, commands, "add",
                                             "route METHOD PATH (on --host, if given) to FUNCTION",
                                             CheckRoute<RouteAddCommand>);
  add.app
      ->add_option("METHOD", add.cmd.method, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY")
      ->required();
  add.app->add_option("PATH", add.cmd.path, "template: /literal, /{param}, a last /{rest...}")
      ->required();
  add.app->add_option("FUNCTION", add.cmd.function, "function name")->required();
  add.app->add_option("--host", add.cmd.host, "only requests with this Host header")
      ->type_name("HOST");

  AddNoArgs<RouteListCommand>(route, commands, "list", "list routes");

  auto& del = AddSubcommand<RouteDeleteCommand>(route, commands, "delete", "delete a route",
                                                CheckRoute<RouteDeleteCommand>);
  del.app->add_option("METHOD", del.cmd.method, "the route's method")->required();
  del.app->add_option("PATH", del.cmd.path, "the route's path, as added")->required();
  del.app->add_option("--host", del.cmd.host, "the route's host, if it has one")->type_name("HOST");
}

}  // namespace faas::cli
