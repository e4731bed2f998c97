// Cold starts, measured against faasd with the same run's baseline (docs/benchmarks.md):
//   faas_coldstart_bench --server 127.0.0.1:9090 --function hello [-n 200] [--token T]
// For each of N rounds, interleaved: (1) a bare fork()+_exit()+waitpid() of a small process
// (the baseline, timed inside faas-fork-baseline, --fork-helper PATH), (2) a forced cold start
// through the control API (Invoke with fresh=true: a new sandboxed instance, discarded after),
// timing the whole round trip at the client (end to end) and reading the server's phase timings
// (spawn, load, init, cold, exec) from the reply. With --http HOST:PORT --http-function NAME (a
// function deployed with --isolation fresh, so every request forks a new instance), each round also
// times one cold HTTP request end to end on a kept-alive loopback connection, checking
// X-Faas-Cold-Start: true; with --http-warm-function NAME also one warm request to NAME on the same
// connection, so the cold start's overhead over a warm call can be set against the bare fork (issue
// #14's target: at most 2x). Prints medians, p90 and p99 per phase and the ratios to the baseline.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "faas/v1/control.grpc.pb.h"

#include "http_conn.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

// The baseline is faas-fork-baseline (cli/fork_baseline.c, libc only), started once and asked
// for one timed fork()+_exit()+waitpid() per line: a fork of a small separate process, not of
// this one, whose gRPC libraries make its page tables (and so its forks) several times larger.
struct BaselineHelper {
  FILE* to = nullptr;
  FILE* from = nullptr;
  void Start(const std::string& path) {
    int a[2], b[2];
    if (::pipe2(a, O_CLOEXEC) != 0 || ::pipe2(b, O_CLOEXEC) != 0) {
      std::abort();
    }
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, a[0], STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, b[1], STDOUT_FILENO);
    std::string pause = "0", count = "0";
    char* argv[] = {const_cast<char*>(path.c_str()), pause.data(), count.data(), nullptr};
    pid_t pid = 0;
    if (::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ) != 0) {
      std::fprintf(stderr, "cannot start %s\n", path.c_str());
      std::exit(1);
    }
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(a[0]);
    ::close(b[1]);
    to = ::fdopen(a[1], "w");
    from = ::fdopen(b[0], "r");
  }
  double ForkMs() {
    double ms = 0;
    if (std::fputs("x\n", to) < 0 || std::fflush(to) != 0 || std::fscanf(from, "%lf", &ms) != 1) {
      std::abort();
    }
    return ms;
  }
};

