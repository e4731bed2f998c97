// The cluster bench's load, figures and HAProxy process (bench.h).
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "bench.h"
#include "http_client.h"

namespace faas::bench {

using faas::testing::HttpConnection;
using faas::testing::HttpResult;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::atomic<bool> g_stop{false};

std::string FunctionName(int i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "f%03d", i);
  return buf;
}

void Log(const std::string& s) {
  std::fprintf(stderr, "[cluster-bench] %s\n", s.c_str());
}

namespace {
// /proc/stat's first line: (busy, total) jiffies of every CPU since boot.
std::pair<double, double> CpuJiffies() {
  std::FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) {
    return {0, 0};
  }
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 5) {
    return {0, 0};
  }
  double total = 0;
  for (auto x : v) {
    total += static_cast<double>(x);
  }
  return {total - static_cast<double>(v[3] + v[4]), total};  // idle and iowait are not busy
}
}  // namespace

double WaitHostQuiet(double busy_cpus, seconds limit, double* last) {
  const auto start = Clock::now();
  const double cpus = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  auto before = CpuJiffies();
  for (;;) {
    std::this_thread::sleep_for(seconds(1));
    auto now = CpuJiffies();
    const double total = now.second - before.second;
    *last = total > 0 ? (now.first - before.first) / total * cpus : 0;
    before = now;
    if (*last < busy_cpus || Clock::now() - start >= limit || g_stop) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    }
  }
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

bool HaproxyProcess::Start(const std::string& config_path, const std::string& log_path) {
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

void HaproxyProcess::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

std::string HaproxyProcess::Command(const std::string& socket_path, const std::string& command) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return "error: cannot connect to " + socket_path;
  }
  const std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    return "error: write";
  }
  // Without `prompt` HAProxy answers one command and closes the connection.
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

std::vector<Rec> RunZipf(const std::string& host, int port, int clients, double rate,
                         double total_s, unsigned seed, Clock::time_point start,
                         const std::atomic<bool>* done) {
  std::vector<double> w(kFunctions);
  for (int k = 0; k < kFunctions; ++k) {
    w[static_cast<std::size_t>(k)] = 1.0 / (k + 1);
  }
  std::vector<std::string> targets;
  targets.reserve(kFunctions);
  for (int k = 0; k < kFunctions; ++k) {
    targets.push_back("/function/" + FunctionName(k));
  }
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  auto finished = [&] { return g_stop || (done != nullptr && *done); };
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
      for (int k = 0; now() < total_s && !finished(); ++k) {
        const double due = (k + static_cast<double>(c) / clients) * interval;
        if (due > now()) {
          std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(due)));
        }
        const int fn = zipf(rng);
        if (conn == nullptr) {
          conn = std::make_unique<HttpConnection>(host, port);
          if (!conn->Connected()) {
            conn.reset();
            mine.push_back(Rec{now(), 0, 0, false, fn, ""});  // refused: an error, not a call
            continue;
          }
        }
        Rec r;
        r.sent_s = now();
        r.fn = fn;
        HttpResult res =
            conn->Request("GET", targets[static_cast<std::size_t>(fn)], "", {}, seconds(30));
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
  std::sort(all.begin(), all.end(), [](const Rec& a, const Rec& b) { return a.sent_s < b.sent_s; });
  return all;
}

double Pct(std::vector<float> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void Result::Add(const std::vector<Rec>& recs, double from_s, double to_s) {
  // Each function's home: the node that served most of its calls this round.
  std::map<int, std::map<std::string, int>> served;
  // Each function's calls per node, as [sent, answered] intervals, for the overlap test.
  std::map<std::pair<int, std::string>, std::vector<std::pair<double, double>>> spans;
  for (const Rec& r : recs) {
    if (r.status == 200) {
      ++served[r.fn][r.node];
      spans[{r.fn, r.node}].emplace_back(r.sent_s, r.sent_s + r.latency_ms / 1000.0);
    }
  }
  auto home = [&](int fn) {
    std::string best;
    int most = -1;
    for (const auto& [node, n] : served[fn]) {
      if (n > most) {
        best = node;
        most = n;
      }
    }
    return best;
  };
  auto band = [](int fn) { return fn < 10 ? 0 : fn < 50 ? 1 : 2; };
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
    if (r.fn >= 0) {
      ++ok_by_rank[band(r.fn)];
      miss_by_rank[band(r.fn)] += r.cold ? 1 : 0;
    }
    if (!r.cold) {
      continue;
    }
    if (r.node != home(r.fn)) {
      ++miss_spill;
      continue;
    }
    bool overlap = false;
    for (const auto& [sent, answered] : spans[{r.fn, r.node}]) {
      overlap = overlap || (sent < r.sent_s && answered > r.sent_s);
    }
    ++(overlap ? miss_overlap : miss_evicted);
  }
  ok += ok_r;
  warm += warm_r;
  seconds += to_s - from_s;
  round_warm.push_back(ok_r > 0 ? static_cast<double>(warm_r) / ok_r : 0);
}

double Result::MaxOverMean() const {
  if (per_node.empty()) {
    return 0;
  }
  int mx = 0;
  for (const auto& [n, c] : per_node) {
    mx = std::max(mx, c);
  }
  // The mean over the nodes of the cluster, also those that got nothing.
  return mx / (static_cast<double>(ok) / kNodes);
}

}  // namespace faas::bench
