// Cluster membership for the daemon's roles (issue #16 item 4;
// docs/design/0019-membership-and-health.md), over the node registry (faas/store/nodes.h):
//
//   node role:     NodeMembership registers the node, heartbeats every second with its load,
//                  re-registers when fenced, and calls on_drain when an operator drains it.
//   gateway role:  MakeGatewayNodeSource: the registered nodes that pass this gateway's own
//                  health checks (cluster::HealthChecker); NodeJanitor: declares silent nodes
//                  dead (only in the gateway that holds the janitor lock).
//
//   NodeMembership m(nodes.get(), {.self = {...}, .load = [&] { return pool.BusyShare(); },
//                                  .on_drain = [&] { daemon.BeginDrain(); }});
//   m.Start();
//   ... SIGTERM: m.Drain(); finish in-flight work; m.Leave(); m.Stop();
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/cluster/health.h"
#include "faas/cluster/nodes.h"
#include "faas/store/nodes.h"

namespace faas::daemon {

struct NodeMembershipOptions {
  store::NodeRecord self;  // id, address, http_address, capacity
  std::chrono::milliseconds heartbeat_interval{1000};
  // The load each heartbeat reports (busy share of capacity); null reports -1 (unknown).
  std::function<double()> load;
  // Called once, on the heartbeat thread, when the node's row becomes draining (faasctl node
  // drain). Not called for Drain(), which the caller starts itself.
  std::function<void()> on_drain;
  // Called on the heartbeat thread when a heartbeat was fenced (the node was declared dead or
  // another process registered its id), before it registers again: stop acknowledging queue
  // work taken under `old_epoch`.
  std::function<void(uint64_t old_epoch)> on_fenced;
};

// The node role's membership. Thread-safe; its callbacks run on its own thread.
class NodeMembership {
 public:
  // `registry` is not owned and must outlive this.
  NodeMembership(store::NodeRegistry* registry, NodeMembershipOptions options);
  ~NodeMembership();  // Stop()s
  NodeMembership(const NodeMembership&) = delete;
  NodeMembership& operator=(const NodeMembership&) = delete;

  // Registers once now and starts the heartbeat thread. The first registration's error
  // (Unavailable while the store is down) is returned, but the thread keeps trying.
  faas::Status Start();
  void Stop();
  // Sets this node's row draining (SIGTERM): gateways stop sending it work; a re-registration
  // after a fence keeps it draining.
  faas::Status Drain();
  // Marks the row dead on a clean exit, so that gateways drop it now rather than after the
  // janitor's 3 s.
  faas::Status Leave();

  // The epoch of the current registration; 0 while unregistered.
  uint64_t epoch() const { return epoch_.load(); }
  // True from a fenced heartbeat until the node has registered again.
  bool fenced() const { return fenced_.load(); }

 private:
  faas::Status RegisterNow();  // on the heartbeat thread, or from Start()
  void Beat();
  void Loop();

  store::NodeRegistry* const registry_;
  const NodeMembershipOptions options_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> fenced_{false};
  std::atomic<bool> draining_{false};      // Drain() was called
  std::atomic<bool> drain_called_{false};  // on_drain ran (or Drain() made it moot)
  bool store_down_ = false;                // heartbeat thread only: logs one line per outage

  std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_
  std::condition_variable wake_;
  std::thread thread_;
};

// The gateway role's NodeSource: a started HealthChecker over the registry's nodes that are up
// (not draining or dead), re-listed every `options.refresh`. `registry` must outlive it.
std::unique_ptr<cluster::NodeSource> MakeGatewayNodeSource(store::NodeRegistry* registry,
                                                           cluster::HealthOptions options = {});
// The registry's up nodes as the cluster sees them (for MakeGatewayNodeSource's list).
faas::Result<std::vector<cluster::NodeInfo>> ListUpNodes(store::NodeRegistry& registry);

// `faasctl node drain ID`: sets the node's row draining (its next heartbeat tells it) and
// returns the row. NotFound for an unknown id, FailedPrecondition for a dead node.
faas::Result<store::NodeRecord> DrainNodeById(store::NodeRegistry& registry, std::string_view id);

// The gateway role's janitor loop: a JanitorStep every `interval`; only the gateway holding the
// janitor lock marks nodes dead after `dead_after` without a heartbeat. `registry` must outlive
// it.
class NodeJanitor {
 public:
  explicit NodeJanitor(store::NodeRegistry* registry,
                       std::chrono::milliseconds dead_after = store::kNodeDeadAfter,
                       std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~NodeJanitor();  // stops
  NodeJanitor(const NodeJanitor&) = delete;
  NodeJanitor& operator=(const NodeJanitor&) = delete;
  // Called with the ids of every node this janitor declared dead (e.g. to claim their queue
  // entries); set before the first step, runs on the janitor's thread.
  void OnDead(std::function<void(const std::vector<std::string>&)> f) { on_dead_ = std::move(f); }
  void Start();

 private:
  store::NodeRegistry* const registry_;
  const std::chrono::milliseconds dead_after_;
  const std::chrono::milliseconds interval_;
  std::function<void(const std::vector<std::string>&)> on_dead_;
  std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace faas::daemon
