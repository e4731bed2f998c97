// Cluster balancing against HAProxy (issue #17 item 2; docs/design/0030-cluster-bench.md).
//
// One command brings up, on a local network of namespaces (tests/cluster/local_net.h):
//   - cluster A: PostgreSQL, three `--role node` faasd and one `--role gateway` faasd, restarted
//     with each `--balancer` measured;
//   - cluster B: three `--role all` faasd (each its own SQLite store) in the same three
//     namespaces, and one HAProxy 2.6 on the host in front of them with three frontends:
//     `roundrobin`, `leastconn`, and `balance uri` + `hash-type consistent` +
//     `hash-balance-factor 125` (its bounded-load consistent hash).
// Both get the same 200 functions (one library, 200 names, `--idle-ttl 10m`), every node the same
// warm pool (`faasd --warm-pool 64`: 3 x 64 < 200, design/0032), and the same load:
// paced clients offering the same rate (400 calls/s by default) of /function/fNNN with Zipf(1.0)
// popularity, the same seeded sequence for every configuration. Configurations alternate within
// each round (the order rotates per round) so the shared machine's drift falls on all of them
// alike. Prints one table per measure. Beside the warm-hit and overhead measures here: churn.cc
// (a node leaves and joins), fault.cc (a node killed, blackholed, hung), scale.cc (1 to 3
// nodes), rollout.cc (a 1 MiB deploy); the shared pieces are in common.cc (bench.h).
//
//   build/bench/faas_cluster_bench [--quick] [--measures warm,overhead,join,fault,scale,rollout]
//                                  [--rounds N] [--seconds S] [--clients C] [--rate CALLS_PER_S]
//                                  [--warm-pool K] [--idle-ttl DUR] [--warmup S] [--json FILE]
//                                  [--configs bounded-hash,haproxy-bounded-uri,...]
//
// Root only (namespaces, veths, cgroups); needs PostgreSQL's binaries and haproxy (Debian
// `haproxy`, infra/install-deps.sh --bench). Cleans up what it started, also on failure.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "http_client.h"

