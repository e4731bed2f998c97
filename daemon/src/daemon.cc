// faasd lifecycle: open the store, start the scheduler, serve HTTP and gRPC, and on SIGTERM drain
// (stop accepting, let in-flight invocations finish within the grace period, stop workers).
#include "faas/daemon/daemon.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/unique_fd.h"
#include "faas/cluster/health.h"
#include "faas/gateway/gateway.h"
#include "faas/gateway/http_server.h"
#include "faas/gateway/shared_rate_limit.h"
#include "faas/sandbox/cgroup.h"
#include "faas/sandbox/network.h"
#include "faas/store/central_ledger.h"
#include "faas/store/nodes.h"
#include "faas/store/queue.h"
#include "faas/store/redis_queue.h"
#include "faas/store/sessions.h"
#include "faas/store/settings.h"
#include "faas/triggers/triggers.h"

#include "console.h"
#include "control_service.h"
#include "deploy.h"
#include "follow.h"
#include "grpc_cq.h"
#include "membership.h"
#include "remote_invoker.h"
#include "roles.h"
#include "tls.h"

namespace faas::daemon {
namespace {

// --function-cpus -1: one CPU fewer than this process may run on (at least 1), so that one
// function, however many instances it runs, always leaves a CPU to the gateway and the others.
double FunctionCpus(double flag) {
  if (flag >= 0) {
    return flag;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return cpus > 1 ? cpus - 1 : 1;
}

// If the machine runs out of memory, the kernel's OOM killer should pick a function, not faasd:
// faasd lowers its own oom_score_adj, and every worker runs at +500 (scheduler/src/
// worker_process.cc; instances forked from a zygote inherit it). Lowering needs
// CAP_SYS_RESOURCE; without it faasd stays where it is (0), still below its workers.
constexpr int kDaemonOomScoreAdj = -500;
void ProtectFromOomKiller() {
  auto log = log::Get("faasd");
  const std::string value = std::to_string(kDaemonOomScoreAdj);
  UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  if (!fd.Valid() ||
      ::write(fd.Get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    const int err = errno;
    auto now = ReadFile("/proc/self/oom_score_adj", 64);
    FAAS_LOG(log, warn, "faasd.oom_score_adj", {"error", std::strerror(err)},
             {"value", now.ok() ? std::atoi(now->c_str()) : 0},
             {"why", "lowering it needs CAP_SYS_RESOURCE; workers still run at +500, above faasd"});
  }
}

// faasd keeps about ten descriptors per process it holds (a zygote, a parked and each warm
// instance of every function: channel, pidfd, log, cgroup files), so a node with a hundred
// functions needs thousands, where a login shell's soft limit is 1024. Raising the soft limit
// to the hard one needs no privilege; instances get their own (sandbox/src/rlimits.cc), and
// nothing here uses select(), whose sets stop at 1024.
void RaiseFileLimit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) {
    return;
  }
  const rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return;
  }
  auto log = log::Get("faasd");
  FAAS_LOG(log, info, "faasd.nofile", {"from", static_cast<uint64_t>(was)},
           {"to", static_cast<uint64_t>(rl.rlim_max)});
}

// --answer-buffer-budget in bytes; 0: an eighth of the host's memory, 8 to 256 MiB.
std::size_t AnswerBufferBudget(const DaemonConfig& config) {
  constexpr uint64_t kMiB = 1u << 20;
  if (config.answer_buffer_budget_mib > 0) {
    return config.answer_buffer_budget_mib * kMiB;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  const uint64_t memory =
      pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  return std::clamp<uint64_t>(memory / 8, 8 * kMiB, 256 * kMiB);
}

}  // namespace

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("address \"" + addr + "\" must be host:port");
  }
  std::string port_s = addr.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_s.c_str(), &end, 10);
  if (port_s.empty() || *end != '\0' || port < 0 || port > 65535) {
    return InvalidArgumentError("address \"" + addr + "\": bad port \"" + port_s + "\"");
  }
  return std::make_pair(addr.substr(0, colon), static_cast<uint16_t>(port));
}

