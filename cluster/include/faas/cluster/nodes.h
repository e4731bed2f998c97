// What a gateway knows about the worker nodes it routes to (issue #16; ../shared/CLUSTER.md §3):
// who they are, and which of them are up right now. Implementations: StaticNodes (a fixed list,
// for tests and small setups) and the node registry in PostgreSQL plus the gateway's own health
// checks.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace faas::cluster {

struct NodeInfo {
  std::string id;       // --node-id; stable across restarts
  std::string address;  // host:port of the node's gRPC service, invocations (its --advertise)
  // host:port of the node's HTTP server: GET /readyz for the gateways' active health checks
  // (503 while it starts or drains), /healthz for liveness, /metrics.
  std::string http_address;
  double capacity = 1;  // relative weight for balancing (e.g. its instance slots); > 0
  uint64_t epoch = 0;   // raised by each restart (registration); 0 when unknown
  // The node's own load from its last health reply: the share of its capacity that is busy
  // (0..1, may exceed 1 when it queues); negative when unknown.
  double reported_load = -1;
  // Everyone else's load on the node, in calls (the unit of a balancer's in_flight): from each
  // report, reported_load x capacity less this gateway's own calls in flight when the probe went
  // out, smoothed over reports (HealthOptions::others_alpha); negative when unknown (no report
  // with a load yet, or the source does not know our calls). NodeLoad::others_load.
  double others_load = -1;
};

// The nodes a gateway may route to. Thread-safe.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  // The nodes that are up now: registered, not draining, passing health checks. Order does not
  // matter (balancers place by id).
  virtual std::vector<NodeInfo> Up() const = 0;
  // Passive health: a call to node `id` was refused or reset. The node is out at once, until its
  // active checks pass again.
  virtual void MarkDown(std::string_view id, std::string_view why) = 0;
  // How many calls this gateway has in flight on node `id` now. A source that reads the nodes'
  // load reports calls it as it asks for each report, to take our share out of the report
  // (NodeInfo::others_load); the others ignore it. Set by the invoker that counts the calls,
  // and cleared (nullptr) before that invoker goes; `f` must be thread-safe and must not call
  // back into the source.
  virtual void SetOwnInFlight(std::function<double(std::string_view id)> f) { (void)f; }
  // Called with a node each time it comes up (first admitted, or back after being down), from
  // the source's own thread and outside its locks: the invoker connects to it then, not at its
  // first call. Same rules as SetOwnInFlight; nullptr clears it.
  virtual void SetOnUp(std::function<void(const NodeInfo& node)> f) { (void)f; }
};

// A fixed list: every node is up unless MarkDown took it out (it stays out: nothing checks it).
class StaticNodes final : public NodeSource {
 public:
  explicit StaticNodes(std::vector<NodeInfo> nodes);
  std::vector<NodeInfo> Up() const override;
  void MarkDown(std::string_view id, std::string_view why) override;

 private:
  mutable std::mutex mu_;
  std::vector<NodeInfo> nodes_;  // guarded by mu_
  std::vector<std::string> down_;
};

}  // namespace faas::cluster