namespace faas::bench {

using faas::testing::FaasdProcess;
using faas::testing::HttpConnection;
using faas::testing::HttpResult;
using faas::testing::LocalNet;
using faas::testing::PostgresProcess;
using std::chrono::milliseconds;
using std::chrono::seconds;

bool Bench::Setup(std::string* error) {
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
  if (std::string why = faas::testing::ClusterCerts::Unavailable(); !why.empty()) {
    *error = "certificates: " + why;
    return false;
  }
  if (!net_.Up(error)) {
    return false;
  }
  std::vector<std::string> specs;
  for (int i = 0; i < kNodes + 1; ++i) {
    hosts_.push_back(net_.AddHost(error));
    if (hosts_.back().ip.empty()) {
      return false;
    }
    specs.push_back((i < kNodes ? "n" + std::to_string(i + 1) : std::string("gw")) + ":" +
                    hosts_.back().ip);
  }
  // The cluster's CA and one certificate per host (a node off loopback refuses to start without
  // them): the gateway -> node hop is measured as deployed, over mutual TLS.
  if (!certs_.Make(specs, error)) {
    return false;
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
    if (!n.Start(NodeArgs(i))) {
      *error = "node " + std::to_string(i + 1) + " did not start\n" + n.Logs();
      return false;
    }
    alls_.push_back(std::make_unique<FaasdProcess>());
    FaasdProcess& a = *alls_.back();
    a.set_netns(hosts_[static_cast<std::size_t>(i)].netns_path);
    a.set_bind_host(hosts_[static_cast<std::size_t>(i)].ip);
    if (!a.Start(AllArgs(i))) {
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
      "--role all in " + std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()) +
      " s");
  return StartHaproxy(error);
}

bool Bench::StartGateway(const std::string& balancer, std::string* error) {
  if (gateway_ != nullptr) {
    gateway_->Stop(seconds(10));
  }
  gateway_ = std::make_unique<FaasdProcess>(gw_data_.path());
  gateway_->set_netns(hosts_[kNodes].netns_path);
  gateway_->set_bind_host(hosts_[kNodes].ip);
  gateway_->set_tls_ca(certs_.Ca());
  std::vector<std::string> args = {"--role",     "gateway", "--store",      store_,
                                   "--balancer", balancer,  "--access-log", "false"};
  for (const std::string& f : certs_.Flags("gw")) {
    args.push_back(f);
  }
  if (!gateway_->Start(args)) {
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
bool Bench::DeployAll(const std::vector<FaasdProcess*>& targets, std::string* error) {
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
        auto r = d->Ctl({"deploy", FunctionName(j % kFunctions), lib, "--idle-ttl", opt_.idle_ttl});
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

bool Bench::StartHaproxy(std::string* error) {
  // Each mode: name, balance lines, server check settings. The first three use HAProxy's
  // documented check defaults, made explicit; the last is for the fault measure only: round
  // robin with checks as tight as our gateway's probes (every 250 ms, down after 3 failures).
  const char* modes[][3] = {
      {"haproxy-roundrobin", "balance roundrobin", "check inter 2s fall 3 rise 2"},
      {"haproxy-leastconn", "balance leastconn", "check inter 2s fall 3 rise 2"},
      {"haproxy-bounded-uri", "balance uri\n  hash-type consistent\n  hash-balance-factor 125",
       "check inter 2s fall 3 rise 2"},
      {"haproxy-rr-tight", "balance roundrobin", "check inter 250 fall 3 rise 2"}};
  // The admin socket lets the join/leave measure take a server out of every backend and put it
  // back (`set server ... state maint|ready`), as an operator removes a server from HAProxy.
  haproxy_socket_ = tmp_.path() + "/haproxy.sock";
  std::string cfg =
      "global\n  maxconn 4096\n  log stderr format short local0 notice\n  stats socket " +
      haproxy_socket_ +
      " mode 600 level admin\n"
      "defaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n"
      "  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\n";
  for (auto& m : modes) {
    int port = FreePort();
    haproxy_ports_[m[0]] = port;
    cfg += std::string("frontend fe_") + m[0] + "\n  bind 127.0.0.1:" + std::to_string(port) +
           "\n  default_backend be_" + m[0] + "\nbackend be_" + m[0] + "\n  " + m[1] +
           "\n  option httpchk GET /healthz\n";
    for (int i = 0; i < kNodes; ++i) {
      cfg += "  server a" + std::to_string(i + 1) + " " +
             alls_[static_cast<std::size_t>(i)]->bind_host() + ":" +
             std::to_string(alls_[static_cast<std::size_t>(i)]->http_port()) + " " + m[2] + "\n";
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

void Bench::Balancing() {
  std::vector<std::string> configs = {
      "bounded-hash",       "round-robin",       "least-connections",  "p2c",
      "haproxy-roundrobin", "haproxy-leastconn", "haproxy-bounded-uri"};
  if (!opt_.configs.empty()) {
    configs = opt_.configs;
  }
  // Priming, not counted: right after the deploys every node's pool is empty, and the first
  // configuration of round 1 would pay the cold start of every function while the others start
  // from their predecessor's pools. One warm-up's worth of load on each cluster first.
  {
    std::string error;
    if (StartGateway("round-robin", &error)) {
      RunZipf(gateway_->bind_host(), gateway_->http_port(), opt_.clients, opt_.rate, opt_.warmup_s,
              99, Clock::now());
    }
    RunZipf("127.0.0.1", haproxy_ports_["haproxy-roundrobin"], opt_.clients, opt_.rate,
            opt_.warmup_s, 99, Clock::now());
  }
  for (int round = 0; round < opt_.rounds && !g_stop; ++round) {
    for (std::size_t k = 0; k < configs.size() && !g_stop; ++k) {
      const std::string& c = configs[(k + static_cast<std::size_t>(round)) % configs.size()];
      std::string host = "127.0.0.1";
      int port = 0;
      if (c.rfind("haproxy", 0) == 0) {
        port = haproxy_ports_.at(c);
      } else {
        std::string error;
        if (!StartGateway(c, &error)) {
          Log("skipping " + c + ": " + error.substr(0, 2000));
          continue;
        }
        host = gateway_->bind_host();
        port = gateway_->http_port();
      }
      // The last configuration's aftermath (its nodes refilling parked instances, burying the
      // evicted) must not load this one's: on 2 vCPUs it took a round from 0.935 to 0.846.
      double busy = 0;
      const double waited = WaitHostQuiet(kQuietCpus, std::chrono::seconds(30), &busy);
      Log(c + ": host quiet after " + std::to_string(waited) + " s (" + std::to_string(busy) +
          " CPUs busy)");
      auto recs = RunZipf(host, port, opt_.clients, opt_.rate, opt_.warmup_s + opt_.measure_s,
                          static_cast<unsigned>(round + 1), Clock::now());
      results_[c].Add(recs, opt_.warmup_s, opt_.warmup_s + opt_.measure_s);
      // The warm-hit ratio over time, warm-up included, to show whether the warm-up was long
      // enough for the pools left by the previous configuration to settle.
      std::string settle = c + ": warm-hit per 4 s: ";
      const int bins = static_cast<int>(std::ceil((opt_.warmup_s + opt_.measure_s) / 4));
      for (int bin = 0; bin < bins; ++bin) {
        int n = 0, warm = 0;
        for (const Rec& r : recs) {
          if (r.status == 200 && r.sent_s >= 4.0 * bin && r.sent_s < 4.0 * (bin + 1)) {
            ++n;
            warm += r.cold ? 0 : 1;
          }
        }
        settle += std::to_string(n > 0 ? static_cast<double>(warm) / n : 0).substr(0, 5) + " ";
      }
      Log(settle);
      Log("round " + std::to_string(round + 1) + " " + c + ": warm-hit " +
          std::to_string(results_[c].round_warm.back()));
    }
  }
  std::printf(
      "\n== Zipf(1.0) over %d functions, %.0f calls/s offered by %d paced clients, %d "
      "round(s) of %.0f s (after %.0f s warm-up) per configuration; warm pool %d per node, "
      "idle TTL %s ==\n",
      kFunctions, opt_.rate, opt_.clients, opt_.rounds, opt_.measure_s, opt_.warmup_s,
      opt_.warm_pool, opt_.idle_ttl.c_str());
  json_["balancing_setup"] = {{"warm_pool", opt_.warm_pool}, {"idle_ttl", opt_.idle_ttl},
                              {"rate", opt_.rate},           {"clients", opt_.clients},
                              {"warmup_s", opt_.warmup_s},   {"measure_s", opt_.measure_s}};
  std::printf("%-22s %9s %8s %9s %10s %8s %8s %7s %s\n", "balancer", "req/s", "errors", "warm-hit",
              "misses", "p50 ms", "p99 ms", "max/mn", "warm-hit per round");
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
  // Where the misses came from (Result::Add says how each is classed).
  std::printf("\n%-22s %8s %8s %8s   %s\n", "misses by cause", "spill", "overlap", "evicted",
              "miss ratio by popularity rank: 1-10 / 11-50 / 51-200");
  for (const std::string& c : configs) {
    const Result& r = results_[c];
    std::string bands;
    for (int b = 0; b < Result::kRankBands; ++b) {
      const int n = r.ok_by_rank[b];
      bands += (b > 0 ? " / " : "") +
               std::to_string(n > 0 ? static_cast<double>(r.miss_by_rank[b]) / n : 0).substr(0, 5);
    }
    std::printf("%-22s %8d %8d %8d   %s\n", c.c_str(), r.miss_spill, r.miss_overlap, r.miss_evicted,
                bands.c_str());
    json_["balancing"][c]["misses_by_cause"] = {
        {"spill", r.miss_spill}, {"overlap", r.miss_overlap}, {"evicted", r.miss_evicted}};
  }
}

// Measure 2: one client, one warm function, sequential calls: through the gateway (to a node
// over gRPC) against the same call to a `--role all` faasd (HTTP to the function on the same
// machine), in alternating blocks.
void Bench::Overhead(int blocks, int per_block) {
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
  AfterLull(opt_.quick ? 5 : 15);
}

// The same call after a lull: a burst of 8 concurrent calls, then 1.03 s without a call, then
// one call on a connection opened before the burst. gRPC's callback threads each wait 1 s for
// an event and then nap for 100 ms, and a burst lines their waits up (docs/design/0037).
void Bench::AfterLull(int rounds) {
  constexpr int kBurst = 8;
  constexpr auto kLull = std::chrono::milliseconds(1030);
  std::vector<float> via_gw, direct;
  auto once = [&](const std::string& host, int port, std::vector<float>* out) {
    HttpConnection c(host, port);
    std::vector<std::thread> burst;
    burst.reserve(kBurst);
    for (int i = 0; i < kBurst; ++i) {
      burst.emplace_back([&] { HttpConnection(host, port).Request("GET", "/function/f000"); });
    }
    for (std::thread& t : burst) {
      t.join();
    }
    std::this_thread::sleep_for(kLull);  // the lull is what is measured, not a wait for state
    auto t = Clock::now();
    HttpResult r = c.Request("GET", "/function/f000", "", {}, seconds(30));
    if (r.status == 200) {
      out->push_back(std::chrono::duration<float, std::milli>(Clock::now() - t).count());
    }
  };
  for (int i = 0; i < rounds && !g_stop; ++i) {
    once(gateway_->bind_host(), gateway_->http_port(), &via_gw);
    once(alls_[0]->bind_host(), alls_[0]->http_port(), &direct);
  }
  std::printf("\n== The same call 1.03 s after a burst of %d, %d alternating rounds ==\n", kBurst,
              rounds);
  std::printf("%-44s %8s %8s %8s\n", "path", "n", "p50 ms", "max ms");
  std::printf("%-44s %8zu %8.3f %8.3f\n", "client -> gateway -> node (gRPC) -> instance",
              via_gw.size(), Pct(via_gw, 0.5), Pct(via_gw, 1.0));
  std::printf("%-44s %8zu %8.3f %8.3f\n", "client -> --role all -> instance", direct.size(),
              Pct(direct, 0.5), Pct(direct, 1.0));
  json_["after_lull"] = {{"gateway_p50_ms", Pct(via_gw, 0.5)},
                         {"gateway_max_ms", Pct(via_gw, 1.0)},
                         {"direct_p50_ms", Pct(direct, 0.5)},
                         {"direct_max_ms", Pct(direct, 1.0)},
                         {"n", via_gw.size()}};
}

void Bench::WriteJson() {
  if (!opt_.json_path.empty()) {
    std::ofstream(opt_.json_path) << json_.dump(2) << "\n";
  }
}

}  // namespace faas::bench

namespace {

int Run(int argc, char** argv) {
  faas::bench::Options o;
  const char* usage =
      "usage: %s [--quick] [--measures warm,overhead,join,fault,scale,rollout] [--rounds N] "
      "[--seconds S] "
      "[--clients C] [--rate R] [--warm-pool K] [--idle-ttl DUR] [--warmup S] [--configs A,B] "
      "[--json FILE]\n";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--quick") {
      o.quick = true;
      o.rounds = 1;
      o.warmup_s = 4;
      o.measure_s = 4;
      o.clients = 8;
    } else if (a == "--measures") {
      o.measures.clear();
      std::istringstream in(next());
      for (std::string m; std::getline(in, m, ',');) {
        if (m != "warm" && m != "overhead" && m != "join" && m != "fault" && m != "scale" &&
            m != "rollout") {
          std::fprintf(stderr,
                       "unknown measure '%s' (warm, overhead, join, fault, scale, rollout)\n",
                       m.c_str());
          return 2;
        }
        o.measures.insert(m);
      }
    } else if (a == "--configs") {
      std::istringstream in(next());
      for (std::string c; std::getline(in, c, ',');) {
        o.configs.push_back(c);
      }
    } else if (a == "--rounds") {
      o.rounds = std::atoi(next().c_str());
    } else if (a == "--seconds") {
      o.measure_s = std::atof(next().c_str());
    } else if (a == "--rate") {
      o.rate = std::atof(next().c_str());
    } else if (a == "--clients") {
      o.clients = std::atoi(next().c_str());
    } else if (a == "--warm-pool") {
      o.warm_pool = std::atoi(next().c_str());
    } else if (a == "--idle-ttl") {
      o.idle_ttl = next();
    } else if (a == "--warmup") {
      o.warmup_s = std::atof(next().c_str());
    } else if (a == "--json") {
      o.json_path = next();
    } else {
      std::fprintf(stderr, usage, argv[0]);
      return 2;
    }
  }
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
  if (o.measures.count("warm") != 0) {
    b.Balancing();
  }
  if (o.measures.count("overhead") != 0 && !faas::bench::g_stop) {
    b.Overhead(o.quick ? 2 : 5, o.quick ? 200 : 400);
  }
  if (o.measures.count("join") != 0 && !faas::bench::g_stop) {
    b.Churn();
  }
  if (o.measures.count("fault") != 0 && !faas::bench::g_stop) {
    b.Faults();
  }
  if (o.measures.count("scale") != 0 && !faas::bench::g_stop) {
    b.Scale();
  }
  if (o.measures.count("rollout") != 0 && !faas::bench::g_stop) {
    b.Rollout();
  }
  b.WriteJson();
  return faas::bench::g_stop ? 1 : 0;
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
