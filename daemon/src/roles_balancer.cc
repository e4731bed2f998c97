// TEMPORARY: a stand-in for cluster::MakeBalancer until cluster/src/balancer*.cc (another
// engineer's, issue #16 item 5) lands. Then MakeNodeBalancer (roles.cc) calls
// cluster::MakeBalancer instead and this file goes.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "roles.h"

namespace faas::daemon {
namespace {

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (char c : s) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return h;
}

// The node with the fewest invocations in flight from this gateway; among equals the one whose
// hash with the key is highest (rendezvous), so an idle cluster keeps a function on one node.
class LeastInFlight final : public cluster::Balancer {
 public:
  std::string_view Name() const override { return "least-in-flight (temporary)"; }
  std::size_t Pick(std::string_view key, std::span<const cluster::NodeLoad> nodes) override {
    std::size_t best = 0;
    uint64_t best_hash = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      std::string both(key);
      both += '/';
      both += nodes[i].id;
      const uint64_t h = Fnv1a64(both);
      if (i == 0 || nodes[i].in_flight < nodes[best].in_flight ||
          (nodes[i].in_flight == nodes[best].in_flight && h > best_hash)) {
        best = i;
        best_hash = h;
      }
    }
    return best;
  }
};

}  // namespace

Result<std::unique_ptr<cluster::Balancer>> TemporaryMakeBalancer(std::string_view name,
                                                                 uint64_t /*seed*/) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "bounded-hash",      "round-robin",         "weighted-round-robin",
      "least-connections", "least-response-time", "p2c",
      "resource"};
  if (std::find(kNames.begin(), kNames.end(), name) == kNames.end()) {
    return InvalidArgumentError("--balancer \"" + std::string(name) +
                                "\" is not one of bounded-hash, round-robin, "
                                "weighted-round-robin, least-connections, least-response-time, "
                                "p2c, resource");
  }
  return std::unique_ptr<cluster::Balancer>(std::make_unique<LeastInFlight>());
}

}  // namespace faas::daemon
