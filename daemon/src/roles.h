// faasd's three roles (docs/operations.md "Roles", docs/design/0018-node-protocol.md):
//   all      gateway + control API + scheduler on one machine (RunDaemon, daemon.cc)
//   gateway  HTTP edge + control API; invocations go to nodes (RunDaemon with a RemoteInvoker)
//   node     scheduler + workers, serving NodeService to gateways (RunNode, roles.cc)
// and the pieces they share.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
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
#include "faas/store/ledger.h"
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

// THE place a gateway's node list comes from. Today a cluster::StaticNodes from --nodes
// (InvalidArgument when it is empty or malformed); the PostgreSQL node registry with health
// checks (membership.h) plugs in here.
Result<std::unique_ptr<cluster::NodeSource>> MakeNodeSource(const DaemonConfig& config);

// The gateway's balancer for --balancer ("" = bounded-hash). InvalidArgument for an unknown name.
Result<std::unique_ptr<cluster::Balancer>> MakeNodeBalancer(const DaemonConfig& config);

// TEMPORARY (roles_balancer.cc), until cluster/src/balancer*.cc lands: the same signature as
// cluster::MakeBalancer; every name gets the least-in-flight picker, ties by rendezvous hash.
Result<std::unique_ptr<cluster::Balancer>> TemporaryMakeBalancer(std::string_view name,
                                                                 uint64_t seed = 1);

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
