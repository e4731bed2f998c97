// The cluster bench's shared pieces (docs/design/0030-cluster-bench.md): the set-up of both
// clusters and HAProxy, the warm-hit and overhead measures (cluster_bench.cc), the paced Zipf
// load and HAProxy's process (common.cc), and one file per further measure: churn.cc (a node
// leaves and joins), fault.cc (node failures), scale.cc (1 to 3 nodes), rollout.cc (a 1 MiB
// deploy).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster_certs.h"
#include "faasd_process.h"
#include "local_net.h"
#include "postgres_process.h"
#include "subprocess.h"

namespace faas::bench {

using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr int kFunctions = 200;
// Busy CPUs under which the host counts as quiet before a measured load (WaitHostQuiet).
constexpr double kQuietCpus = 0.3;

// Set by SIGINT/SIGTERM: the load stops and main returns, so every destructor cleans up (the
// faasd processes and namespace holders also die with this process: PR_SET_PDEATHSIG).
extern std::atomic<bool> g_stop;

class NodeCaps;  // scale.cc

struct Options {
  int rounds = 2;
  // Every node keeps at most `warm_pool` instances, all functions together (faasd --warm-pool,
  // design/0032): 3 x 64 < 200, so no node can hold every function warm and placement decides
  // the warm-hit ratio. The TTL is long, so eviction, not expiry, bounds the warm set. 0 and
  // "1s" give the eleventh session's time-bounded model instead (design/0030).
  int warm_pool = 64;
  std::string idle_ttl = "10m";
  // Not counted: the LRU pools left by the previous configuration are re-shaped by this one
  // (a tail function gets ~0.3 calls/s, so most are called within 15 s; 8 s left a pool
  // scattered by the previous configuration measurably unsettled, docs/benchmarks.md).
  double warmup_s = 15;
  double measure_s = 8;
  int clients = 16;
  double rate = 400;  // requests/s offered in total, the same for every configuration
  bool quick = false;
  std::set<std::string> measures = {"warm", "overhead", "join", "fault", "scale", "rollout"};
  std::vector<std::string> configs;  // the warm measure's configurations; empty: all
  std::string json_path;
};

std::string FunctionName(int i);
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds limit);
// A free TCP port on 127.0.0.1 (bound to 0, then closed; HAProxy binds it right after).
int FreePort();
double Pct(std::vector<float> v, double p);
void Log(const std::string& s);
// Waits until the host's CPUs were busy less than `busy_cpus` over one second (every process
// counts: the last configuration's parked refills and burials too), at most `limit`. Returns
// the seconds waited and, in `*last`, the last second's busy CPUs.
double WaitHostQuiet(double busy_cpus, std::chrono::seconds limit, double* last);

// HAProxy as a child of this process (killed with it: PR_SET_PDEATHSIG), by its PID only.
class HaproxyProcess {
 public:
  ~HaproxyProcess() { Stop(); }
  bool Start(const std::string& config_path, const std::string& log_path);
  void Stop();
  // One command on its admin socket (`stats socket PATH level admin` in the config), e.g.
  // "set server be/a1 state maint"; returns HAProxy's answer ("" means done, for `set`), or
  // "error: ..." when the socket could not be used.
  static std::string Command(const std::string& socket_path, const std::string& command);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// One request's outcome.
struct Rec {
  double sent_s = 0;  // from the load's start
  float latency_ms = 0;
  int status = 0;
  bool cold = false;
  int fn = -1;  // index of the function called (f000 = 0)
  std::string node;
};

// Paced clients, each with one keep-alive connection, each calling a function drawn from
// Zipf(1.0) over kFunctions with its own seeded generator (so every configuration gets the same
// sequence of names per client). Together they offer `rate` calls/s: client c sends its k-th call
// at (k + c / clients) * clients / rate, or at once when it is behind. A fixed rate matters here:
// whether a function is still warm depends on how often its calls reach a node, so a faster
// system under a closed loop would also look warmer. Runs until `total_s` after `start`, or
// until `*done` (when given) is set.
std::vector<Rec> RunZipf(const std::string& host, int port, int clients, double rate,
                         double total_s, unsigned seed, Clock::time_point start,
                         const std::atomic<bool>* done = nullptr);

// Figures of one configuration, summed over its rounds.
struct Result {
  int requests = 0, ok = 0, warm = 0, errors = 0;
  double seconds = 0;
  std::vector<float> lat;
  std::map<std::string, int> per_node;
  std::vector<double> round_warm;  // warm-hit ratio of each round, to show the spread
  // Why the misses were misses. A function's "home" is the node that served most of its calls
  // in the round (warm-up included). spill: cold on another node. overlap: cold at home while
  // another call of the same function was in flight there (a second instance was needed).
  // evicted: cold at home with none in flight (its instance was evicted, or never made).
  int miss_spill = 0, miss_overlap = 0, miss_evicted = 0;
  // By popularity rank (f000 is the most popular): 1-10, 11-50, 51-200.
  static constexpr int kRankBands = 3;
  int ok_by_rank[kRankBands] = {}, miss_by_rank[kRankBands] = {};

