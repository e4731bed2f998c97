// faasctl: the command-line client of faasd's control API (docs/cli.md).
#include <iostream>

#include "faas/cli/run.h"

int main(int argc, char** argv) {
  return faas::cli::Run(argc, argv, std::cin, std::cout, std::cerr);
}
