#include "roles.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/unique_fd.h"
#include "faas/gateway/errors.h"
#include "faas/gateway/http_server.h"
#include "faas/redis/client.h"

#include "deploy.h"
#include "follow.h"
#include "membership.h"
#include "node_service.h"
#include "tls.h"

namespace faas::daemon {
namespace {

bool IsPostgres(std::string_view store) {
  return store.starts_with("postgres://") || store.starts_with("postgresql://");
}

// The node's busy share for /readyz: instances running or waiting, over its CPUs (a node whose
// every CPU has a running invocation is at 1; queued calls take it above).
double NodeLoad(const scheduler::Scheduler& sched) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  uint64_t busy = 0;
  for (const auto& [name, st] : sched.AllStats()) {
    busy += st.busy + st.waiting;
  }
  return static_cast<double>(busy) / std::max(1, cpus);
}

// A node's HTTP server: health and metrics only; functions are served over NodeService.
void NodeHttp(const gateway::HttpRequest& req, gateway::HttpResponse& res, bool ready,
              const scheduler::Scheduler& sched, const metering::Metrics& metrics) {
  if (req.method == "GET" && req.path == "/healthz") {
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = "{\"status\":\"ok\"}\n";
  } else if (req.method == "GET" && req.path == "/readyz" && ready) {
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = "{\"status\":\"ready\",\"load\":" + std::to_string(NodeLoad(sched)) + "}\n";
  } else if (req.method == "GET" && req.path == "/readyz") {
    res = gateway::MakeErrorResponse(503, "not_ready", "this node is starting or draining",
                                     NewInvocationId());
  } else if (req.method == "GET" && req.path == "/metrics") {
    res.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    res.body = metrics.Render();
  } else {
    res = gateway::MakeErrorResponse(
        404, "route_not_found",
        "a node serves only /healthz, /readyz and /metrics; invoke functions through a gateway",
        NewInvocationId());
  }
}

}  // namespace