namespace {

// Backlogs on /metrics (docs/metering.md): every queue's messages by state (the async
// invocations' `_async` included), read from the queue when scraped, and each user trigger's
// lag (a Redis stream's consumer-group lag) and deliveries in flight. Queues and triggers are
// named by operators, so their number stays small.
void WireBacklogMetrics(metering::Metrics* metrics, store::Queue* queue,
                        const triggers::TriggerManager* triggers) {
  metrics->SetQueueSource([queue](std::vector<metering::QueueGauge>* out) {
    auto listed = queue->ListQueues();
    if (!listed.ok()) {  // Redis down: no figures this scrape (the log already says why)
      return false;
    }
    for (const store::QueueStats& q : *listed) {
      out->push_back({.queue = q.queue,
                      .ready = q.ready,
                      .delayed = q.delayed,
                      .in_flight = q.in_flight,
                      .dead = q.dead});
    }
    return true;
  });
  metrics->SetTriggerSource([triggers] {
    std::vector<metering::TriggerGauge> out;
    for (const triggers::TriggerStatus& t : triggers->List()) {
      out.push_back({.trigger = t.spec.name, .lag = t.lag, .in_flight = t.in_flight});
    }
    return out;
  });
}

// faas_cluster_nodes{state} on a gateway: the registry's nodes as this gateway sees them. A
// registered `up` node counts as up only while it passes this gateway's health checks, else
// unreachable; draining and dead are the registry's word. When the store cannot be read, the
// health checker's view alone (up, unreachable).
void WireClusterNodeMetrics(metering::Metrics* metrics, store::NodeRegistry* registry,
                            const cluster::HealthChecker* checker) {
  metrics->SetClusterNodeSource([registry, checker] {
    std::map<std::string, uint64_t> out = {{"up", 0}, {"unreachable", 0}};
    std::map<std::string, bool> healthy;
    for (const cluster::NodeHealth& h : checker->Snapshot()) {
      healthy[h.info.id] = h.up;
    }
    auto rows = registry->List();
    if (!rows.ok()) {
      for (const auto& [id, up] : healthy) {
        ++out[up ? "up" : "unreachable"];
      }
      return out;
    }
    out["draining"] = 0;
    out["dead"] = 0;
    for (const store::NodeRecord& r : *rows) {
      if (r.state != store::NodeState::kUp) {
        ++out[std::string(store::NodeStateName(r.state))];
      } else {
        auto it = healthy.find(r.id);
        ++out[it != healthy.end() && it->second ? "up" : "unreachable"];
      }
    }
    return out;
  });
}

std::string DefaultWorkerPath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) {
    return "faas-worker";
  }
  std::string self(buf, static_cast<std::size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "faas-worker";
}

// The admin token: from --admin-token-file, else <data-dir>/admin-token, created when missing
// (256 random bits as hex, mode 0600) so that only root and whoever root lets read it can
// change the platform.
Result<std::string> LoadAdminToken(const DaemonConfig& config) {
  std::string path = config.admin_token_file;
  if (path.empty()) {
    path = config.data_dir + "/admin-token";
    if (::access(path.c_str(), F_OK) != 0) {
      unsigned char raw[32];
      if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
        return ErrnoError(errno, "getrandom", "admin token");
      }
      std::string token;
      for (unsigned char b : raw) {
        static constexpr char kHex[] = "0123456789abcdef";
        token += kHex[b >> 4];
        token += kHex[b & 15];
      }
      mode_t old = ::umask(077);
      Status s = WriteFileAtomic(path, token + "\n");
      ::umask(old);
      FAAS_RETURN_IF_ERROR(s);
      ::chmod(path.c_str(), 0600);
    }
  }
  FAAS_ASSIGN_OR_RETURN(std::string token, ReadFile(path, 4096));
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.size() < 16) {
    return InvalidArgumentError("admin token in " + path + " is shorter than 16 characters");
  }
  return token;
}

// Runs one queue message through its trigger's function. Success is the handler returning 0
// with a status below 500; the ledger row is journaled before Invoke returns.
triggers::DeliveryResult RunQueueDelivery(scheduler::Invoker& sched, const triggers::Delivery& d) {
  scheduler::InvokeRequest ir;
  ir.invocation_id = NewInvocationId();
  ir.method = "POST";
  ir.path = "/";
  ir.body = d.body;
  ir.trigger = "queue";
  ir.queue = d.queue;
  ir.message_id = d.message_id;
  ir.attempt = d.attempt;
  for (const auto& [k, v] : d.headers) {
    std::string name = k;
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    ir.headers.emplace_back(std::move(name), v);
  }
  scheduler::InvokeResult r = sched.Invoke(d.function, std::move(ir));
  if (r.outcome == scheduler::Outcome::kOk && r.status < 500) {
    return {.ok = true, .error = ""};
  }
  if (r.outcome == scheduler::Outcome::kOk) {
    return {.ok = false, .error = "the function answered status " + std::to_string(r.status)};
  }
  gateway::HttpError e = gateway::ToHttpError(r.outcome);
  return {.ok = false, .error = std::string(e.code) + ": " + r.error_message};
}

