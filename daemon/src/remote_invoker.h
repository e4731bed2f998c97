// The gateway side of the gateway -> node hop (docs/design/0018-node-protocol.md): faasd --role
// gateway runs invocations, deploy probes and prewarms on the cluster's nodes over gRPC
// (proto/faas/v1/node.proto) instead of a local scheduler.
//
//   RemoteInvoker remote(runner.queue(), &nodes, std::move(balancer), registry.get(), secret);
//   FAAS_RETURN_IF_ERROR(remote.LoadFunctions());       // every function's latest version
//   Gateway gw({.invoker = &remote, ...});
//
// Each invocation asks the NodeSource for the nodes that are up and the Balancer for one, keyed
// function@version, then streams the request to it (head, then 64 KiB body chunks). In-flight
// semantics (../shared/CLUSTER.md §5):
// - not delivered (connection refused or reset before the node took the call): that node is
//   marked down at once and the call goes to the next node; the function never started;
// - delivered, then the stream broke before the answer: 502 node_lost naming the node, and the
//   node is marked down; not retried (the function may have run), unless the function is
//   deployed --idempotent or the request carries Idempotency-Key: then it runs once more on
//   another node (the lost attempt's ledger row is INV.N, node_lost, 0 ms billed);
// - no node up: 503 no_capacity.
// InvokeAsync never blocks its event loop: the calls run on a completion queue whose one thread
// (cq::Runner, grpc_cq.h) reads and writes them all, and the result is posted back with
// EventLoop::Post. Every result names its node (InvokeResult::node).
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "faas/cluster/balancer.h"
#include "faas/cluster/nodes.h"
#include "faas/metering/metrics.h"
#include "faas/store/ledger.h"
#include "faas/store/registry.h"

#include "deploy.h"
#include "tls.h"

namespace grpc {
class CompletionQueue;
}  // namespace grpc

namespace faas::daemon {

class RemoteInvoker final : public Runtime {
 public:
  // `nodes`, `registry`, `ledger` and `metrics` are not owned and must outlive this object.
  // `ledger` (optional) gets the row of each node_lost call, which the lost node could not
  // write: outcome node_lost, 0 ms billed; `metrics` (optional) counts it in
  // faas_invocations_total{outcome="node_lost"}, which the lost node's /metrics cannot.
  // `secret` goes with every call (NodeServiceDeps::secret). With `tls`, nodes are dialled over
  // mutual TLS: this gateway presents its certificate and accepts only nodes whose certificate
  // the cluster's CA signed (a node that fails the handshake counts as not reachable).
  // Invocations run on `queue`, whose Runner must outlive this object.
  RemoteInvoker(grpc::CompletionQueue* queue, cluster::NodeSource* nodes,
                std::unique_ptr<cluster::Balancer> balancer, store::Registry* registry,
                const std::string& secret, store::Ledger* ledger = nullptr,
                metering::Metrics* metrics = nullptr,
                std::shared_ptr<const ClusterTls> tls = nullptr);
  ~RemoteInvoker() override;  // waits for calls in flight to end (they are cancelled)
  RemoteInvoker(const RemoteInvoker&) = delete;
  RemoteInvoker& operator=(const RemoteInvoker&) = delete;

  // Reads every function's latest version from the registry (what Current answers; deploys and
  // rollbacks through this gateway update it at once). Functions no longer stored are forgotten.
  // Thread-safe; deploys, rollbacks and deletes made through other gateways reach it through
  // RegistryFollower (follow.h), which calls it on their NOTIFY and as a periodic backstop.
  // Errors are the registry's.
  Status LoadFunctions();
  // Invocations being streamed to nodes now.
  std::size_t InFlight() const;

  std::shared_ptr<const scheduler::FunctionSpec> Current(const std::string& name) const override;
  scheduler::InvokeResult Invoke(const std::string& name,
                                 scheduler::InvokeRequest request) override;
  void InvokeAsync(const std::string& name, scheduler::InvokeRequest request, EventLoop* loop,
                   std::function<void(scheduler::InvokeResult)> done) override;
  // The node decides (its Prepare fails for outbound functions it cannot run).
  Status OutboundNetworkAvailable() const override { return OkStatus(); }
  // Runs Prepare on the node the balancer picks for function@version (for a deploy's probe, the
  // version the registry will number it; every other node that is up prepares it meanwhile).
  // The library in `extras` (up to kMaxPrepareLibraryBytes) goes with each Prepare, and
  // extras.sent is called once they are on their way. Unavailable when no node is up.
  Status Prepare(const store::Version& v, std::chrono::nanoseconds* took,
                 const PrepareExtras& extras) override;
  bool SendsLibrary(std::size_t size) const override;
  void DropPrepared(const std::string& name) override;
  void SetVersion(const store::Version& v) override;
  // Forgets the function and asks every node that is up to stop its instances (best effort).
  void RemoveFunction(const std::string& name) override;
  // The function's instances summed over the nodes that are up (faasctl describe through a
  // gateway): asks them all at once (NodeService.Stats) and waits at most 500 ms; a node that
  // does not answer in time counts nothing. zygote_pid/parked_pid are left 0 (host pids of
  // other machines mean nothing here).
  scheduler::FunctionStats Stats(const std::string& name) const override;
  // Each node that is up and answers within 500 ms: its instances per function (node id ->
  // function -> stats), for the control API's ListNodes (`faasctl node list`, the console's
  // Cluster page). Asked all at once, like Stats.
  std::map<std::string, std::map<std::string, scheduler::FunctionStats>> NodeStats() const;
  Result<uint32_t> Prewarm(const std::string& name, uint32_t count) override;

  struct Impl;  // remote_invoker.cc: shared with the calls in flight

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace faas::daemon
