// Cluster balancing against HAProxy (issue #17 item 2; docs/design/0030-cluster-bench.md).
//
// One command brings up, on a local network of namespaces (tests/cluster/local_net.h):
//   - cluster A: PostgreSQL, three `--role node` faasd and one `--role gateway` faasd, restarted
//     with each `--balancer` measured;
//   - cluster B: three `--role all` faasd (each its own SQLite store) in the same three
//     namespaces, and one HAProxy 2.6 on the host in front of them with three frontends:
//     `roundrobin`, `leastconn`, and `balance uri` + `hash-type consistent` +
//     `hash-balance-factor 125` (its bounded-load consistent hash).
// Both get the same 200 functions (one library, 200 names, `--idle-ttl 1s`) and the same load:
// paced clients offering the same rate (400 calls/s by default) of /function/fNNN with Zipf(1.0)
// popularity, the same seeded sequence for every configuration. Configurations alternate within
// each round (the order rotates per round) so the shared machine's drift falls on all of them
// alike. Prints one table per measure.
//
//   build/bench/faas_cluster_bench [--quick] [--rounds N] [--seconds S] [--clients C]
//                                  [--rate CALLS_PER_S] [--json FILE]
//
// Root only (namespaces, veths, cgroups); needs PostgreSQL's binaries and haproxy (Debian
// `haproxy`, infra/install-deps.sh --bench). Cleans up what it started, also on failure.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "faasd_process.h"
#include "http_client.h"
#include "local_net.h"
#include "postgres_process.h"
#include "subprocess.h"

