// Where each function version was served lately, as one gateway saw its own calls answered: the
// nodes where an instance of it is likely still warm. It fills NodeLoad::warm for bounded-hash's
// warm-aware spill (docs/design/0035-warm-aware-spill.md). A hint, never a promise: a node may
// have evicted the instance since (its warm pool is LRU, design/0032), and then the call is a
// cold start, as it would have been elsewhere.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faas/cluster/balancer.h"

namespace faas::cluster {

// Not thread-safe (the gateway guards it with its own lock); time is passed in.
class WarmTracker {
 public:
  using Clock = std::chrono::steady_clock;
  // A key counts as warm on a node for `window` after the node last answered a call of it.
  explicit WarmTracker(Clock::duration window = std::chrono::seconds(10)) : window_(window) {}

  // `node` ran a call of `key` (an instance of it exists there now).
  void Served(std::string_view key, std::string_view node, Clock::time_point now);
  // Sets `warm` on each of `nodes` that served `key` within the window.
  void Mark(std::string_view key, std::span<NodeLoad> nodes, Clock::time_point now) const;
  // Keys remembered; entries older than the window are dropped at most one window late.
  std::size_t Keys() const { return by_key_.size(); }

 private:
  struct Seen {
    std::string node;
    Clock::time_point at;
  };
  Clock::duration window_;
  std::map<std::string, std::vector<Seen>, std::less<>> by_key_;
  Clock::time_point next_sweep_{};
};

}  // namespace faas::cluster
