// faasctl: the command-line client of faasd's control API (DESIGN §4.3).
#include <iostream>

#include "faas/cli/run.h"

int main(int argc, char** argv) {
  return faas::cli::Run(argc, argv, std::cin, std::cout, std::cerr);
}