// The `name;dur=` of the Server-Timing header in `head` (-1 when absent).
double ServerTimingOf(const std::string& head, const std::string& name) {
  std::size_t at = head.find("Server-Timing:");
  if (at == std::string::npos) {
    return -1;
  }
  std::size_t end = head.find('\n', at);
  std::size_t d = head.find(name + ";dur=", at);
  if (d == std::string::npos || d > end) {
    return -1;
  }
  return std::atof(head.c_str() + d + name.size() + 5);
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:9090";
  std::string function = "hello";
  const char* env_token = std::getenv("FAAS_TOKEN");
  std::string token = env_token == nullptr ? "" : env_token;  // the admin token (--token)
  int n = 200;
  std::string http, http_function, http_warm_function;
  std::string fork_helper = "build/bin/faas-fork-baseline";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--server") {
      server = argv[i + 1];
    } else if (flag == "--function") {
      function = argv[i + 1];
    } else if (flag == "--token") {
      token = argv[i + 1];
    } else if (flag == "--http") {
      http = argv[i + 1];
    } else if (flag == "--http-function") {
      http_function = argv[i + 1];
    } else if (flag == "--http-warm-function") {
      http_warm_function = argv[i + 1];
    } else if (flag == "--fork-helper") {
      fork_helper = argv[i + 1];
    } else if (flag == "-n") {
      n = std::atoi(argv[i + 1]);
    }
  }
  BaselineHelper baseline;
  baseline.Start(fork_helper);
  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = faas::v1::Control::NewStub(channel);
  std::map<std::string, std::vector<double>> samples;
  HttpConnection conn;
  if (!http.empty() && !conn.Connect(http)) {
    std::fprintf(stderr, "cannot connect to %s\n", http.c_str());
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    samples["baseline fork+exit+wait"].push_back(baseline.ForkMs());
    if (!http.empty()) {
      auto t0 = Clock::now();
      std::string head = conn.Get("/function/" + http_function);
      double ms = Ms(Clock::now() - t0);
      if (head.rfind("HTTP/1.1 200", 0) != 0 ||
          head.find("X-Faas-Cold-Start: true") == std::string::npos) {
        std::fprintf(stderr, "HTTP cold start failed:\n%s\n", head.c_str());
        return 1;
      }
      samples["end-to-end cold HTTP request"].push_back(ms);
      // Its Server-Timing: `cold` is the start (a parked instance's hand-over, or a fork when
      // none was parked), `exec` the first request on the new process.
      for (const char* phase : {"queue", "cold", "exec"}) {
        if (double v = ServerTimingOf(head, phase); v >= 0) {
          samples[std::string("HTTP cold: server ") + phase].push_back(v);
        }
      }
    }
    if (!http.empty() && !http_warm_function.empty()) {
      auto t0 = Clock::now();
      std::string head = conn.Get("/function/" + http_warm_function);
      double ms = Ms(Clock::now() - t0);
      if (head.rfind("HTTP/1.1 200", 0) != 0 ||
          head.find("X-Faas-Cold-Start: false") == std::string::npos) {
        std::fprintf(stderr, "HTTP warm call failed:\n%s\n", head.c_str());
        return 1;
      }
      samples["end-to-end warm HTTP request"].push_back(ms);
      if (double v = ServerTimingOf(head, "exec"); v >= 0) {
        samples["HTTP warm: server exec"].push_back(v);
      }
    }

    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    faas::v1::InvokeRequest req;
    req.set_name(function);
    req.set_method("GET");
    req.set_fresh(true);
    faas::v1::InvokeReply reply;
    auto t1 = Clock::now();
    grpc::Status s = stub->Invoke(&ctx, req, &reply);
    double e2e = Ms(Clock::now() - t1);
    if (!s.ok() || reply.status() != 200 || !reply.cold_start()) {
      std::fprintf(stderr, "invoke failed: %s %d %s\n", s.error_message().c_str(), reply.status(),
                   reply.error_message().c_str());
      return 1;
    }
    samples["end-to-end (control API round trip)"].push_back(e2e);
    double cold = 0, exec = 0;
    for (const auto& t : reply.timings()) {
      samples["server " + t.phase()].push_back(t.ms());
      cold += t.phase() == "cold" ? t.ms() : 0;
      exec += t.phase() == "exec" ? t.ms() : 0;
    }
    samples["server-side cold start (cold + exec)"].push_back(cold + exec);
  }
  double base = Quantile(samples["baseline fork+exit+wait"], 0.5);
  std::printf("%-40s %9s %9s %9s %10s\n", "phase (ms)", "p50", "p90", "p99", "p50/fork");
  for (const auto& [name, v] : samples) {
    double p50 = Quantile(v, 0.5);
    std::printf("%-40s %9.3f %9.3f %9.3f %9.1fx\n", name.c_str(), p50, Quantile(v, 0.9),
                Quantile(v, 0.99), p50 / base);
  }
  if (samples.count("end-to-end warm HTTP request") != 0) {
    double over = Quantile(samples["end-to-end cold HTTP request"], 0.5) -
                  Quantile(samples["end-to-end warm HTTP request"], 0.5);
    std::printf(
        "forced cold start: overhead over a warm call %.3f ms (p50s) = %.2fx a bare fork "
        "back to back (target <= 2x)\n",
        over, over / base);
  }
  return 0;
}