// Deletes expired async results now and then, off every request path.
class AsyncJanitor {
 public:
  AsyncJanitor(store::Queue* queue, std::chrono::milliseconds retention)
      : thread_([this, queue, retention] {
          std::unique_lock lock(mu_);
          while (!stop_) {
            lock.unlock();
            auto n = queue->ExpireAsync(UnixMillisNow() - retention.count());
            if (!n.ok()) {
              static auto log = log::Get("faasd");
              FAAS_LOG(log, warn, "async.expire_failed", {"error", n.status().ToString()});
            }
            lock.lock();
            wake_.wait_for(lock, std::chrono::minutes(5), [this] { return stop_; });
          }
        }) {}
  ~AsyncJanitor() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// The queue of async invocations, queue triggers and `faasctl queue`: on Redis Streams for a
// gateway given --redis (shared by every gateway: any of them runs the work, a killed one's
// leases are taken over by another), else the embedded SQLite file in --data-dir.
Result<std::unique_ptr<store::Queue>> OpenQueue(const DaemonConfig& config) {
  auto log = log::Get("faasd");
  if (config.role == "gateway" && !config.redis.empty()) {
    // The consumer name is this process's: a restarted gateway is a new consumer, and its
    // predecessor's leases expire and are taken over like any dead gateway's.
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
      host[0] = '\0';
    }
    std::string consumer = "gw-" + std::string(host[0] != '\0' ? host : "host") + "-" +
                           std::to_string(::getpid()) + "-" + NewInvocationId().substr(0, 8);
    Result<std::unique_ptr<store::Queue>> q = store::OpenRedisQueue(
        {.url = config.redis, .consumer = consumer, .async_retention = config.async_retention});
    if (q.ok()) {
      FAAS_LOG(log, info, "faasd.queue", {"backend", "redis"}, {"consumer", consumer});
    }
    return q;
  }
  if (config.role == "gateway") {
    FAAS_LOG(log, warn, "faasd.queue_not_shared", {"dir", config.data_dir},
             {"why",
              "no --redis: async invocations, queue triggers and queues stay in this "
              "gateway's queue.db; other gateways neither see nor run them"});
  }
  return store::Queue::Open(config.data_dir + "/queue.db");
}

constexpr uint32_t kAsyncAttempts = 3;
constexpr uint32_t kCallbackAttempts = 5;

}  // namespace

LocalScheduler::LocalScheduler() = default;
LocalScheduler::~LocalScheduler() = default;

std::unique_ptr<LocalScheduler> StartScheduler(const DaemonConfig& config, store::Ledger* ledger,
                                               metering::Metrics* metrics) {
  auto log = log::Get("faasd");
  auto local = std::make_unique<LocalScheduler>();
  std::string worker = config.worker_path.empty() ? DefaultWorkerPath() : config.worker_path;
  if (::access(worker.c_str(), X_OK) != 0) {
    FAAS_LOG(log, err, "faasd.no_worker", {"path", worker},
             {"hint", "build faas-worker or pass --worker PATH"});
    return nullptr;
  }
  sandbox::CgroupOptions cg_opts;
  if (config.cgroup_mode != "auto") {
    cg_opts.mode = config.cgroup_mode == "v2" ? sandbox::CgroupMode::kV2 : sandbox::CgroupMode::kV1;
  }
  cg_opts.v2_mount = config.cgroup_v2_mount;
  cg_opts.max_memory_bytes =
      config.max_memory_mb != 0 ? config.max_memory_mb << 20 : sandbox::DefaultMaxMemoryBytes();
  cg_opts.max_pids = config.max_pids != 0 ? config.max_pids : sandbox::DefaultMaxPids();
  // Without cgroups at all (not root, controllers not mounted) there is no sandbox to speak of:
  // no kill of an instance's every process, no CPU metering, and the worker's jail needs root
  // too. --unsafe-no-limits does not cover that.
  auto cgroups = sandbox::CgroupRoot::Create(cg_opts);
  if (!cgroups.ok()) {
    FAAS_LOG(log, err, "faasd.cgroups_failed", {"error", cgroups.status().message()},
             {"hint", "faasd needs root and the memory, pids, cpu and cpuacct controllers"});
    return nullptr;
  }
  // Every limit fails closed (docs/sandbox.md): where memory and pids limits cannot be enforced,
  // faasd does not serve unless the operator says so.
  if (!(*cgroups)->EnforcesLimits()) {
    if (!config.unsafe_no_limits) {
      FAAS_LOG(log, err, "faasd.limits_not_enforced", {"error", (*cgroups)->LimitsProblem()},
               {"hint",
                "faasd refuses to run functions without memory and pids limits; to run "
                "without them anyway (never on a shared host), pass --unsafe-no-limits"});
      return nullptr;
    }
    FAAS_LOG(log, warn, "faasd.limits_not_enforced", {"error", (*cgroups)->LimitsProblem()},
             {"why",
              "--unsafe-no-limits: functions run WITHOUT memory and pids limits; one "
              "function can exhaust this machine's memory or pids"});
  }
  metrics->SetLimitsEnforced((*cgroups)->EnforcesLimits());
  if (config.unsafe_no_ledger) {
    FAAS_LOG(log, warn, "faasd.no_ledger",
             {"why", "--unsafe-no-ledger: nothing is recorded or billed"});
  }
  FAAS_LOG(log, info, "faasd.cgroups",
           {"mode", (*cgroups)->mode() == sandbox::CgroupMode::kV2 ? "v2" : "v1"},
           {"limits", (*cgroups)->EnforcesLimits()}, {"dir", (*cgroups)->Dirs().front()},
           {"max_memory_bytes", cg_opts.max_memory_bytes}, {"max_pids", cg_opts.max_pids});
  // network: outbound needs slirp4netns; --egress-allow was checked by the flag parser.
  std::string slirp = config.slirp4netns.empty() ? sandbox::FindSlirp4netns() : config.slirp4netns;
  if (slirp.empty() || ::access(slirp.c_str(), X_OK) != 0) {
    FAAS_LOG(log, warn, "faasd.no_slirp4netns", {"path", slirp},
             {"effect", "functions with network: outbound are refused"},
             {"hint", "apt-get install slirp4netns"});
  }
  local->sched = std::make_unique<scheduler::Scheduler>(
      scheduler::SchedulerOptions{.worker_path = worker,
                                  .init_timeout = config.init_timeout,
                                  .answer_buffer_budget = AnswerBufferBudget(config),
                                  .warm_pool = config.warm_pool,
                                  .pipeline_depth = config.pipeline_depth,
                                  .cgroups = cgroups->get(),
                                  .spare_cgroups = config.spare_cgroups,
                                  .zygotes = config.zygotes,
                                  .park_instances = config.park_instances,
                                  .parked_fresh = config.parked_fresh,
                                  .instance_sched_batch = config.instance_sched_batch,
                                  .function_cpus = FunctionCpus(config.function_cpus),
                                  .slirp4netns = slirp,
                                  .egress_allow = config.egress_allow,
                                  .ledger = config.unsafe_no_ledger ? nullptr : ledger,
                                  .metrics = metrics,
                                  .prices = {.per_cpu_ms_micros = config.price_per_cpu_ms,
                                             .per_request_micros = config.price_per_request,
                                             .unit = config.currency_unit}});
  scheduler::Scheduler& sched = *local->sched;
  metrics->SetInstanceSource([&sched] {
    std::vector<metering::InstanceGauge> out;
    for (const auto& [name, st] : sched.AllStats()) {
      out.push_back(
          {name, st.idle, st.busy, st.waiting, st.zygote_pid > 0 ? 1u : 0u, st.parked, st.evicted});
    }
    return out;
  });
  local->cgroups = std::move(*cgroups);
  return local;
}

