#include "faas/sandbox/worker.h"

int main(int argc, char** argv) {
  return faas::sandbox::WorkerMain(argc, argv);
}
