// The node registry (issue #16 item 4; ../shared/CLUSTER.md §3;
// docs/design/0019-membership-and-health.md): which worker nodes exist, their addresses,
// capacity, state and epoch, in PostgreSQL, shared by every gateway and node of a cluster.
//
//   FAAS_ASSIGN_OR_RETURN(auto nodes, faas::store::OpenNodeRegistry("postgresql:///faas"));
//   FAAS_ASSIGN_OR_RETURN(uint64_t epoch, nodes->Register({.id = "n1", .address = "10.0.0.2:9100",
//                                                         .http_address = "10.0.0.2:8080"}));
//   Result<NodeState> st = nodes->Heartbeat("n1", epoch, 0.3);  // every second
//   if (IsFenced(st.status())) { ... stop acknowledging queue work, register again ... }
//   if (st.ok() && *st == NodeState::kDraining) { ... drain ... }
//
// Every time is the database server's (now()), never a process's clock, so the nodes' and
// gateways' clocks need not agree. Fencing: each registration raises the row's epoch; a
// heartbeat names the epoch it registered with, and changes nothing when the row has moved on
// (another process registered with this id) or was declared dead by the janitor; the node must
// then register again (a new epoch) before it takes queue work.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::store {

enum class NodeState { kUp, kDraining, kDead };
// "up", "draining", "dead".
std::string_view NodeStateName(NodeState s);

// One row of the registry.
struct NodeRecord {
  std::string id;            // --node-id; stable across restarts
  std::string address;       // host:port of its gRPC NodeService
  std::string http_address;  // host:port of its HTTP server (/readyz for health checks)
  double capacity = 1;       // relative weight for balancing, > 0
  NodeState state = NodeState::kUp;
  uint64_t epoch = 0;  // raised by every registration; 1 for the first
  double load = 0;     // what its last heartbeat reported (busy share of capacity)
  int64_t heartbeat_unix_ms = 0;
  int64_t heartbeat_age_ms = 0;  // the server's now() - heartbeat_at, at the time of the read
  int64_t registered_unix_ms = 0;
};

// The NOTIFY channel the janitor signals when it declares nodes dead (payload: the ids,
// comma-separated), and registration and state changes (payload: the id).
inline constexpr std::string_view kNodesChannel = "faas_nodes";
// The janitor declares a node dead after this long without a heartbeat (CLUSTER.md §3).
inline constexpr std::chrono::milliseconds kNodeDeadAfter{3000};

// What a janitor step did.
struct JanitorReport {
  bool janitor = false;                  // this process holds the janitor lock
  std::vector<std::string> marked_dead;  // ids it declared dead in this step
};

// Heartbeat's distinct failure: the row's epoch moved on or the node was declared dead.
// Its code is kAborted; nothing else in this interface returns kAborted.
bool IsFenced(const faas::Status& s);

// Thread-safe (one internal mutex serialises one connection). When the server goes away, calls
// fail with Unavailable and the next call reconnects.
class NodeRegistry {
 public:
  virtual ~NodeRegistry() = default;
  // Inserts the node, or raises its epoch and sets it up with the given addresses and capacity.
  // Returns the new epoch. InvalidArgument for an empty id or address, or capacity <= 0.
  virtual faas::Result<uint64_t> Register(const NodeRecord& node) = 0;
  // Records a heartbeat with the node's `load`. Returns the row's state (kDraining when an
  // operator asked it to drain). Fenced (IsFenced) when no row has this id and epoch and is
  // alive.
  virtual faas::Result<NodeState> Heartbeat(std::string_view id, uint64_t epoch, double load) = 0;
  // Every node, dead ones included, ordered by id.
  virtual faas::Result<std::vector<NodeRecord>> List() = 0;
  // Sets the node's state (drain: kDraining). NotFound for an unknown id.
  virtual faas::Status SetState(std::string_view id, NodeState state) = 0;
  // One janitor step. Only the process that holds the janitor's advisory lock (taken on the
  // first step that finds it free, held for the life of its connection) marks nodes dead:
  // those up or draining with no heartbeat for `dead_after`, by the server's clock; it then
  // NOTIFYs kNodesChannel. The others return janitor = false.
  virtual faas::Result<JanitorReport> JanitorStep(std::chrono::milliseconds dead_after) = 0;
  // The secret gateways present to nodes on every NodeService call (256 random bits as hex),
  // created by the first process that asks, the same for every process of the cluster. Whoever
  // can read the database can read it; nobody else can call a node.
  virtual faas::Result<std::string> NodeSecret() = 0;
};

// The registry in the PostgreSQL database `store` ("postgres://…" or "postgresql://…"), its
// schema migrated. FailedPrecondition for another store (SQLite has no node registry: a
// cluster needs PostgreSQL); Unavailable when the server cannot be reached.
faas::Result<std::unique_ptr<NodeRegistry>> OpenNodeRegistry(std::string_view store);

}  // namespace faas::store