Result<CentralLedger> StartCentralLedger(const DaemonConfig& config, store::Ledger* ledger,
                                         metering::Metrics* metrics) {
  CentralLedger out;
  if (!config.store.starts_with("postgres") || config.unsafe_no_ledger) {
    return out;
  }
  // Connects lazily: PostgreSQL may be down now, and the shipper retries.
  FAAS_ASSIGN_OR_RETURN(out.central, store::PgLedger::Open(config.store));
  out.shipper = std::make_unique<store::LedgerShipper>(ledger, out.central.get());
  out.central->SetSyncHook([s = out.shipper.get()] { return s->Flush(); });
  metrics->SetLedgerSource([s = out.shipper.get()] { return s->UnshippedRows(); });
  return out;
}

std::optional<ListenAddresses> ParseListenAddresses(const DaemonConfig& config) {
  auto http_addr = SplitHostPort(config.http);
  auto grpc_addr = SplitHostPort(config.grpc);
  if (!http_addr.ok() || !grpc_addr.ok()) {
    auto log = log::Get("faasd");
    FAAS_LOG(log, err, "faasd.bad_address",
             {"error", (http_addr.ok() ? grpc_addr.status() : http_addr.status()).message()});
    return std::nullopt;
  }
  return ListenAddresses{.http = std::move(*http_addr), .grpc = std::move(*grpc_addr)};
}

std::optional<Stores> OpenStores(const DaemonConfig& config, metering::Metrics* metrics) {
  auto log = log::Get("faasd");
  auto registry = store::OpenRegistry(config.store, config.data_dir);
  if (!registry.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"dir", config.data_dir},
             {"backend",
              config.store.empty() ? "sqlite" : config.store.substr(0, config.store.find(':'))},
             {"error", registry.status().message()});
    return std::nullopt;
  }
  auto ledger = store::Ledger::Open(config.data_dir);
  if (!ledger.ok()) {
    FAAS_LOG(log, err, "faasd.ledger_failed", {"dir", config.data_dir},
             {"error", ledger.status().message()});
    return std::nullopt;
  }
  auto central = StartCentralLedger(config, ledger->get(), metrics);
  if (!central.ok()) {
    FAAS_LOG(log, err, "faasd.ledger_failed", {"error", central.status().message()});
    return std::nullopt;
  }
  return Stores{.registry = std::move(*registry),
                .ledger = std::move(*ledger),
                .central = std::move(*central)};
}