Status CheckRoleFlags(const DaemonConfig& c) {
  std::string problems;
  auto add = [&problems](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  if (c.role != "all" && !IsPostgres(c.store)) {
    add("--role " + c.role +
        " needs --store postgres://... (the registry gateways and nodes share)");
  }
  if (c.role != "gateway" && !c.nodes.empty()) {
    add("--nodes is for --role gateway");
  }
  if (c.role != "gateway" && !c.balancer.empty()) {
    add("--balancer is for --role gateway");
  }
  if (c.role != "node" && !c.advertise.empty()) {
    add("--advertise is for --role node");
  }
  if (c.role != "gateway" && !c.redis.empty()) {
    add("--redis is for --role gateway");
  }
  if (c.role != "gateway" && !c.redis_limits.empty()) {
    add("--redis-limits is for --role gateway");
  }
  if (!c.redis.empty()) {
    if (auto r = redis::ParseRedisUrl(c.redis); !r.ok()) {
      add("--redis " + r.status().message());
    }
  }
  if (!c.redis_limits.empty()) {
    if (auto r = redis::ParseRedisUrl(c.redis_limits); !r.ok()) {
      add("--redis-limits " + r.status().message());
    }
  }
  if (c.role == "gateway" && !c.node_id.empty()) {
    add("--node-id is for --role node or all");
  }
  if (!c.balancer.empty()) {
    if (auto b = cluster::MakeBalancer(c.balancer); !b.ok()) {
      add("--balancer: " + b.status().message());
    }
  }
  if (!c.advertise.empty() && !SplitHostPort(c.advertise).ok()) {
    add("--advertise \"" + c.advertise + "\" must be host:port");
  }
  if (!c.nodes.empty()) {
    if (auto nodes = ParseNodes(c.nodes); !nodes.ok()) {
      add(nodes.status().message());
    }
  }
  const int tls_files = int{!c.tls_ca.empty()} + int{!c.tls_cert.empty()} + int{!c.tls_key.empty()};
  if (tls_files != 0 && tls_files != 3) {
    add("--tls-ca, --tls-cert and --tls-key go together (all three or none)");
  }
  if (c.role != "gateway" && !c.tls_node_name.empty()) {
    add("--tls-node-name is for --role gateway");
  }
  if (tls_files != 0 && c.insecure_cluster) {
    add("--insecure-cluster and --tls-* contradict each other");
  }
  // Nodes accept invocations only from gateways (docs/design/0028-cluster-tls.md): off loopback
  // that takes certificates, unless the operator says in so many words that the network is
  // trusted.
  if (c.role == "node" && tls_files == 0 && !c.insecure_cluster) {
    auto grpc = SplitHostPort(c.grpc);
    if (grpc.ok() && !IsLoopbackHost(grpc->first)) {
      add("--role node on a non-loopback --grpc (" + c.grpc +
          ") needs --tls-ca, --tls-cert and --tls-key (make them with infra/cluster-certs.sh), "
          "or --insecure-cluster on a network only gateways can reach");
    }
  }
  // The control API takes the admin token with every call: off loopback in plaintext anyone on
  // the path reads it (and then owns every function). Same rule as a node's: certificates, or
  // --insecure-cluster for a network the operator vouches for; loopback stays plaintext.
  if (c.role != "node" && tls_files == 0 && !c.insecure_cluster) {
    auto grpc = SplitHostPort(c.grpc);
    if (grpc.ok() && !IsLoopbackHost(grpc->first)) {
      add("--role " + c.role + " with the control API on a non-loopback --grpc (" + c.grpc +
          ") would send the admin token in plaintext: give --tls-ca, --tls-cert and --tls-key "
          "(make them with infra/cluster-certs.sh; faasctl --tls-ca verifies them), bind "
          "--grpc to 127.0.0.1, or pass --insecure-cluster on a network you trust");
    }
  }
  return problems.empty() ? OkStatus() : InvalidArgumentError(problems);
}

std::string NodeId(const DaemonConfig& config) {
  if (!config.node_id.empty()) {
    return config.node_id;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    return "node";
  }
  return host;
}

Result<std::vector<cluster::NodeInfo>> ParseNodes(std::string_view flag) {
  std::vector<cluster::NodeInfo> out;
  while (!flag.empty()) {
    std::size_t comma = flag.find(',');
    std::string_view entry = flag.substr(0, comma);
    flag = comma == std::string_view::npos ? std::string_view() : flag.substr(comma + 1);
    const std::size_t eq = entry.find('='), at = entry.find('@');
    const auto bad = [&entry](const std::string& why) {
      return InvalidArgumentError("--nodes entry \"" + std::string(entry) + "\": " + why +
                                  " (want id=grpc_host:port@http_host:port)");
    };
    if (eq == std::string_view::npos || eq == 0 || at == std::string_view::npos || at < eq) {
      return bad("malformed");
    }
    cluster::NodeInfo n;
    n.id = std::string(entry.substr(0, eq));
    n.address = std::string(entry.substr(eq + 1, at - eq - 1));
    n.http_address = std::string(entry.substr(at + 1));
    if (!SplitHostPort(n.address).ok() || !SplitHostPort(n.http_address).ok()) {
      return bad("addresses must be host:port");
    }
    for (const cluster::NodeInfo& other : out) {
      if (other.id == n.id) {
        return bad("node id \"" + n.id + "\" appears twice");
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

Result<std::unique_ptr<cluster::NodeSource>> MakeNodeSource(const DaemonConfig& config,
                                                            store::NodeRegistry* registered) {
  FAAS_ASSIGN_OR_RETURN(std::vector<cluster::NodeInfo> nodes, ParseNodes(config.nodes));
  if (!nodes.empty()) {
    return std::unique_ptr<cluster::NodeSource>(
        std::make_unique<cluster::StaticNodes>(std::move(nodes)));
  }
  if (registered == nullptr) {
    return FailedPreconditionError(
        "--role gateway finds its nodes in the store's node registry (PostgreSQL), or takes "
        "--nodes id=grpc_host:port@http_host:port,...");
  }
  return MakeGatewayNodeSource(registered);
}

Result<std::unique_ptr<cluster::Balancer>> MakeNodeBalancer(const DaemonConfig& config) {
  return cluster::MakeBalancer(config.balancer.empty() ? "bounded-hash" : config.balancer);
}

int RunNode(const DaemonConfig& config, const sigset_t& stop_signals) {
  auto log = log::Get("faasd");
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
  auto node_registry = store::OpenNodeRegistry(config.store);
  if (!node_registry.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", node_registry.status().message()});
    return 1;
  }
  // Gateways present this with every call; the node serves nobody else.
  auto secret = (*node_registry)->NodeSecret();
  if (!secret.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", secret.status().message()});
    return 1;
  }
  auto tls = LoadClusterTls(config);
  if (!tls.ok()) {
    FAAS_LOG(log, err, "faasd.tls_failed", {"error", tls.status().message()});
    return 2;
  }
  std::unique_ptr<LocalScheduler> local = StartScheduler(config, stores->ledger.get(), &metrics);
  if (local == nullptr) {
    return 1;
  }
  scheduler::Scheduler& sched = *local->sched;
  // Every function's latest version now; versions deployed later are loaded when a gateway
  // first asks for them (NodeService).
  auto functions = stores->registry->ListFunctions();
  if (!functions.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", functions.status().message()});
    return 1;
  }
  for (const auto& rec : *functions) {
    sched.SetFunction(SpecFor(*stores->registry, rec.latest));
  }
  const std::string node_id = NodeId(config);
  auto node = NodeServer::Start(config.grpc, {.scheduler = &sched,
                                              .registry = stores->registry.get(),
                                              .node_id = node_id,
                                              .secret = *secret,
                                              .tls = *tls});
  if (!node.ok()) {
    FAAS_LOG(log, err, "faasd.grpc_failed", {"addr", config.grpc},
             {"error", node.status().message()});
    return 1;
  }
  // Deploy notices: each new version's library is fetched into the cache now, not by its first
  // call (docs/design/0022-change-notification.md).
  DeployPrefetcher prefetcher(config.store, stores->registry.get());
  if (Status s = prefetcher.Start(); !s.ok()) {
    FAAS_LOG(log, warn, "faasd.prefetch_failed", {"error", s.message()});
  }
  std::atomic<bool> ready{false};
  gateway::ServerOptions http_opts;
  http_opts.host = addrs->http.first;
  http_opts.port = addrs->http.second;
  http_opts.threads = 1;
  http_opts.read_timeout = config.http_read_timeout;
  http_opts.write_timeout = config.http_write_timeout;
  gateway::HttpServer http(http_opts, [&](gateway::HttpRequest& q, gateway::HttpResponse& r) {
    NodeHttp(q, r, ready.load(), sched, metrics);
  });
  auto http_port = http.Start();
  if (!http_port.ok()) {
    FAAS_LOG(log, err, "faasd.http_failed", {"error", http_port.status().message()});
    return 1;
  }
  const std::string http_bound = addrs->http.first + ":" + std::to_string(*http_port);
  const std::string grpc_bound = addrs->grpc.first + ":" + std::to_string((*node)->port());
  const std::string advertise = config.advertise.empty() ? grpc_bound : config.advertise;
  ready = true;
  if (!config.ready_file.empty()) {
    std::string json = "{\"role\":\"node\",\"node_id\":\"" + JsonEscape(node_id) +
                       "\",\"http\":\"" + http_bound + "\",\"grpc\":\"" + grpc_bound +
                       "\",\"advertise\":\"" + JsonEscape(advertise) +
                       "\",\"pid\":" + std::to_string(::getpid()) + "}\n";
    if (Status s = WriteFileAtomic(config.ready_file, json); !s.ok()) {
      FAAS_LOG(log, warn, "faasd.ready_file_failed", {"error", s.message()});
    }
  }
  // Join the cluster: gateways find this node in the registry and check /readyz themselves.
  // Capacity is in the unit of the load /readyz reports (instances busy or waiting per CPU).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int ncpu = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  const std::string advertise_host =
      SplitHostPort(advertise).ok() ? SplitHostPort(advertise)->first : addrs->http.first;
  NodeMembership membership(
      node_registry->get(),
      {.self = {.id = node_id,
                .address = advertise,
                .http_address = advertise_host + ":" + std::to_string(*http_port),
                .capacity = static_cast<double>(std::max(1, ncpu))},
       .load = [&sched] { return NodeLoad(sched); },
       // `faasctl node drain ID`: drain as on SIGTERM (the signal wait below sees it).
       .on_drain = [] { ::kill(::getpid(), SIGTERM); },
       // Nothing to give up yet: a node acknowledges no queue work of its own (queues stay on
       // the gateways' embedded store until they move to Redis Streams).
       .on_fenced = [](uint64_t) {}});
  if (Status s = membership.Start(); !s.ok()) {
    // The heartbeat thread keeps trying; gateways admit the node once it is registered.
    FAAS_LOG(log, warn, "faasd.register_failed", {"error", s.message()});
  }
  FAAS_LOG(log, info, "faasd.ready", {"role", "node"}, {"node_id", node_id}, {"http", http_bound},
           {"grpc", grpc_bound}, {"advertise", advertise}, {"tls", *tls != nullptr},
           {"functions", functions->size()}, {"pid", ::getpid()});

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  FAAS_LOG(log, info, "faasd.draining", {"signal", sig},
           {"grace_ms", static_cast<int64_t>(config.shutdown_grace.count())});
  ready = false;  // /readyz 503: gateways' health checks take the node out
  if (Status s = membership.Drain(); !s.ok()) {
    FAAS_LOG(log, warn, "faasd.drain_mark_failed", {"error", s.message()});
  }
  if (config.drain_delay.count() > 0) {
    struct timespec wait = {static_cast<time_t>(config.drain_delay.count() / 1000),
                            static_cast<long>((config.drain_delay.count() % 1000) * 1'000'000)};
    siginfo_t info;
    sigtimedwait(&stop_signals, &info, &wait);
  }
  const auto deadline = std::chrono::system_clock::now() + config.shutdown_grace;
  // New calls are refused before delivery (gateways run them elsewhere) while the ones the
  // scheduler took, queued ones included, finish: a scheduler that stopped first would answer
  // those `shutting_down` (docs/design/0025-fault-tests.md, "A drain loses nothing").
  (*node)->StopTakingCalls(deadline);
  // What is left past the grace: the scheduler's shutdown kills it, which ends their handlers,
  // so both run side by side.
  std::thread grpc_drain([&node, deadline] { (*node)->Shutdown(deadline); });
  sched.Shutdown(
      std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 deadline - std::chrono::system_clock::now())));
  grpc_drain.join();
  http.Stop();
  (void)membership.Leave();  // gateways drop the node now, not after the janitor's 3 s
  membership.Stop();
  if (!config.ready_file.empty()) {
    ::unlink(config.ready_file.c_str());
  }
  FAAS_LOG(log, info, "faasd.stopped");
  return 0;
}

}  // namespace faas::daemon
