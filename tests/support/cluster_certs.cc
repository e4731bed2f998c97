#include "cluster_certs.h"

#include <unistd.h>

namespace faas::testing {

std::string ClusterCerts::Unavailable() {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"}) {
    if (::access((std::string(dir) + "openssl").c_str(), X_OK) == 0) {
      return "";
    }
  }
  return "openssl is not installed (infra/install-deps.sh installs it)";
}

bool ClusterCerts::Make(const std::vector<std::string>& specs, std::string* error) {
  std::vector<std::string> argv = {std::string(FAAS_TEST_SOURCE_DIR) + "/infra/cluster-certs.sh",
                                   dir_.path()};
  argv.insert(argv.end(), specs.begin(), specs.end());
  CommandResult r = RunCommand(argv, "", std::chrono::seconds(30));
  if (r.exit_code != 0) {
    *error =
        "infra/cluster-certs.sh failed (" + std::to_string(r.exit_code) + "): " + r.out + r.err;
    return false;
  }
  return true;
}

std::vector<std::string> ClusterCerts::Flags(const std::string& name) const {
  return {"--tls-ca", Ca(), "--tls-cert", Cert(name), "--tls-key", Key(name)};
}

}  // namespace faas::testing