int RunDaemon(const DaemonConfig& config) {
  if (!log::SetLevels(config.log_level)) {
    std::fprintf(stderr, "faasd: bad --log-level \"%s\"\n", config.log_level.c_str());
    return 2;
  }
  auto log = log::Get("faasd");
  // Signals are taken synchronously by this thread (sigwait); every thread started later
  // inherits the mask. A dead peer socket is an EPIPE error, never a SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ProtectFromOomKiller();
  RaiseFileLimit();
  if (config.role == "node") {
    return RunNode(config, stop_signals);
  }

  std::optional<ListenAddresses> addrs = ParseListenAddresses(config);
  if (!addrs) {
    return 2;
  }
  metering::Metrics metrics;
  // Destroyed after the scheduler: the shipper's final attempt at shutdown.
  std::optional<Stores> stores = OpenStores(config, &metrics);
  if (!stores) {
    return 1;
  }
  // The node registry (PostgreSQL only): where a gateway finds its nodes, and what `faasctl
  // node list|drain` reads and changes.
  std::unique_ptr<store::NodeRegistry> node_registry;
  if (config.store.starts_with("postgres")) {
    auto opened = store::OpenNodeRegistry(config.store);
    if (!opened.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", opened.status().message()});
      return 1;
    }
    node_registry = std::move(*opened);
  }
  std::unique_ptr<NodeJanitor> node_janitor;
  // The cluster's certificates (--tls-*): for dialling nodes and a control API off loopback.
  auto loaded_tls = LoadClusterTls(config);
  if (!loaded_tls.ok()) {
    FAAS_LOG(log, err, "faasd.tls_failed", {"error", loaded_tls.status().message()});
    return 2;
  }
  const std::shared_ptr<const ClusterTls> tls = *loaded_tls;
  // The control API's server. On a gateway, its completion queue is also where every
  // invocation's call to a node runs: that queue's one thread is then the only one that polls
  // faasd's gRPC sockets, and the control API's own threads only wait for their calls (gRPC
  // makes a server with a polled queue "hybrid"; docs/design/0038-one-completion-queue.md).
  grpc::ServerBuilder builder;
  std::unique_ptr<cq::Runner<grpc::ServerCompletionQueue>> grpc_runner;
  if (config.role == "gateway") {
    grpc_runner =
        std::make_unique<cq::Runner<grpc::ServerCompletionQueue>>(builder.AddCompletionQueue());
  }
  // Where invocations run: this machine's scheduler (all), or the nodes (gateway).
  std::unique_ptr<LocalScheduler> local;
  std::unique_ptr<LocalRuntime> local_runtime;
  std::unique_ptr<cluster::NodeSource> nodes;
  std::unique_ptr<RemoteInvoker> remote;
  Runtime* runtime = nullptr;
  scheduler::Invoker* invoker = nullptr;
  auto functions = stores->registry->ListFunctions();
  if (!functions.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", functions.status().message()});
    return 1;
  }
  if (config.role == "gateway") {
    auto source = MakeNodeSource(config, node_registry.get());
    auto balancer = MakeNodeBalancer(config);
    if (!source.ok() || !balancer.ok()) {
      FAAS_LOG(log, err, "faasd.bad_cluster_flags",
               {"error", (source.ok() ? balancer.status() : source.status()).message()});
      return 2;
    }
    nodes = std::move(*source);
    // What nodes ask of every call (CheckRoleFlags made sure the store is PostgreSQL).
    auto secret = node_registry->NodeSecret();
    if (!secret.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", secret.status().message()});
      return 1;
    }
    remote = std::make_unique<RemoteInvoker>(
        grpc_runner->queue(), nodes.get(), std::move(*balancer), stores->registry.get(), *secret,
        config.unsafe_no_ledger ? nullptr : stores->ledger.get(), &metrics, tls);
    if (Status s = remote->LoadFunctions(); !s.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", s.message()});
      return 1;
    }
    if (node_registry != nullptr) {
      // Declares silent nodes dead; only the gateway holding the janitor lock does.
      node_janitor = std::make_unique<NodeJanitor>(node_registry.get());
      node_janitor->Start();
    }
    runtime = remote.get();
    invoker = remote.get();
  } else {
    local = StartScheduler(config, stores->ledger.get(), &metrics);
    if (local == nullptr) {
      return 1;
    }
    for (const auto& rec : *functions) {
      local->sched->SetFunction(SpecFor(*stores->registry, rec.latest));
    }
    local_runtime = std::make_unique<LocalRuntime>(local->sched.get(), stores->registry.get());
    runtime = local_runtime.get();
    invoker = local->sched.get();
  }

  auto admin_token = LoadAdminToken(config);
  if (!admin_token.ok()) {
    FAAS_LOG(log, err, "faasd.admin_token_failed", {"error", admin_token.status().ToString()});
    return 1;
  }
  auto queue = OpenQueue(config);
  if (!queue.ok()) {
    FAAS_LOG(log, err, "faasd.queue_failed", {"dir", config.data_dir}, {"redis", config.redis},
             {"error", queue.status().message()});
    return 1;
  }
  // Where trigger definitions live: with the registry. On PostgreSQL every gateway shares them
  // and follows their changes (below); on SQLite they are in queue.db, as the embedded queues
  // (docs/design/0029-trigger-definitions.md). Never in Redis: a flush must not lose them.
  std::unique_ptr<store::SettingsStore> pg_settings;
  store::SettingsStore* trigger_settings = (*queue)->Settings();
  if (config.store.starts_with("postgres")) {
    auto opened = store::OpenPgSettings(config.store);
    if (!opened.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", opened.status().message()});
      return 1;
    }
    pg_settings = std::move(*opened);
    trigger_settings = pg_settings.get();
  }
  std::vector<Cidr> callback_allow;
  for (const std::string& range : config.callback_allow) {
    Result<Cidr> c = ParseCidr(range);
    if (!c.ok()) {  // the flag parser checked it already; a config path that did not is a bug
      FAAS_LOG(log, err, "faasd.bad_callback_allow", {"error", c.status().message()});
      return 2;
    }
    callback_allow.push_back(*c);
  }
  if (!callback_allow.empty()) {
    std::string ranges;
    for (const Cidr& c : callback_allow) {
      ranges += (ranges.empty() ? "" : ",") + c.ToString();
    }
    FAAS_LOG(log, warn, "faasd.callback_allow", {"ranges", ranges},
             {"why", "async callbacks may reach these internal ranges"});
  }
  gateway::AsyncInvocations async({.invoker = invoker,
                                   .queue = queue->get(),
                                   .metrics = &metrics,
                                   .result_bytes = 256u << 10,
                                   .callback_allow = std::move(callback_allow),
                                   .idempotency_ttl = config.async_retention});
  // --redis (or --redis-limits, a Redis for the counters alone): rate limits counted once for
  // all gateways, with a per-gateway share as fallback
  // (docs/design/0023-shared-limits-and-retries.md). Outlives `gw`.
  std::unique_ptr<gateway::SharedRateLimiter> shared_limits;
  const std::string& limits_redis =
      config.redis_limits.empty() ? config.redis : config.redis_limits;
  if (config.role == "gateway" && !limits_redis.empty()) {
    auto created = gateway::SharedRateLimiter::Create({.redis_url = limits_redis});
    if (!created.ok()) {  // CheckRoleFlags parsed the URL already
      FAAS_LOG(log, err, "faasd.bad_redis", {"error", created.status().message()});
      return 2;
    }
    shared_limits = std::move(*created);
    if (Status s = shared_limits->Start(); !s.ok()) {
      FAAS_LOG(log, warn, "faasd.redis_unavailable", {"error", s.message()});
    }
  }
  gateway::Gateway gw({.invoker = invoker,
                       .metrics = &metrics,
                       .async = &async,
                       .queue = queue->get(),
                       .access_log = config.access_log,
                       .limiter = shared_limits.get(),
                       .node_id = local != nullptr ? NodeId(config) : ""});
  auto keys = BuildKeyTable(*stores->registry);
  if (!keys.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", keys.status().message()});
    return 1;
  }
  gw.SetKeys(*keys);
  auto routes = stores->registry->ListRoutes();
  if (!routes.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", routes.status().message()});
    return 1;
  }
  gw.SetRoutes(BuildRouter(*routes));
  gateway::ServerOptions http_opts;
  http_opts.host = addrs->http.first;
  http_opts.port = addrs->http.second;
  http_opts.max_connections = config.max_connections;
  http_opts.read_timeout = config.http_read_timeout;
  http_opts.write_timeout = config.http_write_timeout;
  http_opts.max_connections_per_ip = config.max_connections_per_ip;
  http_opts.threads = config.http_threads;
  gateway::HttpServer http(http_opts, [&gw](gateway::HttpRequest& q, const gateway::Responder& r) {
    gw.HandleAsync(q, r);
  });
  gw.SetServerRejections([&http] { return http.GetRejections(); });

  // Queue triggers (user-defined), and the internal triggers that run async invocations and
  // deliver their callbacks, on the same machinery.
  triggers::TriggerManager user_triggers(
      {.queue = queue->get(),
       .settings = trigger_settings,
       .invoke = [invoker](const triggers::Delivery& d) { return RunQueueDelivery(*invoker, d); },
       .consumer_name = "",
       .settings_kind = "trigger"});
  if (Status s = user_triggers.Start(); !s.ok()) {
    FAAS_LOG(log, err, "faasd.triggers_failed", {"error", s.ToString()});
    return 1;
  }
  triggers::TriggerManager internal_triggers(
      {.queue = queue->get(),
       .invoke =
           [&async](const triggers::Delivery& d) {
             triggers::DeliveryResult out;
             if (d.queue == gateway::kAsyncQueue) {
               out.ok =
                   async.Run(d.body, d.headers, d.attempt, d.attempt >= kAsyncAttempts, &out.error);
             } else {
               out.ok =
                   async.DeliverCallback(d.headers, d.attempt >= kCallbackAttempts, &out.error);
             }
             return out;
           },
       .consumer_name = "",
       .settings_kind = "internal"});
  {
    // Defined here, not stored: flags may change between runs. The trigger extends a lease
    // every visibility / 3 while its invocation runs, so a short visibility covers any function
    // timeout (faasd releases stale SQLite leases at start; Redis ones expire).
    triggers::TriggerSpec async_spec;
    async_spec.name = "async";
    async_spec.function = "async";
    async_spec.source = "embedded";
    async_spec.queue = gateway::kAsyncQueue;
    async_spec.concurrency = config.async_concurrency;
    async_spec.max_attempts = kAsyncAttempts;
    async_spec.backoff_min = std::chrono::seconds(1);
    async_spec.backoff_max = std::chrono::seconds(30);
    async_spec.visibility_timeout = config.queue_visibility;
    triggers::TriggerSpec callback_spec = async_spec;
    callback_spec.name = "callbacks";
    callback_spec.queue = gateway::kCallbackQueue;
    callback_spec.concurrency = 4;
    callback_spec.max_attempts = kCallbackAttempts;
    callback_spec.backoff_max = std::chrono::seconds(60);
    callback_spec.visibility_timeout = std::chrono::minutes(1);
    for (auto* spec : {&async_spec, &callback_spec}) {
      if (store::SettingsStore* stored = (*queue)->Settings(); stored != nullptr) {
        stored->DeleteSetting("internal", spec->name).IgnoreError();  // absent on first start
      }
      if (Status s = internal_triggers.Add(*spec); !s.ok()) {
        FAAS_LOG(log, err, "faasd.async_failed", {"error", s.ToString()});
        return 1;
      }
    }
  }
  AsyncJanitor janitor(queue->get(), config.async_retention);
  WireBacklogMetrics(&metrics, queue->get(), &user_triggers);
  if (auto* checker = dynamic_cast<cluster::HealthChecker*>(nodes.get());
      checker != nullptr && node_registry != nullptr) {
    WireClusterNodeMetrics(&metrics, node_registry.get(), checker);
  }

  // A gateway caches functions, routes, keys, nodes and trigger definitions from the shared
  // store, and follows what other gateways and nodes change there
  // (docs/design/0022-change-notification.md). Declared after the triggers, so it stops first.
  // `--role all` on PostgreSQL follows the same notices for routes, keys and triggers, so one
  // faasd's `trigger add` runs at every faasd sharing the store; its functions are still read
  // at start (its scheduler knows only those; docs/cluster.md).
  std::unique_ptr<RegistryFollower> follower;
  if (config.role == "gateway" || (config.role == "all" && config.store.starts_with("postgres"))) {
    store::Registry* reg = stores->registry.get();
    auto* checker = dynamic_cast<cluster::HealthChecker*>(nodes.get());  // null with --nodes
    follower = std::make_unique<RegistryFollower>(RegistryFollowerOptions{
        .store = config.store,
        .resync_every = config.registry_resync,
        .functions = remote == nullptr ? std::function<Status()>()
                                       : [&remote] { return remote->LoadFunctions(); },
        .routes = [reg, &gw]() -> Status {
          FAAS_ASSIGN_OR_RETURN(std::vector<store::Route> stored, reg->ListRoutes());
          gw.SetRoutes(BuildRouter(stored));
          return OkStatus();
        },
        .keys = [reg, &gw]() -> Status {
          FAAS_ASSIGN_OR_RETURN(std::shared_ptr<const gateway::KeyTable> table,
                                BuildKeyTable(*reg));
          gw.SetKeys(std::move(table));
          return OkStatus();
        },
        .nodes = checker == nullptr ? std::function<Status()>()
                                    : [checker] { return checker->Refresh(); },
        .triggers = [&user_triggers]() -> Status {
          Status s = user_triggers.Resync();
          // FailedPrecondition: stopped for shutdown, nothing left to follow.
          return s.code() == StatusCode::kFailedPrecondition ? OkStatus() : s;
        }});
    if (Status s = follower->Start(); !s.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", s.message()});
      return 1;
    }
  }

  auto http_port = http.Start();
  if (!http_port.ok()) {
    FAAS_LOG(log, err, "faasd.http_failed", {"error", http_port.status().message()});
    return 1;
  }

  ControlService control(
      {.registry = stores->registry.get(),
       .scheduler = runtime,
       .ledger = stores->ledger.get(),
       .ledger_reader = stores->central.central.get(),
       .currency_unit = config.currency_unit,
       .routes_sink =
           [&gw](std::shared_ptr<const gateway::Router> r) { gw.SetRoutes(std::move(r)); },
       .keys_sink = [&gw](std::shared_ptr<const gateway::KeyTable> k) { gw.SetKeys(std::move(k)); },
       .queue = queue->get(),
       .triggers = &user_triggers,
       .async = &async,
       .admin_token = *admin_token,
       .nodes = node_registry.get(),
       .node_stats = remote == nullptr ? nullptr : std::function([r = remote.get()] {
         return r->NodeStats();
       })});
  int grpc_port = 0;
  if (tls == nullptr && !IsLoopbackHost(addrs->grpc.first)) {
    // Only with --insecure-cluster (CheckRoleFlags refuses it otherwise): say so where operators
    // look, since every faasctl call now carries the admin token in the clear.
    FAAS_LOG(log, warn, "faasd.control_api_plaintext", {"addr", config.grpc},
             {"why",
              "--insecure-cluster: the control API serves without TLS off loopback; the "
              "admin token crosses the network in plaintext"});
  }
  // TLS off loopback when the cluster's certificate is given (faasctl --tls-ca verifies it).
  builder.AddListeningPort(config.grpc, ControlServerCredentials(tls.get(), config.grpc),
                           &grpc_port);
  builder.RegisterService(&control);
  builder.SetMaxReceiveMessageSize(8 << 20);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    FAAS_LOG(log, err, "faasd.grpc_failed", {"addr", config.grpc},
             {"error", "cannot listen (address in use or invalid)"});
    http.Stop();
    return 1;
  }

  // The web console at /console/ reads and changes through the control API just built. On a
  // PostgreSQL store its sessions are rows there, so every gateway honours them (and a sign-out
  // on one ends them on all); on SQLite they stay in this process's memory.
  std::unique_ptr<store::SessionStore> console_sessions;
  if (config.store.starts_with("postgres")) {
    auto opened = store::OpenPgSessions(config.store);
    if (!opened.ok()) {
      FAAS_LOG(log, err, "faasd.store_failed", {"error", opened.status().message()});
      http.Stop();
      return 1;
    }
    console_sessions = std::move(*opened);
  }
  Console console({.admin_token = *admin_token,
                   .control = grpc_server->InProcessChannel(grpc::ChannelArguments()),
                   .session_store = std::move(console_sessions)});
  gw.SetConsole(console.Handler());

  std::string http_bound = addrs->http.first + ":" + std::to_string(*http_port);
  std::string grpc_bound = addrs->grpc.first + ":" + std::to_string(grpc_port);
  gw.SetReady(true);
  if (!config.ready_file.empty()) {
    std::string json = "{\"http\":\"" + http_bound + "\",\"grpc\":\"" + grpc_bound +
                       "\",\"pid\":" + std::to_string(::getpid()) + "}\n";
    Status s = WriteFileAtomic(config.ready_file, json);
    if (!s.ok()) {
      FAAS_LOG(log, warn, "faasd.ready_file_failed", {"error", s.message()});
    }
  }
  FAAS_LOG(log, info, "faasd.ready", {"role", config.role}, {"http", http_bound},
           {"grpc", grpc_bound}, {"console", "http://" + http_bound + "/console/"},
           {"data_dir", config.data_dir}, {"functions", functions->size()},
           {"routes", routes->size()}, {"pid", ::getpid()},
           {"admin_token", config.admin_token_file.empty() ? config.data_dir + "/admin-token"
                                                           : config.admin_token_file});

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  FAAS_LOG(log, info, "faasd.draining", {"signal", sig},
           {"delay_ms", static_cast<int64_t>(config.drain_delay.count())},
           {"grace_ms", static_cast<int64_t>(config.shutdown_grace.count())});
  gw.SetReady(false);
  if (config.drain_delay.count() > 0) {
    // Still serving, /readyz 503: load balancers see it and stop sending work before the
    // listener closes (closed at once, their probes would only see connections refused).
    struct timespec wait = {static_cast<time_t>(config.drain_delay.count() / 1000),
                            static_cast<long>((config.drain_delay.count() % 1000) * 1'000'000)};
    siginfo_t info;
    if (sigtimedwait(&stop_signals, &info, &wait) > 0) {
      FAAS_LOG(log, info, "faasd.drain_delay_cut", {"signal", info.si_signo});
    }
  }
  auto deadline = std::chrono::system_clock::now() + config.shutdown_grace;
  auto left = [&deadline] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::system_clock::now()));
  };
  // One grace for everything, HTTP invocations included. HttpServer::Drain returns only once
  // every handler has answered, and a handler waits for its worker, so the HTTP drain runs beside
  // the rest: the scheduler's shutdown, at the deadline, kills what still runs, which ends those
  // handlers. (Drained one after the other, a 20 s invocation kept faasd 20 s past a 500 ms
  // grace.) Calls still queued for an instance when the scheduler stops answer shutting_down.
  std::thread http_drain([&http, &config] { http.Drain(config.shutdown_grace); });
  grpc_server->Shutdown(deadline);
  // Deliveries still running after the grace stay unacknowledged and run again after restart.
  user_triggers.Stop(left());
  internal_triggers.Stop(left());
  if (local != nullptr) {
    local->sched->Shutdown(left());
  }
  http_drain.join();
  // Nothing scrapes /metrics any more; the sources point at what is about to go.
  metrics.SetQueueSource(nullptr);
  metrics.SetTriggerSource(nullptr);
  metrics.SetClusterNodeSource(nullptr);
  gw.SetConsole(nullptr);
  if (!config.ready_file.empty()) {
    ::unlink(config.ready_file.c_str());
  }
  FAAS_LOG(log, info, "faasd.stopped");
  return 0;
}

}  // namespace faas::daemon
