// Trust between machines (docs/design/0028-cluster-tls.md): mutual TLS between gateways and
// nodes, and server TLS on a control API that is not on loopback. The one place faasd builds
// gRPC credentials; callers hold a ClusterTls (three PEMs read at start) and ask for the
// credentials they need.
//
//   FAAS_ASSIGN_OR_RETURN(std::shared_ptr<const ClusterTls> tls, LoadClusterTls(config));
//   builder.AddListeningPort(addr, NodeServerCredentials(tls.get()), &port);   // node
//   grpc::CreateCustomChannel(addr, NodeChannelCredentials(tls.get()), args);  // gateway
//
// A null ClusterTls (no --tls-* flags) gives insecure credentials: loopback clusters and
// --insecure-cluster only (CheckRoleFlags refuses the rest).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/daemon/daemon.h"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
class ChannelArguments;
}  // namespace grpc

namespace faas::daemon {

struct ClusterTls {
  std::string ca_pem;    // --tls-ca: the cluster's CA; the only issuer peers are accepted from
  std::string cert_pem;  // --tls-cert: this process's certificate (server and client auth)
  std::string key_pem;   // --tls-key
  // --tls-node-name (gateway): the name every node's certificate is checked against; empty =
  // the host of each node's address (its certificate carries it as an IP or DNS SAN).
  std::string node_name;
};

// Reads --tls-ca/--tls-cert/--tls-key; nullptr when none is given. Errors name the file.
Result<std::shared_ptr<const ClusterTls>> LoadClusterTls(const DaemonConfig& config);

// True for 127.0.0.0/8, ::1 and localhost: addresses nobody off this machine can reach.
bool IsLoopbackHost(std::string_view host);

// NodeService on a node: with `tls`, a client certificate signed by the CA is required and
// verified (a caller without one never gets to send a request); insecure without.
std::shared_ptr<grpc::ServerCredentials> NodeServerCredentials(const ClusterTls* tls);
// The control API on `address` (host:port): server TLS when `tls` is given and the host is not
// loopback (faasctl --tls-ca verifies it); no client certificate is asked for (faasctl proves
// itself with its token). Insecure otherwise.
std::shared_ptr<grpc::ServerCredentials> ControlServerCredentials(const ClusterTls* tls,
                                                                  const std::string& address);
// A gateway's channel to a node: presents its certificate, verifies the node's against the CA,
// and (with node_name) sets the name checked into `args`. Insecure without `tls`.
std::shared_ptr<grpc::ChannelCredentials> NodeChannelCredentials(const ClusterTls* tls,
                                                                 grpc::ChannelArguments* args);

}  // namespace faas::daemon
