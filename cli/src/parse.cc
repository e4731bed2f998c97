// argv → Invocation with CLI11. CLI11 checks the shape (subcommands, arity, enum values); each
// command group (parse_<group>.cc) checks the values CLI11 cannot, and all problems are reported
// at once.
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "faas/base/unique_fd.h"
#include "faas/cli/command.h"

#include "flags.h"
#include "subcommands.h"

namespace faas::cli {

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
  app.add_option("--tls-ca", inv.global.tls_ca,
                 "CA file (PEM) to verify faasd's control API certificate: faasd binds off "
                 "loopback with --tls-cert")
      ->envname("FAAS_TLS_CA");
  app.add_option("-o,--output", output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--rpc-timeout", rpc_timeout, "deadline for the call to faasd")
      ->type_name("DUR")
      ->capture_default_str();

  // In the order `faasctl --help` lists them.
  Subcommands commands;
  AddDeploy(app, commands);
  AddInvoke(app, commands);
  AddBill(app, commands);
  AddPrewarm(app, commands);
  AddRoute(app, commands);
  AddKeys(app, commands);
  AddTriggers(app, commands);
  AddQueues(app, commands);
  AddAsyncStatus(app, commands);
  AddBench(app, commands);
  AddNodes(app, commands);
  AddNoArgs<VersionCommand>(&app, commands, "version", "client and server versions");
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
  if (!inv.global.tls_ca.empty()) {
    if (auto pem = ReadFile(inv.global.tls_ca); pem.ok()) {
      inv.global.tls_ca_pem = std::move(*pem);
    } else {
      problems.AddRaw("--tls-ca " + inv.global.tls_ca + ": " + pem.status().message());
    }
  }
  std::optional<Command> command = commands.Finish(problems);
  if (!command) {
    return InvalidArgumentError("a subcommand is required");
  }
  if (!problems.Empty()) {
    return problems.ToStatus();
  }
  inv.command = std::move(*command);
  return inv;
}

}  // namespace faas::cli
