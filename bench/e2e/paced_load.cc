// Open-loop load at a fixed rate, for latency under interference (bench/e2e/isolation.sh):
//   faas_paced_load --addr 127.0.0.1:8080 --path /function/hello --rate 1000 -c 8 -d 10 [--slow MS]
// Each of C kept-alive connections sends GETs on its own fixed schedule (rate / C per second,
// staggered). Latency is measured from the *scheduled* send time, so a stall is counted for
// every request it delays (no coordinated omission, unlike wrk's closed loop). A closed loop at
// saturation measures CPU contention, not isolation: any neighbour that uses CPU raises its p99.
// Prints one line: sent, errors, achieved rate and p50/p90/p99/p99.9/max in ms; with --slow, each
// request slower than MS also goes to stderr with its send delay and Server-Timing header.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "http_conn.h"

namespace {

using Clock = std::chrono::steady_clock;

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) {
    return 0;
  }
  auto k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:8080", path = "/function/hello";
  double rate = 1000, seconds = 10, slow_ms = 0;
  int conns = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--addr") {
      addr = argv[i + 1];
    } else if (flag == "--slow") {
      slow_ms = std::atof(argv[i + 1]);
    } else if (flag == "--path") {
      path = argv[i + 1];
    } else if (flag == "--rate") {
      rate = std::atof(argv[i + 1]);
    } else if (flag == "-c") {
      conns = std::atoi(argv[i + 1]);
    } else if (flag == "-d") {
      seconds = std::atof(argv[i + 1]);
    }
  }
  if (rate <= 0 || conns <= 0 || seconds <= 0) {
    std::fprintf(
        stderr,
        "usage: faas_paced_load --addr H:P --path P --rate R -c C -d SECONDS [--slow MS]\n");
    return 2;
  }
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(conns) / rate));
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(conns));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(conns));
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      HttpConnection conn;
      if (!conn.Connect(addr)) {
        ++errors;
        return;
      }
      auto& mine = lat[static_cast<std::size_t>(c)];
      for (auto due = start + interval * c / conns; due < end; due += interval) {
        std::this_thread::sleep_until(due);
        const auto sent = Clock::now();
        std::string head = conn.Get(path);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - due).count();
        mine.push_back(ms);
        if (slow_ms > 0 && ms >= slow_ms) {  // where did a slow one's time go?
          auto st = head.find("Server-Timing: ");
          std::fprintf(
              stderr, "slow %.3f ms (sent %.3f ms late) %s\n", ms,
              std::chrono::duration<double, std::milli>(sent - due).count(),
              st == std::string::npos ? "" : head.substr(st, head.find('\r', st) - st).c_str());
        }
        if (head.rfind("HTTP/1.1 200", 0) != 0) {
          ++errors;
          if (head.empty()) {
            return;  // connection lost
          }
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::vector<double> all;
  for (auto& v : lat) {
    all.insert(all.end(), v.begin(), v.end());
  }
  double max = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  std::printf("sent=%zu errors=%d rate=%.0f p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f\n",
              all.size(), errors.load(), static_cast<double>(all.size()) / seconds,
              Quantile(all, 0.5), Quantile(all, 0.9), Quantile(all, 0.99), Quantile(all, 0.999),
              max);
  return errors.load() == 0 ? 0 : 1;
}
