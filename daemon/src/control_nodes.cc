// The control API's cluster nodes: `faasctl node list` and `faasctl node drain ID`, over the
// node registry (membership.h has the workflow).
#include <map>
#include <string>

#include "faas/base/log.h"

#include "control_service.h"
#include "membership.h"

namespace faas::daemon {
namespace {

void ToProto(const store::NodeRecord& n, v1::ClusterNode* p) {
  p->set_id(n.id);
  p->set_address(n.address);
  p->set_http_address(n.http_address);
  p->set_capacity(n.capacity);
  p->set_state(std::string(store::NodeStateName(n.state)));
  p->set_epoch(n.epoch);
  p->set_load(n.load);
  p->set_heartbeat_age_ms(n.heartbeat_age_ms);
  p->set_registered_unix_ms(n.registered_unix_ms);
}

Status NotClustered() {
  return faas::FailedPreconditionError(
      "this faasd has no node registry: cluster nodes live in PostgreSQL (start faasd with "
      "--store postgresql://…)");
}

std::string_view NodeErrorCode(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return "node_not_found";
    case StatusCode::kFailedPrecondition:
      return "node_dead";
    case StatusCode::kUnavailable:
      return "store_unavailable";
    default:
      return "internal";
  }
}

}  // namespace

grpc::Status ControlService::ListNodes(grpc::ServerContext* ctx, const v1::ListNodesRequest*,
                                       v1::ListNodesReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (deps_.nodes == nullptr) {
      return Fail(ctx, "not_clustered", NotClustered());
    }
    auto nodes = deps_.nodes->List();
    if (!nodes.ok()) {
      return Fail(ctx, NodeErrorCode(nodes.status()), nodes.status());
    }
    // What each node that is up runs now (one Stats call per node, at once, ≤ 500 ms).
    std::map<std::string, std::map<std::string, scheduler::FunctionStats>> stats;
    if (deps_.node_stats) {
      stats = deps_.node_stats();
    }
    for (const store::NodeRecord& n : *nodes) {
      v1::ClusterNode* p = reply->add_nodes();
      ToProto(n, p);
      auto it = stats.find(n.id);
      if (it == stats.end()) {
        continue;
      }
      p->set_stats_known(true);
      for (const auto& [fn, st] : it->second) {
        if (st.idle + st.busy == 0) {
          continue;  // known to the node, but no instance there now
        }
        v1::ClusterNodeFunction* f = p->add_functions();
        f->set_function(fn);
        f->set_idle(st.idle);
        f->set_busy(st.busy);
        p->set_instances_idle(p->instances_idle() + st.idle);
        p->set_instances_busy(p->instances_busy() + st.busy);
      }
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::DrainNode(grpc::ServerContext* ctx, const v1::DrainNodeRequest* req,
                                       v1::ClusterNode* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (deps_.nodes == nullptr) {
      return Fail(ctx, "not_clustered", NotClustered());
    }
    if (req->id().empty()) {
      return Fail(ctx, "invalid_argument", faas::InvalidArgumentError("a node id is required"));
    }
    auto drained = DrainNodeById(*deps_.nodes, req->id());
    if (!drained.ok()) {
      return Fail(ctx, NodeErrorCode(drained.status()), drained.status());
    }
    ToProto(*drained, reply);
    static auto log = log::Get("control");
    FAAS_LOG(log, info, "node.drain", {"node", req->id()});
    return grpc::Status::OK;
  });
}

}  // namespace faas::daemon