namespace faas::bench {
namespace {

using faas::testing::FaasdProcess;
using faas::testing::HttpConnection;
using faas::testing::HttpResult;
using faas::testing::LocalNet;
using faas::testing::PostgresProcess;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kNodes = 3;
constexpr int kFunctions = 200;

// Set by SIGINT/SIGTERM: the load stops and main returns, so every destructor cleans up (the
// faasd processes and namespace holders also die with this process: PR_SET_PDEATHSIG).
std::atomic<bool> g_stop{false};

struct Options {
  int rounds = 2;
  double warmup_s = 3;  // > 1 s idle-ttl: the warm set settles to this configuration's
  double measure_s = 8;
  int clients = 16;
  double rate = 400;  // requests/s offered in total, the same for every configuration
  std::string json_path;
};

std::string FunctionName(int i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "f%03d", i);
  return buf;
}

bool PollUntil(const std::function<bool()>& done, milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

// A free TCP port on 127.0.0.1 (bound to 0, then closed; HAProxy binds it right after).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// HAProxy as a child of this process (killed with it: PR_SET_PDEATHSIG), by its PID only.
class HaproxyProcess {
 public:
  ~HaproxyProcess() { Stop(); }
  bool Start(const std::string& config_path, const std::string& log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* log = std::fopen(log_path.c_str(), "we");
      if (log != nullptr) {
        ::dup2(::fileno(log), 1);
        ::dup2(::fileno(log), 2);
      }
      ::execlp("haproxy", "haproxy", "-db", "-f", config_path.c_str(), nullptr);
      ::_exit(127);
    }
    return pid_ > 0;
  }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

// One request's outcome.
struct Rec {
  double sent_s = 0;
  float latency_ms = 0;
  int status = 0;
  bool cold = false;
  std::string node;
};

// Paced clients, each with one keep-alive connection, each calling a function drawn from
// Zipf(1.0) over kFunctions with its own seeded generator (so every configuration gets the same
// sequence of names per client). Together they offer `rate` calls/s: client c sends its k-th call
// at (k + c / clients) * clients / rate, or at once when it is behind. A fixed rate matters here:
// whether a function is still warm depends on how often its calls reach a node, so a faster
// system under a closed loop would also look warmer.
std::vector<Rec> RunZipf(const std::string& host, int port, int clients, double rate,
                         double total_s, unsigned seed) {
  std::vector<double> w(kFunctions);
  for (int k = 0; k < kFunctions; ++k) {
    w[static_cast<std::size_t>(k)] = 1.0 / (k + 1);
  }
  std::vector<std::string> targets;
  targets.reserve(kFunctions);
  for (int k = 0; k < kFunctions; ++k) {
    targets.push_back("/function/" + FunctionName(k));
  }
  const auto start = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::mutex mu;
  std::vector<Rec> all;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(seed * 1000 + static_cast<unsigned>(c));
      std::discrete_distribution<int> zipf(w.begin(), w.end());
      std::unique_ptr<HttpConnection> conn;
      std::vector<Rec> mine;
      const double interval = clients / rate;
      for (int k = 0; now() < total_s && !g_stop; ++k) {
        const double due = (k + static_cast<double>(c) / clients) * interval;
        if (due > now()) {
          std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(due)));
        }
        if (conn == nullptr) {
          conn = std::make_unique<HttpConnection>(host, port);
          if (!conn->Connected()) {
            conn.reset();
            mine.push_back(Rec{now(), 0, 0, false, ""});  // refused: an error, not a call
            continue;
          }
        }
        Rec r;
        r.sent_s = now();
        HttpResult res =
            conn->Request("GET", targets[static_cast<std::size_t>(zipf(rng))], "", {}, seconds(30));
        r.latency_ms = static_cast<float>((now() - r.sent_s) * 1000);
        r.status = res.status;
        r.cold = res.Header("x-faas-cold-start") == "true";
        r.node = res.Header("x-faas-node");
        if (res.status == 0 || res.Header("connection") == "close") {
          conn.reset();
        }
        mine.push_back(std::move(r));
      }
      std::lock_guard lock(mu);
      all.insert(all.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return all;
}

double Pct(std::vector<float> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// Figures of one configuration, summed over its rounds.
struct Result {
  int requests = 0, ok = 0, warm = 0, errors = 0;
  double seconds = 0;
  std::vector<float> lat;
  std::map<std::string, int> per_node;
  std::vector<double> round_warm;  // warm-hit ratio of each round, to show the spread

  void Add(const std::vector<Rec>& recs, double from_s, double to_s) {
    int ok_r = 0, warm_r = 0;
    for (const Rec& r : recs) {
      if (r.sent_s < from_s || r.sent_s >= to_s) {
        continue;
      }
      ++requests;
      if (r.status != 200) {
        ++errors;
        continue;
      }
      ++ok_r;
      warm_r += r.cold ? 0 : 1;
      lat.push_back(r.latency_ms);
      ++per_node[r.node];
    }
    ok += ok_r;
    warm += warm_r;
    seconds += to_s - from_s;
    round_warm.push_back(ok_r > 0 ? static_cast<double>(warm_r) / ok_r : 0);
  }
  double WarmHit() const { return ok > 0 ? static_cast<double>(warm) / ok : 0; }
  double MaxOverMean() const {
    if (per_node.empty()) {
      return 0;
    }
    int mx = 0;
    for (auto& [n, c] : per_node) {
      mx = std::max(mx, c);
    }
    // The mean over the nodes of the cluster, also those that got nothing.
    return mx / (static_cast<double>(ok) / kNodes);
  }
};

class Bench {
 public:
  explicit Bench(Options o) : opt_(std::move(o)) {}

  bool Setup(std::string* error) {
    if (std::string why = LocalNet::Unavailable(); !why.empty()) {
      *error = "local network: " + why;
      return false;
    }
    if (std::string why = PostgresProcess::Unavailable(); !why.empty()) {
      *error = "postgres: " + why;
      return false;
    }
    if (faas::testing::RunCommand({"/bin/sh", "-c", "command -v haproxy"}).exit_code != 0) {
      *error = "haproxy is not installed (apt-get install haproxy; infra/install-deps.sh --bench)";
      return false;
    }
    if (!net_.Up(error)) {
      return false;
    }
    for (int i = 0; i < kNodes + 1; ++i) {
      hosts_.push_back(net_.AddHost(error));
      if (hosts_.back().ip.empty()) {
        return false;
      }
    }
    if (!pg_.Start(error) || !pg_.CreateDatabase("faas", error)) {
      return false;
    }
    store_ = pg_.Url("faas");
    Log("starting cluster A (3 nodes + gateway) and cluster B (3 --role all)");
    for (int i = 0; i < kNodes; ++i) {
      nodes_.push_back(std::make_unique<FaasdProcess>());
      FaasdProcess& n = *nodes_.back();
      n.set_netns(hosts_[static_cast<std::size_t>(i)].netns_path);
      n.set_bind_host(hosts_[static_cast<std::size_t>(i)].ip);
      if (!n.Start({"--role", "node", "--store", store_, "--node-id", "n" + std::to_string(i + 1),
                    "--access-log", "false"})) {
        *error = "node " + std::to_string(i + 1) + " did not start\n" + n.Logs();
        return false;
      }
      alls_.push_back(std::make_unique<FaasdProcess>());
      FaasdProcess& a = *alls_.back();
      a.set_netns(hosts_[static_cast<std::size_t>(i)].netns_path);
      a.set_bind_host(hosts_[static_cast<std::size_t>(i)].ip);
      if (!a.Start({"--role", "all", "--node-id", "a" + std::to_string(i + 1), "--access-log",
                    "false"})) {
        *error = "role all " + std::to_string(i + 1) + " did not start\n" + a.Logs();
        return false;
      }
    }
    if (!StartGateway("bounded-hash", error)) {
      return false;
    }
    const auto t0 = Clock::now();
    std::vector<FaasdProcess*> targets = {gateway_.get()};
    for (auto& a : alls_) {
      targets.push_back(a.get());
    }
    if (!DeployAll(targets, error)) {
      return false;
    }
    Log("deployed " + std::to_string(kFunctions) + " functions to the gateway and each of 3 " +
        "--role all in " +
        std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()) + " s");
    return StartHaproxy(error);
  }

  // Restarts the gateway with `balancer`, and waits until it has admitted every node.
  bool StartGateway(const std::string& balancer, std::string* error) {
    if (gateway_ != nullptr) {
      gateway_->Stop(seconds(10));
    }
    gateway_ = std::make_unique<FaasdProcess>(gw_data_.path());
    gateway_->set_netns(hosts_[kNodes].netns_path);
    gateway_->set_bind_host(hosts_[kNodes].ip);
    if (!gateway_->Start({"--role", "gateway", "--store", store_, "--balancer", balancer,
                          "--access-log", "false"})) {
      *error = "gateway (" + balancer + ") did not start\n" + gateway_->Logs();
      return false;
    }
    for (int i = 0; i < kNodes; ++i) {
      const std::string up = "node.up node=n" + std::to_string(i + 1);
      if (!PollUntil([&] { return gateway_->Logs().find(up) != std::string::npos; }, seconds(30))) {
        *error = "the gateway never admitted n" + std::to_string(i + 1) + "\n" + gateway_->Logs();
        return false;
      }
    }
    return true;
  }

  // 200 deploys of the same library to each target, 4 faasctl at a time.
  bool DeployAll(const std::vector<FaasdProcess*>& targets, std::string* error) {
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    const std::string lib = faas::testing::FunctionLib("hello");
    std::vector<std::thread> threads;
    threads.reserve(4);
    const int jobs = kFunctions * static_cast<int>(targets.size());
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int j = next++; j < jobs && !failed; j = next++) {
          FaasdProcess* d = targets[static_cast<std::size_t>(j / kFunctions)];
          auto r = d->Ctl({"deploy", FunctionName(j % kFunctions), lib, "--idle-ttl", "1s"});
          if (r.exit_code != 0) {
            std::lock_guard lock(mu);
            failed = true;
            *error = "deploy " + FunctionName(j % kFunctions) + ": " + r.out + r.err;
          }
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    return !failed;
  }

  bool StartHaproxy(std::string* error) {
    const char* modes[][2] = {
        {"haproxy-roundrobin", "balance roundrobin"},
        {"haproxy-leastconn", "balance leastconn"},
        {"haproxy-bounded-uri", "balance uri\n  hash-type consistent\n  hash-balance-factor 125"}};
    std::string cfg =
        "global\n  maxconn 4096\n  log stderr format short local0 notice\n"
        "defaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n"
        "  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\n";
    for (auto& m : modes) {
      int port = FreePort();
      haproxy_ports_[m[0]] = port;
      cfg += std::string("frontend fe_") + m[0] + "\n  bind 127.0.0.1:" + std::to_string(port) +
             "\n  default_backend be_" + m[0] + "\nbackend be_" + m[0] + "\n  " + m[1] +
             "\n  option httpchk GET /healthz\n";
      for (int i = 0; i < kNodes; ++i) {
        // HAProxy's documented defaults made explicit: the baseline's failure detection.
        cfg += "  server a" + std::to_string(i + 1) + " " +
               alls_[static_cast<std::size_t>(i)]->bind_host() + ":" +
               std::to_string(alls_[static_cast<std::size_t>(i)]->http_port()) +
               " check inter 2s fall 3 rise 2\n";
      }
    }
    const std::string path = tmp_.path() + "/haproxy.cfg";
    faas::testing::WriteFileOrDie(path, cfg);
    if (!haproxy_.Start(path, tmp_.path() + "/haproxy.log")) {
      *error = "fork haproxy failed";
      return false;
    }
    for (auto& [mode, port] : haproxy_ports_) {
      int p = port;
      HttpResult r;
      if (!PollUntil(
              [&] {
                r = faas::testing::HttpRequest(p, "GET", "/function/f000");
                return r.status == 200;
              },
              seconds(20))) {
        *error = mode + " never answered 200 (" + std::to_string(r.status) + ")\n" +
                 faas::testing::ReadFileOrEmpty(tmp_.path() + "/haproxy.log");
        return false;
      }
    }
    return true;
  }

  // Measure 1: warm-hit ratio, latency and node load per configuration, alternating.
  void Balancing() {
    std::vector<std::string> configs = {
        "bounded-hash",       "round-robin",       "least-connections",  "p2c",
        "haproxy-roundrobin", "haproxy-leastconn", "haproxy-bounded-uri"};
    for (int round = 0; round < opt_.rounds && !g_stop; ++round) {
      for (std::size_t k = 0; k < configs.size() && !g_stop; ++k) {
        const std::string& c = configs[(k + static_cast<std::size_t>(round)) % configs.size()];
        std::string host = "127.0.0.1";
        int port = 0;
        if (c.rfind("haproxy", 0) == 0) {
          port = haproxy_ports_[c];
        } else {
          std::string error;
          if (!StartGateway(c, &error)) {
            Log("skipping " + c + ": " + error.substr(0, 2000));
            continue;
          }
          host = gateway_->bind_host();
          port = gateway_->http_port();
        }
        auto recs = RunZipf(host, port, opt_.clients, opt_.rate, opt_.warmup_s + opt_.measure_s,
                            static_cast<unsigned>(round + 1));
        results_[c].Add(recs, opt_.warmup_s, opt_.warmup_s + opt_.measure_s);
        Log("round " + std::to_string(round + 1) + " " + c + ": warm-hit " +
            std::to_string(results_[c].round_warm.back()));
      }
    }
    std::printf(
        "\n== Zipf(1.0) over %d functions, %.0f calls/s offered by %d paced clients, %d "
        "round(s) of %.0f s (after %.0f s warm-up) per configuration ==\n",
        kFunctions, opt_.rate, opt_.clients, opt_.rounds, opt_.measure_s, opt_.warmup_s);
    std::printf("%-22s %9s %8s %9s %10s %8s %8s %7s %s\n", "balancer", "req/s", "errors",
                "warm-hit", "misses", "p50 ms", "p99 ms", "max/mn", "warm-hit per round");
    for (const std::string& c : configs) {
      const Result& r = results_[c];
      std::string per_round;
      for (double w : r.round_warm) {
        per_round += std::to_string(w).substr(0, 6) + " ";
      }
      std::printf("%-22s %9.0f %8d %9.4f %10d %8.2f %8.2f %7.2f %s\n", c.c_str(),
                  r.seconds > 0 ? r.requests / r.seconds : 0, r.errors, r.WarmHit(), r.ok - r.warm,
                  Pct(r.lat, 0.5), Pct(r.lat, 0.99), r.MaxOverMean(), per_round.c_str());
      json_["balancing"][c] = {{"requests", r.requests},     {"ok", r.ok},
                               {"errors", r.errors},         {"warm_hit", r.WarmHit()},
                               {"misses", r.ok - r.warm},    {"p50_ms", Pct(r.lat, 0.5)},
                               {"p99_ms", Pct(r.lat, 0.99)}, {"max_over_mean", r.MaxOverMean()},
                               {"per_node", r.per_node},     {"warm_hit_per_round", r.round_warm}};
    }
  }

  // Measure 2: one client, one warm function, sequential calls: through the gateway (to a node
  // over gRPC) against the same call to a `--role all` faasd (HTTP to the function on the same
  // machine), in alternating blocks.
  void Overhead(int blocks, int per_block) {
    std::string error;
    if (!StartGateway("bounded-hash", &error)) {
      Log("overhead skipped: " + error.substr(0, 2000));
      return;
    }
    std::vector<float> via_gw, direct;
    auto run = [&](const std::string& host, int port, std::vector<float>* out) {
      HttpConnection c(host, port);
      for (int i = 0; i < per_block + 20; ++i) {
        auto t = Clock::now();
        HttpResult r = c.Request("GET", "/function/f000", "", {}, seconds(30));
        float ms = std::chrono::duration<float, std::milli>(Clock::now() - t).count();
        if (i >= 20 && r.status == 200) {  // the first 20 of a block warm the connection up
          out->push_back(ms);
        }
      }
    };
    for (int b = 0; b < blocks; ++b) {
      run(gateway_->bind_host(), gateway_->http_port(), &via_gw);
      run(alls_[0]->bind_host(), alls_[0]->http_port(), &direct);
    }
    std::printf(
        "\n== Gateway overhead: hello (f000, warm), 1 client, %d alternating blocks of %d "
        "==\n",
        blocks, per_block);
    std::printf("%-44s %8s %8s %8s\n", "path", "n", "p50 ms", "p99 ms");
    std::printf("%-44s %8zu %8.3f %8.3f\n", "client -> gateway -> node (gRPC) -> instance",
                via_gw.size(), Pct(via_gw, 0.5), Pct(via_gw, 0.99));
    std::printf("%-44s %8zu %8.3f %8.3f\n", "client -> --role all -> instance", direct.size(),
                Pct(direct, 0.5), Pct(direct, 0.99));
    std::printf("%-44s %8s %8.3f %8.3f\n", "overhead (difference)", "",
                Pct(via_gw, 0.5) - Pct(direct, 0.5), Pct(via_gw, 0.99) - Pct(direct, 0.99));
    json_["overhead"] = {{"gateway_p50_ms", Pct(via_gw, 0.5)},
                         {"gateway_p99_ms", Pct(via_gw, 0.99)},
                         {"direct_p50_ms", Pct(direct, 0.5)},
                         {"direct_p99_ms", Pct(direct, 0.99)},
                         {"n", via_gw.size()}};
  }

  void WriteJson() {
    if (!opt_.json_path.empty()) {
      std::ofstream(opt_.json_path) << json_.dump(2) << "\n";
    }
  }

  static void Log(const std::string& s) { std::fprintf(stderr, "[cluster-bench] %s\n", s.c_str()); }

 private:
  Options opt_;
  faas::testing::TempDir tmp_;
  faas::testing::TempDir gw_data_;
  // Destroyed in reverse: HAProxy, then faasd processes, then PostgreSQL, then the network.
  LocalNet net_;
  std::vector<LocalNet::Host> hosts_;
  PostgresProcess pg_;
  std::string store_;
  std::vector<std::unique_ptr<FaasdProcess>> nodes_;
  std::vector<std::unique_ptr<FaasdProcess>> alls_;
  std::unique_ptr<FaasdProcess> gateway_;
  HaproxyProcess haproxy_;
  std::map<std::string, int> haproxy_ports_;
  std::map<std::string, Result> results_;
  nlohmann::json json_ = nlohmann::json::object();
};

}  // namespace
}  // namespace faas::bench

