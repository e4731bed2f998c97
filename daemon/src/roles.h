// faasd's three roles (docs/operations.md "Roles", docs/design/0018-node-protocol.md):
//   all      gateway + control API + scheduler on one machine (RunDaemon, daemon.cc)
//   gateway  HTTP edge + control API; invocations go to nodes (RunDaemon with a RemoteInvoker)
//   node     scheduler + workers, serving NodeService to gateways (RunNode, roles.cc)
// and the pieces they share.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/cluster/balancer.h"
#include "faas/cluster/nodes.h"
#include "faas/daemon/daemon.h"
#include "faas/metering/metrics.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/central_ledger.h"
#include "faas/store/ledger.h"
#include "faas/store/nodes.h"
#include "faas/store/registry.h"

namespace faas::sandbox {
class CgroupRoot;
}  // namespace faas::sandbox

namespace faas::daemon {

// The flag combinations the roles allow, all problems at once (InvalidArgument), e.g. "--role
// gateway needs --store postgres://... (the registry the nodes share)".
Status CheckRoleFlags(const DaemonConfig& config);

// --node-id, or this machine's hostname.
std::string NodeId(const DaemonConfig& config);

// --nodes "id=grpc_host:port@http_host:port,...": InvalidArgument naming the bad entry.
Result<std::vector<cluster::NodeInfo>> ParseNodes(std::string_view flag);

// THE place a gateway's node list comes from: a fixed cluster::StaticNodes when --nodes is given
// (InvalidArgument when malformed), otherwise the nodes registered in the shared store that pass
// this gateway's health checks (membership.h MakeGatewayNodeSource over `registered`).
Result<std::unique_ptr<cluster::NodeSource>> MakeNodeSource(const DaemonConfig& config,
                                                            store::NodeRegistry* registered);

// The gateway's balancer for --balancer ("" = bounded-hash). InvalidArgument for an unknown name.
Result<std::unique_ptr<cluster::Balancer>> MakeNodeBalancer(const DaemonConfig& config);

// A PostgreSQL store's central ledger (docs/design/0020-central-ledger.md): this process's local
// ledger rows are shipped there, and bills, invocations and logs are read from it. Both null on
// SQLite or with --unsafe-no-ledger. Destroy before the local ledger: the shipper makes a final
// attempt to ship then.
struct CentralLedger {
  std::unique_ptr<store::PgLedger> central;
  std::unique_ptr<store::LedgerShipper> shipper;
};
Result<CentralLedger> StartCentralLedger(const DaemonConfig& config, store::Ledger* ledger,
                                         metering::Metrics* metrics);

// --http and --grpc as host and port, or nullopt after logging faasd.bad_address (exit 2).
struct ListenAddresses {
  std::pair<std::string, uint16_t> http;
  std::pair<std::string, uint16_t> grpc;
};
std::optional<ListenAddresses> ParseListenAddresses(const DaemonConfig& config);

// The stores of a role that runs or bills functions (all, gateway, node): the registry (--store),
// the local ledger (--data-dir) and, on PostgreSQL, the central ledger (StartCentralLedger, its
// backlog a source of `metrics`). Declared in the order they are built: the central ledger is
// destroyed first, then the local ledger it ships from.
struct Stores {
  std::unique_ptr<store::Registry> registry;
  std::unique_ptr<store::Ledger> ledger;
  CentralLedger central;
};
// Opens them, or logs what failed (faasd.store_failed, faasd.ledger_failed) and returns nullopt:
// the process exits 1. The store string is not logged: a postgres:// URI may carry a password.
std::optional<Stores> OpenStores(const DaemonConfig& config, metering::Metrics* metrics);

// faasd --role node: runs until a signal in `stop_signals` (already blocked), then drains.
// Returns the process exit code.
int RunNode(const DaemonConfig& config, const sigset_t& stop_signals);

// Defined in daemon.cc, shared by the roles that run functions (all, node).

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& addr);

// The cgroups and the scheduler of one machine.
struct LocalScheduler {
  LocalScheduler();
  ~LocalScheduler();
  std::unique_ptr<sandbox::CgroupRoot> cgroups;
  std::unique_ptr<scheduler::Scheduler> sched;  // declared last: destroyed before its cgroups
};

// Checks the worker binary and the cgroups (limits fail closed), starts the scheduler and
// feeds /metrics its instance gauges. Logs why and returns nullptr when it cannot.
std::unique_ptr<LocalScheduler> StartScheduler(const DaemonConfig& config, store::Ledger* ledger,
                                               metering::Metrics* metrics);

}  // namespace faas::daemon
