// A gateway's health checks of the worker nodes (issue #16 item 4; ../shared/CLUSTER.md §3;
// docs/design/0019-membership-and-health.md). HealthChecker is the NodeSource a gateway routes
// with: the registered nodes (from a list function, re-read about every second) that pass its
// own checks.
//
//   HealthChecker checker(
//       [&]() -> Result<std::vector<NodeInfo>> { return RegisteredUpNodes(); }, {});
//   checker.Start();                     // two threads: the list refresher and the prober
//   std::vector<NodeInfo> up = checker.Up();
//   checker.MarkDown("n2", "connection refused");  // passive: out at once
//
// Active checks: every `interval` (250 ms) each node's `GET /readyz` is probed, all nodes at
// once with non-blocking sockets polled from one thread, so a blackholed or stopped node costs
// the others nothing; a probe passes on HTTP 200 within `timeout` (200 ms). A node is taken out
// after `fall` (3) misses in a row (at once when its connection is refused: nothing listens) and
// readmitted after `rise` (2) passes in a row; a node seen
// for the first time is admitted at its first pass. /readyz, not /healthz: /readyz answers 503
// while a node starts or drains, /healthz only says the process serves (liveness).
// Passive checks: MarkDown takes a node out at once; `rise` passes bring it back.
// The node's reported load is read from a JSON body's "load" number, when there is one; with
// SetOwnInFlight, the gateway's own calls in flight on the node as each probe is sent are taken out
// of it, and what remains, smoothed, is everyone else's load (NodeInfo::others_load), which
// bounded-hash adds to our calls in flight now (docs/design/0017-balancing.md, "Several gateways").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/cluster/nodes.h"

namespace faas::cluster {

struct HealthOptions {
  std::chrono::milliseconds interval{250};  // one probe round per interval
  std::chrono::milliseconds timeout{200};   // a probe without a 200 by then is a miss
  int fall = 3;                             // misses in a row that take a node out
  int rise = 2;                             // passes in a row that bring it back
  std::chrono::milliseconds refresh{1000};  // how often the list function is called
  // Weight of the newest report in NodeInfo::others_load (an EWMA over reports, ~1 s at 250 ms):
  // one report is a sample of a load that moves much faster than reports come; the average is
  // the better guess of the next 250 ms (the simulation: 0.93 -> 0.98 warm hits, 3 gateways).
  double others_alpha = 0.3;
  // The clock (steady); a fake one in tests.
  std::function<faas::Clock::time_point()> now = [] { return faas::Clock::now(); };
};

// One probe's outcome.
struct ProbeResult {
  bool ok = false;
  std::string why;   // for a miss: "status 503", "timeout after 200ms", "connect: ..."
  double load = -1;  // "load" from the body; negative when absent
  // The connection was refused: nothing listens, the process is gone (SIGKILL, crash). Such a
  // miss takes the node out at once, as a passive refusal does.
  bool refused = false;
};

// Probes a set of nodes at once. Not thread-safe; the checker's prober thread owns it.
class Prober {
 public:
  virtual ~Prober() = default;
  // One result per address ("host:port", numeric IPv4 or [IPv6], or localhost), in order,
  // all within about `timeout`.
  virtual std::vector<ProbeResult> ProbeAll(const std::vector<std::string>& http_addresses,
                                            std::chrono::milliseconds timeout) = 0;
};

// GET /readyz over HTTP/1.1 with non-blocking sockets and one poll loop.
std::unique_ptr<Prober> MakeHttpProber();
// The "load" number of a /readyz body such as {"status":"ready","load":0.42}; -1 without one.
double ParseReportedLoad(std::string_view body);

// What the checker knows about one node, for tests, logs and `faasctl node list`.
struct NodeHealth {
  NodeInfo info;
  bool up = false;
  int misses = 0;  // in a row
  int passes = 0;  // in a row
  std::string last_error;
};

// Thread-safe. The list function runs on the refresher thread; when it fails (the store is
// down), the last list stays in force.
class HealthChecker final : public NodeSource {
 public:
  using ListFn = std::function<faas::Result<std::vector<NodeInfo>>()>;

  // `list` returns the nodes that may take work (registered, not draining or dead). `prober`
  // defaults to MakeHttpProber().
  HealthChecker(ListFn list, HealthOptions options, std::unique_ptr<Prober> prober = nullptr);
  ~HealthChecker() override;  // Stop()s
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts the refresher and prober threads (after a first Refresh()). Idempotent.
  void Start();
  // Joins them. Idempotent.
  void Stop();

  std::vector<NodeInfo> Up() const override;
  void MarkDown(std::string_view id, std::string_view why) override;
  void SetOwnInFlight(std::function<double(std::string_view id)> f) override;
  void SetOnUp(std::function<void(const NodeInfo& node)> f) override;

  // One refresh and one probe round, as the threads run them; public for tests that drive the
  // checker step by step without threads.
  faas::Status Refresh();
  void ProbeRound();
  // Every known node's state, ordered by id.
  std::vector<NodeHealth> Snapshot() const;

 private:
  struct Entry {
    NodeHealth health;
    bool seen_pass = false;  // a first pass admits a node at once
    faas::Clock::time_point down_since{};
  };
  // True when the node came up with this result.
  bool Record(Entry& e, const ProbeResult& r, double own);  // mu_ held
  void SetDown(Entry& e, std::string_view why);             // mu_ held
  void RefreshLoop();
  void ProbeLoop();

  const ListFn list_;
  const HealthOptions options_;
  std::unique_ptr<Prober> prober_;  // used by ProbeRound only

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> nodes_;  // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  // Shared, so that a round can call it outside mu_ while SetOwnInFlight replaces it.
  std::shared_ptr<const std::function<double(std::string_view)>> own_in_flight_;  // guarded by mu_
  std::shared_ptr<const std::function<void(const NodeInfo&)>> on_up_;             // guarded by mu_
  std::condition_variable wake_;
  std::thread refresher_;
  std::thread prober_thread_;
};

}  // namespace faas::cluster