namespace {

int Run(int argc, char** argv) {
  faas::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--quick") {
      o.rounds = 1;
      o.warmup_s = 2;
      o.measure_s = 4;
      o.clients = 8;
    } else if (a == "--rounds") {
      o.rounds = std::atoi(next().c_str());
    } else if (a == "--seconds") {
      o.measure_s = std::atof(next().c_str());
    } else if (a == "--rate") {
      o.rate = std::atof(next().c_str());
    } else if (a == "--clients") {
      o.clients = std::atoi(next().c_str());
    } else if (a == "--json") {
      o.json_path = next();
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--rounds N] [--seconds S] [--clients C] [--rate R] "
                   "[--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  const bool quick = o.rounds == 1 && o.measure_s == 4;
  struct sigaction sa {};
  sa.sa_handler = [](int) { faas::bench::g_stop = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  faas::bench::Bench b(o);
  std::string error;
  if (!b.Setup(&error)) {
    std::fprintf(stderr, "cluster bench: setup failed: %s\n", error.c_str());
    return 1;
  }
  b.Balancing();
  if (faas::bench::g_stop) {
    return 1;
  }
  b.Overhead(quick ? 2 : 5, quick ? 200 : 400);
  b.WriteJson();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster bench: %s\n", e.what());
    return 1;
  }
}
