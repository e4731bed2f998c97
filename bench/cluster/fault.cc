// Measure "fault": how long until a failed node is out of routing, and back in after it
// recovers (issue #17 item 2; docs/design/0030-cluster-bench.md, "Faults").
//
// n1 (behind our gateway) and a1 (behind HAProxy) share node 1's namespace, so one fault hits
// both at the same instant: SIGKILL of both processes (recovery: both started again), the host
// side of the namespace's veth down (a blackhole; recovery: up) and SIGSTOP of both (recovery:
// SIGCONT). The bench polls the logs every 5 ms for the verdicts: our gateway's `node.down
// node=n1` / `node.up node=n1`, HAProxy's `Server be_X/a1 is DOWN` / `is UP` for its default
// checks (`inter 2s fall 3 rise 2`, backend haproxy-roundrobin) and for checks as tight as ours
// (`inter 250 fall 3 rise 2`, backend haproxy-rr-tight). No load runs: this is what the health
// checks alone see. Under load a refused call takes our node out at once (the fault tests,
// design/0025); HAProxy without `observe` waits for its checks either way.
#include <signal.h>

#include <cstdio>
#include <thread>

#include "bench.h"

namespace faas::bench {

using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr int kFaultNode = 0;  // n1 / a1
constexpr double kGiveUpS = 20;

int Occurrences(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

// One verdict to wait for: a line in a log, counted before the event.
struct Watch {
  std::string who;  // "ours", "haproxy-default", "haproxy-tight"
  std::function<std::string()> log;
  std::string needle;
  int before = 0;
  Clock::time_point from;  // the event it is timed from
  double at_s = -1;        // seconds after `from` it appeared; -1 = not within kGiveUpS
};

// Polls every 5 ms until every watch has seen a new line or kGiveUpS passed since its event.
void Await(std::vector<Watch>* watches) {
  Clock::time_point last{};
  for (const Watch& w : *watches) {
    last = std::max(last, w.from);
  }
  const auto deadline =
      last + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(kGiveUpS));
  while (Clock::now() < deadline && !g_stop) {
    bool all = true;
    for (Watch& w : *watches) {
      if (w.at_s < 0 && Occurrences(w.log(), w.needle) > w.before) {
        w.at_s = std::chrono::duration<double>(Clock::now() - w.from).count();
      }
      all = all && w.at_s >= 0;
    }
    if (all) {
      return;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

void Bench::Faults() {
  std::string error;
  if (!StartGateway("bounded-hash", &error)) {
    Log("fault skipped: " + error.substr(0, 2000));
    return;
  }
  const std::string hap_log = tmp_.path() + "/haproxy.log";
  const std::string n = "n" + std::to_string(kFaultNode + 1);
  const std::string a = "a" + std::to_string(kFaultNode + 1);
  auto watches = [&](const std::string& ours_needle, const std::string& hap_state) {
    std::vector<Watch> w = {
        {"ours", [&] { return gateway_->Logs(); }, ours_needle + n, 0, {}, -1},
        {"haproxy-default",
         [&] { return faas::testing::ReadFileOrEmpty(hap_log); },
         "Server " + HaproxyBackend("haproxy-roundrobin") + "/" + a + " is " + hap_state,
         0,
         {},
         -1},
        {"haproxy-tight",
         [&] { return faas::testing::ReadFileOrEmpty(hap_log); },
         "Server " + HaproxyBackend("haproxy-rr-tight") + "/" + a + " is " + hap_state,
         0,
         {},
         -1}};
    for (Watch& x : w) {
      x.before = Occurrences(x.log(), x.needle);
    }
    return w;
  };
  std::printf(
      "\n== Faults: node 1 (n1 behind our gateway, a1 behind HAProxy, same namespace), no load; "
      "ms from the fault to out of routing, and from the recovery to back in ==\n");
  std::printf("%-10s %5s %12s %12s %12s %12s %12s %12s\n", "fault", "round", "ours out",
              "hap-def out", "hap-250 out", "ours back", "hap-def back", "hap-250 back");
  const char* faults[] = {"sigkill", "blackhole", "sigstop"};
  for (int round = 0; round < opt_.rounds && !g_stop; ++round) {
    for (const char* fault : faults) {
      const std::string f = fault;
      auto& node = *nodes_[kFaultNode];
      auto& all = *alls_[kFaultNode];
      // The fault.
      std::vector<Watch> down = watches("node.down node=", "DOWN");
      const auto t_fault = Clock::now();
      for (Watch& w : down) {
        w.from = t_fault;
      }
      if (f == "sigkill") {
        ::kill(node.pid(), SIGKILL);
        ::kill(all.pid(), SIGKILL);
      } else if (f == "blackhole") {
        net_.SetLink(hosts_[kFaultNode], false);
      } else {
        ::kill(node.pid(), SIGSTOP);
        ::kill(all.pid(), SIGSTOP);
      }
      Await(&down);
      // The recovery. After SIGKILL both start again (their data dirs kept), and each side's
      // verdict is timed from its own process being ready; a1 comes back on a new port (faasd
      // binds port 0), which HAProxy learns through its admin socket, as an orchestrator would
      // tell it, before its clock starts.
      std::vector<Watch> up = watches("node.up node=", "UP");
      std::string failure;
      if (f == "sigkill") {
        node.Kill9();  // reaps it
        all.Kill9();
        if (!all.Start(AllArgs(kFaultNode))) {
          failure = "a1 did not start again";
        }
        for (const char* be : {"haproxy-roundrobin", "haproxy-leastconn", "haproxy-bounded-uri",
                               "haproxy-rr-tight"}) {
          HaproxyProcess::Command(haproxy_socket_, "set server " + HaproxyBackend(be) + "/" + a +
                                                       " addr " + all.bind_host() + " port " +
                                                       std::to_string(all.http_port()));
        }
        up[1].from = up[2].from = Clock::now();
        if (!node.Start(NodeArgs(kFaultNode))) {
          failure = "n1 did not start again";
        }
        up[0].from = Clock::now();
      } else if (f == "blackhole") {
        up[0].from = up[1].from = up[2].from = Clock::now();
        net_.SetLink(hosts_[kFaultNode], true);
      } else {
        up[0].from = up[1].from = up[2].from = Clock::now();
        ::kill(node.pid(), SIGCONT);
        ::kill(all.pid(), SIGCONT);
      }
      if (!failure.empty()) {
        failure.insert(0, "fault " + f + ": ");
        Log(failure);
        return;
      }
      Await(&up);
      auto ms = [](const Watch& w) { return w.at_s < 0 ? -1.0 : w.at_s * 1000; };
      std::printf("%-10s %5d %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f\n", fault, round + 1,
                  ms(down[0]), ms(down[1]), ms(down[2]), ms(up[0]), ms(up[1]), ms(up[2]));
      std::fflush(stdout);
      nlohmann::json row = {{"round", round + 1}};
      for (std::size_t i = 0; i < down.size(); ++i) {
        row[down[i].who + "_out_ms"] = ms(down[i]);
        row[up[i].who + "_back_ms"] = ms(up[i]);
      }
      json_["fault"][f].push_back(row);
      // Settle: every verdict back to up before the next fault (give up after kGiveUpS).
      for (const Watch& w : up) {
        if (w.at_s < 0) {
          Log("fault " + f + ": " + w.who + " did not readmit node 1 within " +
              std::to_string(kGiveUpS) + " s");
        }
      }
    }
  }
  std::printf(
      "(hap-def: HAProxy's default checks, inter 2s fall 3 rise 2; hap-250: inter 250 fall 3 rise "
      "2. After SIGKILL \"back\" counts from both processes ready again. -1 = not within %.0f "
      "s)\n",
      kGiveUpS);
}

}  // namespace faas::bench
