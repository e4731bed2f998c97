// Test support: certificates for cluster TLS (docs/design/0028-cluster-tls.md), made by the
// operators' own infra/cluster-certs.sh with openssl in a temp dir of the test.
//
//   ClusterCerts certs;
//   if (std::string why = ClusterCerts::Unavailable(); !why.empty()) GTEST_SKIP() << why;
//   ASSERT_TRUE(certs.Make({"gw:127.0.0.1", "n1:127.0.0.1"}, &error)) << error;
//   node.Start({..., certs.Flags("n1")});   // --tls-ca ... --tls-cert ... --tls-key ...
#pragma once

#include <string>
#include <vector>

#include "subprocess.h"

namespace faas::testing {

class ClusterCerts {
 public:
  // Why certificates cannot be made here ("" when they can): openssl missing.
  static std::string Unavailable();

  // Runs infra/cluster-certs.sh DIR SPECS... (the CA is made on the first call, reused after).
  bool Make(const std::vector<std::string>& specs, std::string* error);
  // --tls-ca, --tls-cert and --tls-key for `name`, to append to faasd's arguments.
  std::vector<std::string> Flags(const std::string& name) const;
  std::string Ca() const { return dir_.path() + "/ca.pem"; }
  std::string Cert(const std::string& name) const { return dir_.path() + "/" + name + ".pem"; }
  std::string Key(const std::string& name) const { return dir_.path() + "/" + name + "-key.pem"; }
  std::string Read(const std::string& file) const { return ReadFileOrEmpty(file); }

 private:
  TempDir dir_;
};

}  // namespace faas::testing
