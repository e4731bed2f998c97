// Measure "join": a node leaves and joins again under the Zipf load (issue #17 item 2; design
// docs/design/0030-cluster-bench.md, "Join and leave").
//
// Ours: `faasctl node drain n3` through the gateway (n3 finishes what it holds and exits 0),
// then, 12 s later, n3 started again on its own data dir (it registers, the gateway admits it at
// its first passing probe). HAProxy: `set server be/a3 state maint`, 12 s later `state ready`, on
// its bounded-load consistent hash (`balance uri` + `hash-type consistent` +
// `hash-balance-factor 125`). Both under the same paced Zipf(1.0) load as the "warm" measure.
//
// For each event E, the 10 s after it are compared with 10 s before it (before a leave: the
// steady state; before a join: the time the node was out, from 2 s after the leave):
//   - a function's home in a window is the node that answered most of its calls there; it moved
//     when the two homes differ (only functions with >= kMinCalls calls in both windows count);
//     a move is needed when it is off the leaving node or onto the joining one, extra otherwise;
//   - cold starts (`X-Faas-Cold-Start: true`) in the 10 s after E, against the 10 s before the
//     leave: with warm pools smaller than the function set (design/0032) there is a steady
//     stream of them, and the event adds to it.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "bench.h"

namespace faas::bench {

using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr int kEventNode = 2;    // n3 / a3
constexpr double kWindowS = 10;  // the "10 s after"
constexpr double kOutS = 12;     // how long the node stays out
constexpr int kMinCalls = 3;     // calls a function needs in both windows to have a home there

struct Window {
  int calls = 0, cold = 0, errors = 0;
  std::map<int, std::map<std::string, int>> per_fn;  // fn -> node -> successful calls
};

Window Collect(const std::vector<Rec>& recs, double from_s, double to_s) {
  Window w;
  for (const Rec& r : recs) {
    if (r.sent_s < from_s || r.sent_s >= to_s) {
      continue;
    }
    ++w.calls;
    if (r.status != 200) {
      ++w.errors;
      continue;
    }
    w.cold += r.cold ? 1 : 0;
    ++w.per_fn[r.fn][r.node];
  }
  return w;
}

// The node with most calls of `fn`, "" when it has fewer than kMinCalls.
std::string Home(const Window& w, int fn) {
  auto it = w.per_fn.find(fn);
  if (it == w.per_fn.end()) {
    return "";
  }
  int total = 0, best = 0;
  std::string home;
  for (const auto& [node, n] : it->second) {
    total += n;
    if (n > best || (n == best && node < home)) {
      best = n;
      home = node;
    }
  }
  return total >= kMinCalls ? home : "";
}

struct Moves {
  int counted = 0, needed = 0, extra = 0;
  int cold = 0;  // moved functions whose first call on their new home was a cold start
};

// Functions whose home changed from `before` to `after`; a move off `left` (a leave) or onto
// `joined` (a join) is needed, any other is extra churn.
Moves CountMoves(const Window& before, const Window& after, const std::string& left,
                 const std::string& joined, const std::vector<Rec>& recs, double from_s) {
  Moves m;
  for (int fn = 0; fn < kFunctions; ++fn) {
    const std::string a = Home(before, fn), b = Home(after, fn);
    if (a.empty() || b.empty()) {
      continue;
    }
    ++m.counted;
    if (a == b) {
      continue;
    }
    if (a == left || b == joined) {
      ++m.needed;
    } else {
      ++m.extra;
    }
    // The cold start the move cost: the function's first call on its new home (the records are
    // in the order they were sent).
    for (const Rec& r : recs) {
      if (r.sent_s >= from_s && r.fn == fn && r.status == 200 && r.node == b) {
        m.cold += r.cold ? 1 : 0;
        break;
      }
    }
  }
  return m;
}

struct ChurnRun {
  std::vector<Rec> recs;
  double leave_s = 0, join_s = 0;
  double admitted_s = -1;  // ours: when the gateway logged n3's node.up after the join
};

void SleepUntil(Clock::time_point start, double s) {
  std::this_thread::sleep_until(
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)));
}

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int CountOf(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

void Bench::Churn() {
  const std::vector<std::string> configs = {"bounded-hash", "haproxy-bounded-uri"};
  const std::string hap_server =
      HaproxyBackend("haproxy-bounded-uri") + "/a" + std::to_string(kEventNode + 1);
  const std::string our_node = "n" + std::to_string(kEventNode + 1);
  const double warmup_s = opt_.warmup_s;
  std::printf(
      "\n== Join and leave: Zipf(1.0) over %d functions, %.0f calls/s, %d clients; node 3 leaves "
      "after %.0f + %.0f s, joins %.0f s later; windows of %.0f s ==\n",
      kFunctions, opt_.rate, opt_.clients, warmup_s, kWindowS, kOutS, kWindowS);
  std::printf("%-20s %5s %-5s %7s %6s %6s %6s %10s %9s %9s %7s %9s\n", "balancer", "round", "event",
              "counted", "moved", "needed", "extra", "moved cold", "cold 10s", "cold base",
              "errors", "node ms");
  for (int round = 0; round < opt_.rounds && !g_stop; ++round) {
    for (std::size_t k = 0; k < configs.size() && !g_stop; ++k) {
      const std::string& c = configs[(k + static_cast<std::size_t>(round)) % configs.size()];
      const bool ours = c.rfind("haproxy", 0) != 0;
      std::string host = "127.0.0.1";
      // at(), not []: a lookup of one of our balancers would add a backend HAProxy does not have,
      // which RestartAlls (scale) then fails to update ("No such backend").
      int port = ours ? 0 : haproxy_ports_.at(c);
      if (ours) {
        std::string error;
        if (!StartGateway(c, &error)) {
          Log("join: skipping " + c + ": " + error.substr(0, 2000));
          continue;
        }
        host = gateway_->bind_host();
        port = gateway_->http_port();
      }
      ChurnRun run;
      std::atomic<bool> done{false};
      const auto start = Clock::now();
      std::thread load([&] {
        run.recs = RunZipf(host, port, opt_.clients, opt_.rate, 1e9,
                           static_cast<unsigned>(round + 101), start, &done);
      });
      // The leave.
      SleepUntil(start, warmup_s + kWindowS);
      run.leave_s = Since(start);
      std::string failure;
      if (ours) {
        auto r = gateway_->Ctl({"node", "drain", our_node});
        if (r.exit_code != 0) {
          failure = "drain: " + r.out + r.err;
        } else if (!PollUntil([&] { return !nodes_[kEventNode]->Running(); }, seconds(30))) {
          failure = "n3 did not exit after its drain";
        }
      } else {
        std::string r =
            HaproxyProcess::Command(haproxy_socket_, "set server " + hap_server + " state maint");
        if (!r.empty()) {
          failure = "haproxy maint: " + r;
        }
      }
      // The join.
      if (failure.empty()) {
        SleepUntil(start, run.leave_s + kOutS);
        if (ours) {
          const std::string up = "node.up node=" + our_node;
          const int ups = CountOf(gateway_->Logs(), up);
          if (!nodes_[kEventNode]->Start(NodeArgs(kEventNode))) {
            failure = "n3 did not start again\n" + nodes_[kEventNode]->Logs();
          } else {
            run.join_s = Since(start);
            if (PollUntil([&] { return CountOf(gateway_->Logs(), up) > ups; }, seconds(10))) {
              run.admitted_s = Since(start);
            }
          }
        } else {
          run.join_s = Since(start);
          std::string r =
              HaproxyProcess::Command(haproxy_socket_, "set server " + hap_server + " state ready");
          if (!r.empty()) {
            failure = "haproxy ready: " + r;
          }
        }
      }
      if (failure.empty()) {
        SleepUntil(start, run.join_s + kWindowS);
      }
      done = true;
      load.join();
      if (!failure.empty()) {
        Log("join: " + c + " round " + std::to_string(round + 1) + ": " + failure.substr(0, 2000));
        continue;
      }
      // The figures.
      const std::string node = ours ? our_node : "a" + std::to_string(kEventNode + 1);
      const Window base = Collect(run.recs, run.leave_s - kWindowS, run.leave_s);
      const Window after_leave = Collect(run.recs, run.leave_s, run.leave_s + kWindowS);
      const Window out = Collect(run.recs, run.leave_s + 2, run.join_s);
      const Window after_join = Collect(run.recs, run.join_s, run.join_s + kWindowS);
      const Moves ml = CountMoves(base, after_leave, node, "", run.recs, run.leave_s);
      const Moves mj = CountMoves(out, after_join, "", node, run.recs, run.join_s);
      // Leave: the last call the leaving node answered that was sent after the event; join: the
      // first call it answered after the event (ms after the event; -1 = none).
      double last_ms = -1, first_ms = -1;
      for (const Rec& r : run.recs) {
        if (r.node != node || r.status != 200) {
          continue;
        }
        if (r.sent_s >= run.leave_s && r.sent_s < run.join_s) {
          last_ms = std::max(last_ms, (r.sent_s - run.leave_s) * 1000);
        }
        if (r.sent_s >= run.join_s && first_ms < 0) {
          first_ms = (r.sent_s - run.join_s) * 1000;
        }
      }
      auto row = [&](const char* event, const Moves& m, const Window& w, double node_ms) {
        std::printf("%-20s %5d %-5s %7d %6d %6d %6d %10d %9d %9d %7d %9.0f\n", c.c_str(), round + 1,
                    event, m.counted, m.needed + m.extra, m.needed, m.extra, m.cold, w.cold,
                    base.cold, w.errors, node_ms);
        json_["join"][c].push_back({{"round", round + 1},
                                    {"event", event},
                                    {"functions_counted", m.counted},
                                    {"moved", m.needed + m.extra},
                                    {"moved_needed", m.needed},
                                    {"moved_extra", m.extra},
                                    {"moved_first_call_cold", m.cold},
                                    {"cold_10s", w.cold},
                                    {"cold_10s_before_leave", base.cold},
                                    {"calls_10s", w.calls},
                                    {"errors_10s", w.errors},
                                    {"node_ms", node_ms}});
      };
      row("leave", ml, after_leave, last_ms);
      row("join", mj, after_join, first_ms);
      if (ours && run.admitted_s >= 0) {
        json_["join"][c].back()["admitted_ms"] = (run.admitted_s - run.join_s) * 1000;
      }
      std::fflush(stdout);
    }
  }
  std::printf(
      "(moved: functions whose busiest node differs between the 10 s before and after; needed: "
      "off the leaving node or onto the joining one; extra: any other; moved cold: moved functions "
      "whose first call on the new node was cold. counted: functions with "
      ">= %d calls in both windows. cold base: cold starts in the 10 s before the leave. node "
      "ms: leave = last call the node answered after the event, join = first call it answered; "
      "-1 = none)\n",
      kMinCalls);
}

}  // namespace faas::bench
