// Measure "rollout": time from deploying a 1 MiB library to its first successful call on every
// node (issue #17 item 2; docs/design/0030, "Rollout").
//
// The library is libhello.so with 1 MiB of random bytes appended (the dynamic loader reads
// only what the ELF headers name, so it loads as hello; the bytes differ each round, so no
// content-addressed cache already holds it). Ours: one `faasctl deploy` through the gateway
// (the store holds the library; the gateway has the probe node and then every other node that is
// up prepare the version before the deploy answers, docs/design/0030 "Rollout"), then
// sequential calls through a `round-robin` gateway until each of n1..n3 has answered 200 once.
// HAProxy's cluster has no shared store: the same library is deployed to a1, a2 and a3 at once
// (three faasctl in parallel), then the same calls through its `roundrobin` frontend.
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "bench.h"
#include "http_client.h"

namespace faas::bench {

using faas::testing::HttpConnection;
using faas::testing::HttpResult;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr std::size_t kPadBytes = 1 << 20;

double Ms(Clock::time_point from) {
  return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
}

// Calls `path` sequentially until every node has answered 200 once (30 s at most); the ms from
// `t0` at which the last node first answered, or -1.
double UntilEveryNode(const std::string& host, int port, const std::string& path,
                      Clock::time_point t0) {
  std::set<std::string> seen;
  std::unique_ptr<HttpConnection> conn;
  const auto deadline = t0 + seconds(30);
  while (Clock::now() < deadline && !g_stop) {
    if (conn == nullptr) {
      conn = std::make_unique<HttpConnection>(host, port);
      if (!conn->Connected()) {
        conn.reset();
        std::this_thread::sleep_for(milliseconds(5));
        continue;
      }
    }
    HttpResult r = conn->Request("GET", path, "", {}, seconds(30));
    if (r.status == 200) {
      seen.insert(r.Header("x-faas-node"));
      if (static_cast<int>(seen.size()) == kNodes) {
        return Ms(t0);
      }
    } else {
      std::this_thread::sleep_for(milliseconds(2));  // not there yet (404): poll, not spin
    }
    if (r.status == 0 || r.Header("connection") == "close") {
      conn.reset();
    }
  }
  return -1;
}

}  // namespace

void Bench::Rollout() {
  std::string error;
  if (!StartGateway("round-robin", &error)) {
    Log("rollout skipped: " + error.substr(0, 2000));
    return;
  }
  const std::string hello = faas::testing::ReadFileOrEmpty(faas::testing::FunctionLib("hello"));
  std::mt19937_64 rng(std::random_device{}());
  std::printf("\n== Rollout: deploy of a %.1f MiB library to its first 200 on each of 3 nodes ==\n",
              static_cast<double>(hello.size() + kPadBytes) / (1 << 20));
  std::printf("%-20s %5s %12s %14s %18s\n", "cluster", "round", "deploy ms", "every node ms",
              "after deploy ms");
  const int rounds = std::max(opt_.rounds, opt_.quick ? 2 : 3);
  for (int round = 0; round < rounds && !g_stop; ++round) {
    for (int side = 0; side < 2 && !g_stop; ++side) {
      const bool ours = (side + round) % 2 == 0;
      std::string lib = hello;
      lib.reserve(hello.size() + kPadBytes);
      for (std::size_t i = 0; i < kPadBytes; i += 8) {
        const std::uint64_t x = rng();
        lib.append(reinterpret_cast<const char*>(&x), 8);
      }
      const std::string name = std::string("roll") + (ours ? "a" : "b") + std::to_string(round);
      const std::string path = tmp_.path() + "/" + name + ".so";
      std::ofstream(path, std::ios::binary) << lib;
      // The target is for a quiet machine: the set-up's deploys and the last round's parks and
      // burials must not load this round (as for the warm measure).
      double busy = 0;
      const double waited = WaitHostQuiet(kQuietCpus, std::chrono::seconds(30), &busy);
      Log("rollout " + name + ": host quiet after " + std::to_string(waited) + " s (" +
          std::to_string(busy) + " CPUs busy)");
      double deploy_ms = 0, all_ms = -1, after_ms = -1;
      const auto t0 = Clock::now();
      bool deployed = true;
      if (ours) {
        auto r = gateway_->Ctl({"deploy", name, path});
        deployed = r.exit_code == 0;
        if (!deployed) {
          Log("rollout: deploy failed: " + r.out + r.err);
        }
        deploy_ms = Ms(t0);
        if (deployed) {
          all_ms =
              UntilEveryNode(gateway_->bind_host(), gateway_->http_port(), "/function/" + name, t0);
        }
        // The gateway's and each node's own account of the deploy's phases (design/0036).
        auto phases = [&](const std::string& log, const std::string& event) {
          std::string needle = event;
          needle.append(" fn=").append(name).append(" ");
          const std::size_t at = log.rfind(needle);
          if (at != std::string::npos) {
            const std::size_t end = log.find('\n', at);
            Log(log.substr(at, end == std::string::npos ? std::string::npos : end - at));
          }
        };
        phases(gateway_->Logs(), "function.deployed");
        for (auto& n : nodes_) {
          phases(n->Logs(), "node.prepared");
          phases(n->Logs(), "zygote.started");
        }
      } else {
        std::vector<std::thread> ts;
        std::atomic<bool> ok{true};
        for (auto& a : alls_) {
          ts.emplace_back([&, d = a.get()] {
            if (d->Ctl({"deploy", name, path}).exit_code != 0) {
              ok = false;
            }
          });
        }
        for (auto& t : ts) {
          t.join();
        }
        deployed = ok;
        deploy_ms = Ms(t0);
        if (deployed) {
          all_ms = UntilEveryNode("127.0.0.1", haproxy_ports_["haproxy-roundrobin"],
                                  "/function/" + name, t0);
        }
      }
      if (all_ms >= 0) {
        after_ms = all_ms - deploy_ms;  // the calls start when the deploy has returned
      }
      const std::string c = ours ? "ours (round-robin)" : "haproxy-roundrobin";
      std::printf("%-20s %5d %12.1f %14.1f %18.1f\n", c.c_str(), round + 1, deploy_ms, all_ms,
                  after_ms);
      std::fflush(stdout);
      json_["rollout"][c].push_back({{"round", round + 1},
                                     {"deploy_ms", deploy_ms},
                                     {"every_node_ms", all_ms},
                                     {"after_deploy_ms", after_ms}});
    }
  }
  std::printf(
      "(deploy ms: until faasctl deploy returned (HAProxy's side: all three); every node ms: "
      "until the last node's first 200, from the start of the deploy; after deploy ms: the same "
      "from the deploy's return (its calls start then); -1 = not within 30 s)\n");
}

}  // namespace faas::bench