  void Add(const std::vector<Rec>& recs, double from_s, double to_s);
  double WarmHit() const { return ok > 0 ? static_cast<double>(warm) / ok : 0; }
  double MaxOverMean() const;
};

class Bench {
 public:
  explicit Bench(Options o) : opt_(std::move(o)) {}

  bool Setup(std::string* error);
  // Restarts the gateway with `balancer`, and waits until it has admitted every node.
  bool StartGateway(const std::string& balancer, std::string* error);

  // Measure "warm": warm-hit ratio, latency and node load per configuration, alternating.
  void Balancing();
  // Measure "overhead": one client, one warm function, through the gateway vs --role all.
  void Overhead(int blocks, int per_block);
  void AfterLull(int rounds);  // part of the overhead measure
  // Measure "join" (churn.cc): a node leaves and joins again under the Zipf load; functions whose
  // calls moved to another node and cold starts in the 10 s after each event.
  void Churn();
  // Measure "fault" (fault.cc): node 1 (n1 and a1 together) killed, blackholed and hung; the
  // time until our gateway and HAProxy (default and tight checks) take it out, and readmit it.
  void Faults();
  // Measure "scale" (scale.cc): throughput with 1, 2 and 3 nodes, of a slot-bound function, then
  // of a CPU-bound one with each node's namespace capped at 0.4 CPU (NodeCaps, scale.cc).
  void Scale();
  // Measure "rollout" (rollout.cc): deploy of a 1 MiB library to its first call on every node.
  void Rollout();

  void WriteJson();

 private:
  bool DeployAll(const std::vector<faas::testing::FaasdProcess*>& targets, std::string* error);
  bool StartHaproxy(std::string* error);
  // For "scale" (scale.cc). Ours with n1..nk running (started inside `caps` when given, outside
  // otherwise) and the rest drained; false when a node did not leave or come back.
  bool ScaleOurNodes(int k, NodeCaps* caps);
  void ScaleHaproxyServers(int k);
  // a1..a3 stopped and started again inside `caps` (or outside), and every HAProxy backend
  // pointed at their new ports; false when they or HAProxy did not come back.
  bool RestartAlls(NodeCaps* caps);
  // One variant's closed-loop points (k = 1..3, ours and HAProxy alternating), printed and stored
  // under json_[key].
  void ScalePoints(const std::string& key, const std::string& title, const std::string& target,
                   int clients, NodeCaps* caps);
  // A node's faasd arguments; off loopback a node needs the cluster's certificates (mutual TLS
  // with the gateway, docs/design/0028-cluster-tls.md).
  std::vector<std::string> NodeArgs(int i) const {
    std::vector<std::string> args = {"--role",       "node",      "--store",
                                     store_,         "--node-id", "n" + std::to_string(i + 1),
                                     "--access-log", "false"};
    for (const std::string& f : certs_.Flags("n" + std::to_string(i + 1))) {
      args.push_back(f);
    }
    args.insert(args.end(), {"--warm-pool", std::to_string(opt_.warm_pool)});
    return args;
  }
  // HAProxy's nodes serve plain HTTP as its backends; their control API (faasctl deploy from
  // this bench) is plaintext off loopback too, which faasd refuses without --insecure-cluster.
  std::vector<std::string> AllArgs(int i) const {
    // The baseline's control API on the bench's own bridge, plaintext as before design/0031.
    return {"--role",
            "all",
            "--node-id",
            "a" + std::to_string(i + 1),
            "--access-log",
            "false",
            "--insecure-cluster",
            "--warm-pool",
            std::to_string(opt_.warm_pool)};
  }
  std::string HaproxyBackend(const std::string& mode) const { return "be_" + mode; }

  Options opt_;
  faas::testing::TempDir tmp_;
  faas::testing::TempDir gw_data_;
  // Destroyed in reverse: HAProxy, then faasd processes, then PostgreSQL, then the network.
  faas::testing::LocalNet net_;
  std::vector<faas::testing::LocalNet::Host> hosts_;
  faas::testing::ClusterCerts certs_;
  faas::testing::PostgresProcess pg_;
  std::string store_;
  std::vector<std::unique_ptr<faas::testing::FaasdProcess>> nodes_;
  std::vector<std::unique_ptr<faas::testing::FaasdProcess>> alls_;
  std::unique_ptr<faas::testing::FaasdProcess> gateway_;
  HaproxyProcess haproxy_;
  std::string haproxy_socket_;
  std::map<std::string, int> haproxy_ports_;
  std::map<std::string, Result> results_;
  std::vector<bool> node_capped_ = std::vector<bool>(kNodes, false);  // n_i started in a cap
  nlohmann::json json_ = nlohmann::json::object();
};

}  // namespace faas::bench
