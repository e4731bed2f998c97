#include "faas/cluster/warm_tracker.h"

#include <algorithm>
#include <iterator>

namespace faas::cluster {

void WarmTracker::Served(std::string_view key, std::string_view node, Clock::time_point now) {
  // One sweep per window keeps the map to the keys served in the last two windows.
  if (now >= next_sweep_) {
    for (auto it = by_key_.begin(); it != by_key_.end();) {
      std::erase_if(it->second, [&](const Seen& s) { return now - s.at > window_; });
      it = it->second.empty() ? by_key_.erase(it) : std::next(it);
    }
    next_sweep_ = now + window_;
  }
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    it = by_key_.emplace(std::string(key), std::vector<Seen>{}).first;
  }
  auto seen = std::find_if(it->second.begin(), it->second.end(),
                           [&](const Seen& s) { return s.node == node; });
  if (seen == it->second.end()) {
    it->second.push_back({std::string(node), now});
  } else {
    seen->at = std::max(seen->at, now);
  }
}

void WarmTracker::Mark(std::string_view key, std::span<NodeLoad> nodes,
                       Clock::time_point now) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return;
  }
  for (const Seen& s : it->second) {
    if (now - s.at > window_) {
      continue;
    }
    for (NodeLoad& n : nodes) {
      n.warm = n.warm || n.id == s.node;
    }
  }
}

}  // namespace faas::cluster
