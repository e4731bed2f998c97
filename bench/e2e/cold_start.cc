// Cold starts, measured against faasd with the same run's baseline (docs/benchmarks.md):
//   faas_coldstart_bench --server 127.0.0.1:9090 --function hello [-n 200] [--token T]
// For each of N rounds, interleaved: (1) a bare fork()+_exit()+waitpid() of a small process
// (the baseline, timed inside a helper forked before gRPC starts), (2) a forced cold start through
// the control API (Invoke with fresh=true: a new sandboxed instance, discarded after), timing the
// whole round trip at the client (end to end) and reading the server's phase timings (spawn, load,
// init, cold, exec) from the reply. With --http HOST:PORT --http-function NAME (a function deployed
// with --isolation fresh, so every request forks a new instance), each round also times one cold
// HTTP request end to end on a kept-alive loopback connection, checking X-Faas-Cold-Start: true.
// Prints medians, p90 and p99 per phase and the ratios to the baseline.
#include <fcntl.h>
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

// The baseline runs in a small helper process forked before gRPC starts any thread or allocates
// much (fork cost grows with the parent's memory): for each request byte it times one
// fork()+_exit()+waitpid() and writes the nanoseconds back.
struct BaselineHelper {
  int to = -1, from = -1;
  void Start() {
    int a[2], b[2];
    if (::pipe2(a, O_CLOEXEC) != 0 || ::pipe2(b, O_CLOEXEC) != 0) {  // forked, never exec'd
      std::abort();
    }
    if (::fork() == 0) {
      ::close(a[1]);
      ::close(b[0]);
      char c;
      while (::read(a[0], &c, 1) == 1) {
        auto t0 = Clock::now();
        pid_t pid = ::fork();
        if (pid == 0) {
          ::_exit(0);
        }
        ::waitpid(pid, nullptr, 0);
        int64_t ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
        if (::write(b[1], &ns, sizeof ns) != sizeof ns) {
          break;
        }
      }
      ::_exit(0);
    }
    ::close(a[0]);
    ::close(b[1]);
    to = a[1];
    from = b[0];
  }
  double ForkMs() {
    int64_t ns = 0;
    if (::write(to, "x", 1) != 1 || ::read(from, &ns, sizeof ns) != sizeof ns) {
      std::abort();
    }
    return static_cast<double>(ns) / 1e6;
  }
};

}  // namespace

int main(int argc, char** argv) {
  BaselineHelper baseline;
  baseline.Start();
  std::string server = "127.0.0.1:9090";
  std::string function = "hello";
  const char* env_token = std::getenv("FAAS_TOKEN");
  std::string token = env_token == nullptr ? "" : env_token;  // the admin token (--token)
  int n = 200;
  std::string http, http_function;
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
    } else if (flag == "-n") {
      n = std::atoi(argv[i + 1]);
    }
  }
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
  return 0;
}
