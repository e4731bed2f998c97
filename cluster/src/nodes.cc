#include "faas/cluster/nodes.h"

#include <algorithm>
#include <utility>

#include "faas/base/log.h"

namespace faas::cluster {

StaticNodes::StaticNodes(std::vector<NodeInfo> nodes) : nodes_(std::move(nodes)) {}

std::vector<NodeInfo> StaticNodes::Up() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeInfo> up;
  for (const NodeInfo& n : nodes_) {
    if (std::find(down_.begin(), down_.end(), n.id) == down_.end()) {
      up.push_back(n);
    }
  }
  return up;
}

void StaticNodes::MarkDown(std::string_view id, std::string_view why) {
  static auto log = faas::log::Get("cluster");
  std::lock_guard<std::mutex> lock(mu_);
  if (std::find(down_.begin(), down_.end(), id) == down_.end()) {
    down_.emplace_back(id);
    FAAS_LOG(log, warn, "node.down", {"node", std::string(id)}, {"why", std::string(why)});
  }
}

}  // namespace faas::cluster
