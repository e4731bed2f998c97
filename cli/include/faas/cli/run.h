// Run: one faasctl command, start to finish: parse, call faasd's control API over gRPC,
// print, and return the process exit status (docs/cli.md: 0 ok, 1 refused, 2 usage,
// 3 unreachable).
//
//   int main(int argc, char** argv) { return faas::cli::Run(argc, argv, std::cin, std::cout,
//   std::cerr); }
//
// Tests call the vector form against a fake server and read the streams:
//   std::ostringstream out, err;
//   int rc = faas::cli::Run({"--server", addr, "list"}, in, out, err);
//
// Stdout gets results only (tables, JSON, invoke bodies); errors and `invoke -v` details go
// to stderr. Blocking; safe to call from several threads at once (no shared state).
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace faas::cli {

// The faasctl version, the project's version.
const char* ClientVersion();

// argv[0] is skipped.
int Run(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err);
// `args` without argv[0].
int Run(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
        std::ostream& err);

}  // namespace faas::cli
