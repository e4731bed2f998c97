// The node side of the gateway -> node hop (proto/faas/v1/node.proto,
// docs/design/0018-node-protocol.md): faasd --role node serves NodeService on --grpc, running
// each invocation on its local scheduler. Versions come from the shared registry: a version the
// node does not run yet is read from it and its library fetched (FetchArtifact verifies the
// sha256 before anything loads) when a gateway first asks for it. A deploy's Prepare carries the
// library itself (CacheArtifact verifies it the same way), so the node need not read it back.
//
//   auto server = NodeServer::Start("127.0.0.1:0", {.scheduler = &sched, .registry = reg.get(),
//                                                   .node_id = "n1"});
//   ... (*server)->port() ...
//   (*server)->Shutdown(deadline);
//
// gRPC stays inside node_service.cc; the proto converters below are shared with
// remote_invoker.cc, the gateway side.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "faas/base/status.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/registry.h"

#include "tls.h"

namespace faas::v1 {
class NodeInvokeHead;
class NodeReplyHead;
}  // namespace faas::v1

namespace faas::daemon {

// Invocation bodies travel in chunks of this size (both ways).
inline constexpr std::size_t kNodeChunkBytes = 64u << 10;
// The largest library a gateway sends inside a Prepare (NodePrepareRequest.library); a larger one
// is fetched by each node from the store. A node's gRPC server takes messages up to this plus
// kNodeMessageSlack (every other message is far smaller; body chunks are checked apart).
inline constexpr std::size_t kMaxPrepareLibraryBytes = 16u << 20;
inline constexpr std::size_t kNodeMessageSlack = 1u << 20;

struct NodeServiceDeps {
  scheduler::Scheduler* scheduler = nullptr;  // not owned
  store::Registry* registry = nullptr;        // not owned
  std::string node_id;
  // Every call must carry "authorization: Bearer <secret>" (store::NodeRegistry::NodeSecret):
  // whoever reaches the port without it can invoke nothing. Required (not empty).
  std::string secret;
  uint32_t loops = 1;  // event loops that run invocations (Scheduler::InvokeAsync)
  // With it, only clients with a certificate signed by the cluster's CA get to call at all
  // (mutual TLS, docs/design/0028-cluster-tls.md); null = plaintext.
  std::shared_ptr<const ClusterTls> tls;
};

class NodeServer {
 public:
  // Listens on `address` (host:port, port 0 = any) and serves NodeService. Unavailable when it
  // cannot listen.
  static Result<std::unique_ptr<NodeServer>> Start(const std::string& address,
                                                   NodeServiceDeps deps);
  ~NodeServer();  // Shutdown(now)
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;

  int port() const;
  // For a drain, before the scheduler stops: every call from now on is refused UNAVAILABLE
  // before it is delivered (its gateway runs it on another node), and this waits until the calls
  // already handed to the scheduler are answered, or `deadline`. The server keeps listening.
  void StopTakingCalls(std::chrono::system_clock::time_point deadline);
  // Stops taking calls; calls still running may finish until `deadline`, then are cancelled.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  struct Impl;
  explicit NodeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Converters shared by both ends of the Invoke stream. Bodies travel apart, in chunks.
void ToProto(const scheduler::InvokeRequest& r, v1::NodeInvokeHead* head);
scheduler::InvokeRequest FromProto(const v1::NodeInvokeHead& head);
void ToProto(const scheduler::InvokeResult& r, v1::NodeReplyHead* head);
scheduler::InvokeResult FromProto(const v1::NodeReplyHead& head);

}  // namespace faas::daemon
