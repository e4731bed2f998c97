// Measure "scale": throughput with 1, 2 and 3 nodes (issue #17 item 2; docs/design/0030,
// "Scale"), in two variants, each ours against HAProxy round robin, alternating.
//
// Slot-bound: `slot` is libsleep.so (sleeps 50 ms without using CPU) deployed with
// `--max-instances 4`, a cap each node enforces on its own pool, so a node completes at most
// 4 / 0.05 s = 80 calls/s and k nodes 80·k. A closed loop of 24 clients (twice the slots of three
// nodes) keeps every slot busy.
//
// CPU-capped: `burn` is libburn.so (10 ms of its own CPU time per call), and each node's namespace
// (its `--role node` and its `--role all` faasd, with all their instances) runs in a cgroup capped
// at 0.4 CPU that this bench creates below its own cgroup and removes afterwards (NodeCaps). The
// gateway, HAProxy, PostgreSQL and the load generator stay outside the caps, in the remaining
// CPU; their CPU use and each cap's usage and throttling are printed per point. A closed loop of
// 12 clients. Only cgroup v1's `cpu` controller is handled (this host's); elsewhere the variant
// is skipped with the reason.
//
// Nodes beyond k: ours drained (`faasctl node drain`; they exit), started again for the next k;
// HAProxy (roundrobin): servers beyond k set to `maint`.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench.h"
#include "http_client.h"

namespace faas::bench {

using faas::testing::HttpConnection;
using faas::testing::HttpResult;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr int kSlots = 4;          // --max-instances of `slot` on each node
constexpr int kSleepMs = 50;       // each call's sleep
constexpr int kScaleClients = 24;  // 2 x the slots of three nodes
constexpr const char* kHapScale = "haproxy-roundrobin";

constexpr double kCapCpus = 0.4;    // each node's cap
constexpr int kBurnMs = 10;         // CPU time of each `burn` call
constexpr int kBurnInstances = 2;   // --max-instances of `burn`: 1 would do, 2 covers a slow reply
constexpr int kCapClients = 12;     // 2 x the instances of three nodes
constexpr double kIdleCpus = 0.05;  // a group using less is idle (WaitQuiet)
// faasd inside a cap: instance cgroups on the unified (v2) mount, which has no controllers here,
// so every instance stays in its faasd's v1 `cpu` group. faasd's own v1 layout would give each
// instance a one-CPU quota, and v1 refuses a child quota above an ancestor's (EINVAL), so no
// instance could start below a 0.4 cap. Per-instance memory and pids limits are off in this
// variant (--unsafe-no-limits), on both sides alike.
constexpr const char* kUnified = "/sys/fs/cgroup/unified";

std::vector<std::string> CappedFlags() {
  return {"--cgroup-mode", "v2", "--cgroup-v2-mount", kUnified, "--unsafe-no-limits"};
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "" or why not.
std::string WriteValue(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return "open " + path + ": " + std::strerror(errno);
  }
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  std::string why = ok ? "" : "write " + value + " to " + path + ": " + std::strerror(errno);
  ::close(fd);
  return why;
}

// CPU seconds of a process (0 when it is gone): utime + stime, and with `children` also what its
// reaped children used (cutime + cstime) and its live children's own: PostgreSQL's backends
// are the postmaster's children.
double ProcessCpuSeconds(pid_t pid, bool children = false) {
  auto fields = [](const std::string& stat, int from, int to, pid_t* ppid) {
    double sum = 0;
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) {
      return sum;
    }
    std::istringstream in(stat.substr(paren + 2));
    std::string field;
    for (int f = 3; in >> field && f <= to; ++f) {  // field 3 is the state, 4 the ppid
      if (f == 4 && ppid != nullptr) {
        *ppid = static_cast<pid_t>(std::atol(field.c_str()));
      }
      if (f >= from) {
        sum += std::atof(field.c_str());
      }
    }
    return sum;
  };
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const std::string own = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  double ticks = fields(own, 14, children ? 17 : 15, nullptr);  // 14 utime 15 stime 16-17 reaped
  if (children) {
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      pid_t ppid = 0;
      const std::string stat = ReadAll(e.path().string() + "/stat");
      const double t = fields(stat, 14, 15, &ppid);
      if (ppid == pid) {
        ticks += t;
      }
    }
  }
  return ticks / tick;
}

