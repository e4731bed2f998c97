#include "faas/daemon/daemon.h"

int main(int argc, char** argv) {
  faas::daemon::DaemonConfig config;
  if (int rc = faas::daemon::ParseDaemonFlags(argc, argv, &config); rc >= 0) {
    return rc;
  }
  return faas::daemon::RunDaemon(config);
}