// The whole machine's busy and total jiffies so far (/proc/stat's first line; idle and iowait
// are not busy).
std::pair<double, double> MachineJiffies() {
  std::istringstream in(ReadAll("/proc/stat"));
  std::string cpu;
  in >> cpu;
  double busy = 0, all = 0, v = 0;
  for (int f = 0; f < 8 && in >> v; ++f) {  // user nice system idle iowait irq softirq steal
    all += v;
    busy += (f == 3 || f == 4) ? 0 : v;
  }
  return {busy, all};
}

const int kCpus = static_cast<int>(std::thread::hardware_concurrency());

}  // namespace

// One cgroup per node capped at `cpus`, below the bench's own cgroup:
// <own>/capscale-<bench pid>/n<i>, in cgroup v1's `cpu` hierarchy (the quota) and `cpuacct`
// hierarchy (the usage; the same directory where both are mounted together). A faasd joins its
// node's group by being forked from a thread that is in it (StartIn), so everything it starts is
// in it too; the bench's other threads and processes stay where they were.
class NodeCaps {
 public:
  NodeCaps() = default;
  NodeCaps(const NodeCaps&) = delete;
  NodeCaps& operator=(const NodeCaps&) = delete;
  ~NodeCaps() { Remove(); }

  // "" when made, else why not (the variant is then skipped).
  std::string Create(int nodes, double cpus) {
    if (::access((std::string(kUnified) + "/cgroup.procs").c_str(), F_OK) != 0) {
      return std::string("no cgroup2 mount at ") + kUnified +
             " for the capped faasd's instance groups (see CappedFlags)";
    }
    // The calling thread's groups (to come back to) and where each hierarchy is mounted.
    std::string cpu_rel, acct_rel;
    std::istringstream own(ReadAll("/proc/thread-self/cgroup"));
    for (std::string line; std::getline(own, line);) {
      const auto a = line.find(':');
      const auto b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) {
        continue;
      }
      std::istringstream ctrls(line.substr(a + 1, b - a - 1));
      for (std::string c; std::getline(ctrls, c, ',');) {
        if (c == "cpu") {
          cpu_rel = line.substr(b + 1);
        } else if (c == "cpuacct") {
          acct_rel = line.substr(b + 1);
        }
      }
    }
    if (cpu_rel.empty() || acct_rel.empty()) {
      return "no cgroup v1 cpu and cpuacct hierarchies (cgroup v2 hosts are not handled: the "
             "bench would first have to move itself into a leaf of its own cgroup to delegate "
             "`cpu` below it)";
    }
    const std::string cpu_mount = Mount("cpu"), acct_mount = Mount("cpuacct");
    if (cpu_mount.empty() || acct_mount.empty()) {
      return "cannot find the cpu / cpuacct cgroup mounts in /proc/self/mountinfo";
    }
    auto join = [](const std::string& mount, const std::string& rel) {
      return rel == "/" ? mount : mount + rel;
    };
    cpu_own_ = join(cpu_mount, cpu_rel);
    acct_own_ = join(acct_mount, acct_rel);
    const std::string leaf = "/capscale-" + std::to_string(::getpid());
    cpu_dir_ = cpu_own_ + leaf;
    acct_dir_ = acct_own_ + leaf;
    nodes_ = nodes;
    for (const std::string& d : Dirs()) {
      if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
        return "mkdir " + d + ": " + std::strerror(errno);
      }
      made_.push_back(d);
    }
    const auto quota = static_cast<long>(cpus * 100'000);
    for (int i = 0; i < nodes; ++i) {
      for (const auto& [file, value] :
           {std::pair<std::string, std::string>{"cpu.cfs_period_us", "100000"},
            {"cpu.cfs_quota_us", std::to_string(quota)}}) {
        if (std::string why = WriteValue(Node(cpu_dir_, i) + "/" + file, value); !why.empty()) {
          return why;
        }
      }
    }
    return "";
  }

  // Runs `start` with the calling thread in node i's groups: what it forks lands there.
  bool StartIn(int i, const std::function<bool()>& start) {
    const std::string tid = std::to_string(::syscall(SYS_gettid));
    for (const std::string& d : {Node(cpu_dir_, i), Node(acct_dir_, i)}) {
      if (std::string why = WriteValue(d + "/tasks", tid); !why.empty()) {
        Log("capscale: " + why);
        Leave(tid);
        return false;
      }
    }
    const bool ok = start();
    Leave(tid);
    return ok;
  }

  // What node i's group used so far.
  struct Sample {
    double usage_s = 0;
    long periods = 0, throttled = 0;
    double throttled_s = 0;
  };
  Sample Read(int i) const {
    Sample s;
    s.usage_s = std::atof(ReadAll(Node(acct_dir_, i) + "/cpuacct.usage").c_str()) / 1e9;
    std::istringstream in(ReadAll(Node(cpu_dir_, i) + "/cpu.stat"));
    std::string key;
    for (double v = 0; in >> key >> v;) {
      if (key == "nr_periods") {
        s.periods = static_cast<long>(v);
      } else if (key == "nr_throttled") {
        s.throttled = static_cast<long>(v);
      } else if (key == "throttled_time") {
        s.throttled_s = v / 1e9;
      }
    }
    return s;
  }
  std::string Where() const { return cpu_dir_ + "/n<i>"; }

  // Waits until every group used under `idle` CPUs over half a second (a faasd that just started
  // in a cap is busy for seconds, and that would count against the node measured next); the
  // seconds waited, or -1 when they were still busy at `limit` (then logged, with their use).
  double WaitQuiet(double idle, std::chrono::milliseconds limit) const {
    const auto start = Clock::now();
    std::string busy;
    auto quiet = [&] {
      std::vector<Sample> before(static_cast<std::size_t>(nodes_));
      for (int i = 0; i < nodes_; ++i) {
        before[static_cast<std::size_t>(i)] = Read(i);
      }
      std::this_thread::sleep_for(milliseconds(500));  // the window measured, not a sync point
      busy.clear();
      for (int i = 0; i < nodes_; ++i) {
        const double used = (Read(i).usage_s - before[static_cast<std::size_t>(i)].usage_s) / 0.5;
        if (used >= idle) {
          busy += " n" + std::to_string(i + 1) + " " + std::to_string(used).substr(0, 5);
        }
      }
      return busy.empty();
    };
    if (!PollUntil(quiet, limit)) {
      Log("capscale: groups still busy after " + std::to_string(limit.count()) + " ms:" + busy);
      return -1;
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Removes the groups (children first); their processes must have left (faasd and its
  // instances exit; a few ms after their faasd they may still be there, hence the poll).
  void Remove() {
    for (auto d = made_.rbegin(); d != made_.rend(); ++d) {
      int err = 0;
      if (!PollUntil(
              [&] {
                err = ::rmdir(d->c_str()) == 0 ? 0 : errno;
                return err == 0 || err == ENOENT;
              },
              seconds(10))) {
        Log("capscale: could not remove " + *d + ": " + std::strerror(err));
      }
    }
    made_.clear();
  }

 private:
  // Where the v1 hierarchy holding `controller` is mounted ("" when none).
  static std::string Mount(const std::string& controller) {
    std::istringstream in(ReadAll("/proc/self/mountinfo"));
    for (std::string line; std::getline(in, line);) {
      const auto dash = line.find(" - cgroup ");
      if (dash == std::string::npos) {
        continue;
      }
      std::istringstream pre(line.substr(0, dash));
      std::string id, parent, dev, root, point;
      pre >> id >> parent >> dev >> root >> point;
      std::istringstream post(line.substr(dash + 3));
      std::string type, source, opts;
      post >> type >> source >> opts;
      std::istringstream o(opts);
      for (std::string opt; std::getline(o, opt, ',');) {
        if (opt == controller && root == "/") {
          return point;
        }
      }
    }
    return "";
  }
  static std::string Node(const std::string& dir, int i) {
    return dir + "/n" + std::to_string(i + 1);
  }
  std::vector<std::string> Dirs() const {
    std::vector<std::string> d = {cpu_dir_};
    if (acct_dir_ != cpu_dir_) {
      d.push_back(acct_dir_);
    }
    for (int i = 0; i < nodes_; ++i) {
      d.push_back(Node(cpu_dir_, i));
      if (acct_dir_ != cpu_dir_) {
        d.push_back(Node(acct_dir_, i));
      }
    }
    return d;
  }
  void Leave(const std::string& tid) const {
    for (const std::string& d : {cpu_own_, acct_own_}) {
      if (std::string why = WriteValue(d + "/tasks", tid); !why.empty()) {
        Log("capscale: cannot move the bench's thread back: " + why);
      }
    }
  }

  std::string cpu_own_, acct_own_;  // the thread's groups before
  std::string cpu_dir_, acct_dir_;  // <own>/capscale-<pid>
  int nodes_ = 0;
  std::vector<std::string> made_;  // in creation order
};

namespace {

// A closed loop of `clients` on keep-alive connections for warm_s + measure_s; the calls/s
// answered 200 in the last measure_s, and the errors there.
std::pair<double, int> ClosedLoop(const std::string& host, int port, const std::string& target,
                                  int clients, double warm_s, double measure_s) {
  const auto start = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::atomic<int> ok{0}, errors{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      std::unique_ptr<HttpConnection> conn;
      while (now() < warm_s + measure_s && !g_stop) {
        if (conn == nullptr) {
          conn = std::make_unique<HttpConnection>(host, port);
          if (!conn->Connected()) {
            conn.reset();
            std::this_thread::sleep_for(milliseconds(10));  // refused: retry, not a spin
            continue;
          }
        }
        const double sent = now();
        HttpResult r = conn->Request("GET", target, "", {}, seconds(30));
        if (sent >= warm_s && now() <= warm_s + measure_s) {
          (r.status == 200 ? ok : errors)++;
        }
        if (r.status == 0 || r.Header("connection") == "close") {
          conn.reset();
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return {ok / measure_s, errors.load()};
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) {
    s += x;
  }
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

bool Bench::ScaleOurNodes(int k, NodeCaps* caps) {
  for (int i = 0; i < kNodes; ++i) {
    auto& n = *nodes_[static_cast<std::size_t>(i)];
    const std::string id = "n" + std::to_string(i + 1);
    const bool capped = caps != nullptr;
    // A node running in the other setting (capped or not) leaves too, to start again in this one.
    if (n.Running() && (i >= k || node_capped_[static_cast<std::size_t>(i)] != capped)) {
      auto r = gateway_->Ctl({"node", "drain", id});
      if (r.exit_code != 0 || !PollUntil([&] { return !n.Running(); }, seconds(30))) {
        Log("scale: drain " + id + " failed: " + r.out + r.err);
        return false;
      }
    }
    if (i < k && !n.Running()) {
      const std::string up = "node.up node=" + id;
      auto count = [&] {
        const std::string logs = gateway_->Logs();
        int c = 0;
        for (auto p = logs.find(up); p != std::string::npos; p = logs.find(up, p + 1)) {
          ++c;
        }
        return c;
      };
      const int before = count();
      std::vector<std::string> args = NodeArgs(i);
      if (capped) {
        for (const std::string& f : CappedFlags()) {
          args.push_back(f);
        }
      }
      auto start = [&] { return n.Start(args); };
      const bool started = capped ? caps->StartIn(i, start) : start();
      node_capped_[static_cast<std::size_t>(i)] = capped;
      if (!started || !PollUntil([&] { return count() > before; }, seconds(15))) {
        Log("scale: " + id + " did not come back: " + n.Logs().substr(0, 2000));
        return false;
      }
    }
  }
  return true;
}

void Bench::ScaleHaproxyServers(int k) {
  for (int i = 0; i < kNodes; ++i) {
    HaproxyProcess::Command(haproxy_socket_, "set server " + HaproxyBackend(kHapScale) + "/a" +
                                                 std::to_string(i + 1) + " state " +
                                                 (i < k ? "ready" : "maint"));
  }
}

bool Bench::RestartAlls(NodeCaps* caps) {
  for (int i = 0; i < kNodes; ++i) {
    auto& a = *alls_[static_cast<std::size_t>(i)];
    a.Stop(seconds(10));
    std::vector<std::string> args = AllArgs(i);
    if (caps != nullptr) {
      for (const std::string& f : CappedFlags()) {
        args.push_back(f);
      }
    }
    auto start = [&] { return a.Start(args); };
    if (!(caps != nullptr ? caps->StartIn(i, start) : start())) {
      Log("scale: a" + std::to_string(i + 1) + " did not start: " + a.Logs().substr(0, 2000));
      return false;
    }
    // Its ports are new (always :0): every backend follows (HAProxy's runtime API).
    for (const auto& [mode, port] : haproxy_ports_) {
      const std::string answer = HaproxyProcess::Command(
          haproxy_socket_, "set server " + HaproxyBackend(mode) + "/a" + std::to_string(i + 1) +
                               " addr " + a.bind_host() + " port " + std::to_string(a.http_port()));
      if (answer.find("changed") == std::string::npos &&
          answer.find("no need") == std::string::npos) {
        Log("scale: HAProxy did not take a" + std::to_string(i + 1) + "'s new port: " + answer);
        return false;
      }
    }
  }
  // Back when round robin has sent a call to each of a1..a3 and all answered.
  std::set<std::string> seen;
  const bool back = PollUntil(
      [&] {
        HttpResult r =
            faas::testing::HttpRequest(haproxy_ports_[kHapScale], "GET", "/function/burn?ms=1");
        if (r.status == 200) {
          seen.insert(r.Header("x-faas-node"));
        } else {
          seen.clear();
        }
        return seen.size() == static_cast<std::size_t>(kNodes);
      },
      seconds(30));
  if (!back) {
    Log("scale: HAProxy never reached a1..a3 again");
  }
  return back;
}

void Bench::ScalePoints(const std::string& key, const std::string& title, const std::string& target,
                        int clients, NodeCaps* caps) {
  const double warm_s = opt_.quick ? 1 : 2;
  const double measure_s = opt_.quick ? 4 : 8;
  std::map<std::string, std::map<int, std::vector<double>>> rate;  // config -> k -> per round
  std::map<std::string, std::map<int, int>> errs;
  // Capped: per config and k, each point's CPU figures (CPUs used over the whole point).
  struct Cpu {
    std::vector<double> node_cpus;  // each running node's group
    std::vector<double> throttled;  // fraction of its periods throttled
    std::vector<double> gateway, haproxy, postgres, loadgen;
    std::vector<double> machine;  // CPUs busy on the whole machine (other helpers too)
  };
  std::map<std::string, std::map<int, Cpu>> cpu;
  for (int round = 0; round < opt_.rounds && !g_stop; ++round) {
    for (int k = 1; k <= kNodes && !g_stop; ++k) {
      for (int side = 0; side < 2 && !g_stop; ++side) {
        const bool ours = (side + round) % 2 == 0;  // which goes first alternates per round
        const std::string c = ours ? "bounded-hash" : kHapScale;
        if (ours && !ScaleOurNodes(k, caps)) {
          return;
        }
        if (!ours) {
          ScaleHaproxyServers(k);
        }
        std::string settle;
        if (caps != nullptr) {
          settle = "; quiet after " +
                   std::to_string(caps->WaitQuiet(kIdleCpus, seconds(opt_.quick ? 15 : 30))) + " s";
        }
        std::vector<NodeCaps::Sample> before(kNodes);
        for (int i = 0; caps != nullptr && i < kNodes; ++i) {
          before[static_cast<std::size_t>(i)] = caps->Read(i);
        }
        const double gw0 = ProcessCpuSeconds(gateway_->pid());
        const double hap0 = ProcessCpuSeconds(haproxy_.pid());
        const double pg0 = ProcessCpuSeconds(pg_.pid(), true);
        const double me0 = ProcessCpuSeconds(::getpid());
        const auto [busy0, all0] = MachineJiffies();
        const auto t0 = Clock::now();
        auto r = ours ? ClosedLoop(gateway_->bind_host(), gateway_->http_port(), target, clients,
                                   warm_s, measure_s)
                      : ClosedLoop("127.0.0.1", haproxy_ports_[kHapScale], target, clients, warm_s,
                                   measure_s);
        const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        rate[c][k].push_back(r.first);
        errs[c][k] += r.second;
        std::string line = "scale " + key;
        line += " round " + std::to_string(round + 1) + " " + c;
        line += " k=" + std::to_string(k) + ": " + std::to_string(r.first) + " calls/s";
        if (caps != nullptr) {
          Cpu& f = cpu[c][k];
          char buf[160];
          for (int i = 0; i < kNodes; ++i) {
            const auto& b = before[static_cast<std::size_t>(i)];
            const auto a = caps->Read(i);
            const double used = (a.usage_s - b.usage_s) / wall;
            const long periods = a.periods - b.periods;
            const double thr = periods > 0 ? static_cast<double>(a.throttled - b.throttled) /
                                                 static_cast<double>(periods)
                                           : 0;
            if (i < k) {
              f.node_cpus.push_back(used);
              f.throttled.push_back(thr);
            }
            std::snprintf(buf, sizeof buf, "; n%d %.3f CPU, throttled %ld/%ld periods (%.1f s)",
                          i + 1, used, a.throttled - b.throttled, periods,
                          a.throttled_s - b.throttled_s);
            line += buf;
          }
          f.gateway.push_back((ProcessCpuSeconds(gateway_->pid()) - gw0) / wall);
          f.haproxy.push_back((ProcessCpuSeconds(haproxy_.pid()) - hap0) / wall);
          f.postgres.push_back((ProcessCpuSeconds(pg_.pid(), true) - pg0) / wall);
          f.loadgen.push_back((ProcessCpuSeconds(::getpid()) - me0) / wall);
          const auto [busy1, all1] = MachineJiffies();
          f.machine.push_back(all1 > all0 ? (busy1 - busy0) / (all1 - all0) * kCpus : 0);
          std::snprintf(buf, sizeof buf,
                        "; gateway %.3f, haproxy %.3f, postgres %.3f, load generator %.3f, "
                        "whole machine %.2f of %d CPUs",
                        f.gateway.back(), f.haproxy.back(), f.postgres.back(), f.loadgen.back(),
                        f.machine.back(), kCpus);
          line += buf;
        }
        Log(line + settle);
      }
    }
  }
  std::printf("\n== %s, %d closed-loop clients, %.0f s per point after %.0f s, %d round(s) ==\n",
              title.c_str(), clients, measure_s, warm_s, opt_.rounds);
  std::printf("%-20s %12s %12s %12s %10s %8s  %s\n", "balancer", "1 node /s", "2 nodes /s",
              "3 nodes /s", "3 / 1", "errors", "calls/s per round (k = 1, 2, 3)");
  for (const auto& [c, by_k] : rate) {
    const double r1 = by_k.count(1) != 0 ? Mean(by_k.at(1)) : 0;
    const double r2 = by_k.count(2) != 0 ? Mean(by_k.at(2)) : 0;
    const double r3 = by_k.count(3) != 0 ? Mean(by_k.at(3)) : 0;
    int e = 0;
    std::string per_round;
    for (const auto& [k, v] : by_k) {
      e += errs[c][k];
      for (double x : v) {
        per_round += std::to_string(static_cast<int>(x)) + " ";
      }
      per_round += "| ";
    }
    std::printf("%-20s %12.1f %12.1f %12.1f %10.2f %8d  %s\n", c.c_str(), r1, r2, r3,
                r1 > 0 ? r3 / r1 : 0, e, per_round.c_str());
    json_[key][c] = {{"calls_per_s", {{"1", r1}, {"2", r2}, {"3", r3}}},
                     {"ratio_3_over_1", r1 > 0 ? r3 / r1 : 0},
                     {"errors", e},
                     {"per_round", by_k}};
  }
  if (caps == nullptr) {
    return;
  }
  // Whether the caps were the bound: each running node's CPU (about 0.4 when it is) and how
  // often it was throttled; and what stayed outside them.
  std::printf("CPU during the points (means over rounds; each point's whole %.0f s; caps in %s):\n",
              warm_s + measure_s, caps->Where().c_str());
  std::printf("%-20s %3s %14s %10s %9s %9s %9s %9s %9s\n", "balancer", "k", "CPU per node",
              "throttled", "gateway", "haproxy", "postgres", "load gen", "machine");
  for (const auto& [c, by_k] : cpu) {
    for (const auto& [k, f] : by_k) {
      std::printf("%-20s %3d %14.3f %9.0f%% %9.3f %9.3f %9.3f %9.3f %9.2f\n", c.c_str(), k,
                  Mean(f.node_cpus), 100 * Mean(f.throttled), Mean(f.gateway), Mean(f.haproxy),
                  Mean(f.postgres), Mean(f.loadgen), Mean(f.machine));
      json_[key][c]["cpu"][std::to_string(k)] = {
          {"node_cpus", Mean(f.node_cpus)},    {"throttled_fraction", Mean(f.throttled)},
          {"gateway_cpus", Mean(f.gateway)},   {"haproxy_cpus", Mean(f.haproxy)},
          {"postgres_cpus", Mean(f.postgres)}, {"loadgen_cpus", Mean(f.loadgen)},
          {"machine_cpus", Mean(f.machine)}};
    }
  }
}

void Bench::Scale() {
  std::string error;
  if (!StartGateway("bounded-hash", &error)) {
    Log("scale skipped: " + error.substr(0, 2000));
    return;
  }
  const std::vector<std::vector<std::string>> deploys = {
      {"deploy", "slot", faas::testing::FunctionLib("sleep"), "--max-instances",
       std::to_string(kSlots)},
      {"deploy", "burn", faas::testing::FunctionLib("burn"), "--max-instances",
       std::to_string(kBurnInstances)}};
  for (faas::testing::FaasdProcess* d :
       {gateway_.get(), alls_[0].get(), alls_[1].get(), alls_[2].get()}) {
    for (const auto& deploy : deploys) {
      auto r = d->Ctl(deploy);
      if (r.exit_code != 0) {
        Log("scale skipped: " + deploy[1] + ": " + r.out + r.err);
        return;
      }
    }
  }
  char title[200];
  std::snprintf(title, sizeof title,
                "Scale, slot-bound: `slot` (sleep %d ms, --max-instances %d per node: %d calls/s "
                "per node at most)",
                kSleepMs, kSlots, kSlots * 1000 / kSleepMs);
  ScalePoints("scale", title, "/function/slot?ms=" + std::to_string(kSleepMs), kScaleClients,
              nullptr);
  ScaleHaproxyServers(kNodes);
  if (!ScaleOurNodes(kNodes, nullptr) || g_stop) {
    return;
  }

  NodeCaps caps;
  if (std::string why = caps.Create(kNodes, kCapCpus); !why.empty()) {
    Log("scale, CPU-capped variant skipped: " + why);
    return;
  }
  if (RestartAlls(&caps) && ScaleOurNodes(kNodes, &caps) && !g_stop) {
    // Settling: a faasd just started inside a 0.4 CPU cap spends its first seconds on more than
    // the calls (the twelfth session's round 1 ran at half the rate of round 2). One unmeasured
    // load on every capped node of both sides, then a wait until the groups are idle, so that
    // work falls before the first point instead of into it.
    const std::string burn = "/function/burn?ms=" + std::to_string(kBurnMs);
    ScaleHaproxyServers(kNodes);
    const double settle_s = opt_.quick ? 3 : 6;
    auto ours =
        ClosedLoop(gateway_->bind_host(), gateway_->http_port(), burn, kCapClients, 0, settle_s);
    auto hap = ClosedLoop("127.0.0.1", haproxy_ports_[kHapScale], burn, kCapClients, 0, settle_s);
    Log("scale capped: settling load " + std::to_string(ours.first) + " / " +
        std::to_string(hap.first) + " calls/s (ours / HAProxy); quiet after " +
        std::to_string(caps.WaitQuiet(kIdleCpus, seconds(opt_.quick ? 30 : 90))) + " s");
    std::snprintf(title, sizeof title,
                  "Scale, CPU-capped: `burn` (%d ms CPU per call, --max-instances %d), each "
                  "node's namespace capped at %.1f CPU",
                  kBurnMs, kBurnInstances, kCapCpus);
    ScalePoints("capscale", title, "/function/burn?ms=" + std::to_string(kBurnMs), kCapClients,
                &caps);
  }
  // Everything back outside the caps (the measures after this one run uncapped), so that the
  // groups are empty when `caps` removes them.
  ScaleHaproxyServers(kNodes);
  ScaleOurNodes(kNodes, nullptr);
  RestartAlls(nullptr);
}

}  // namespace faas::bench
