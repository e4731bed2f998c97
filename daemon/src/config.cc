#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "faas/base/ip_range.h"
#include "faas/base/time.h"
#include "faas/daemon/daemon.h"
#include "faas/sandbox/network.h"

#include "roles.h"

namespace faas::daemon {
namespace {

// A duration option: "30s", "250ms"; errors name the flag and the value.
CLI::Option* AddDuration(CLI::App& app, const std::string& flag, std::chrono::milliseconds* out,
                         const std::string& help, const std::string& env) {
  return app
      .add_option_function<std::string>(
          flag,
          [out, flag](const std::string& v) {
            auto d = ParseDuration(v);
            if (!d.ok()) {
              throw CLI::ValidationError(flag, d.status().message());
            }
            *out = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
          },
          help + " (default " + FormatDuration(*out) + ")")
      ->envname(env);
}

}  // namespace

int ParseDaemonFlags(int argc, char** argv, DaemonConfig* c) {
  CLI::App app("faasd: the faas daemon (gateway, control API, scheduler)", "faasd");
  app.set_version_flag("--version", "faasd 0.1.0");
  app.set_config("--config", "", "config file (INI/TOML: key = value, same names as the flags)");
  app.add_option("--role", c->role,
                 "all (one machine, embedded SQLite), gateway (HTTP edge and control API, "
                 "invocations on nodes) or node (scheduler and workers for gateways)")
      ->envname("FAAS_ROLE")
      ->check(CLI::IsMember({"all", "gateway", "node"}))
      ->capture_default_str();
  app.add_option("--node-id", c->node_id,
                 "this node's id (roles node and all; default: the hostname), sent as X-Faas-Node")
      ->envname("FAAS_NODE_ID");
  app.add_option("--advertise", c->advertise,
                 "role node: the host:port gateways reach its --grpc at (default: the bound one)")
      ->envname("FAAS_ADVERTISE");
  app.add_option("--nodes", c->nodes,
                 "role gateway: the nodes, id=grpc_host:port@http_host:port,... (comma-separated)")
      ->envname("FAAS_NODES");
  app.add_option("--balancer", c->balancer,
                 "role gateway: how a node is picked for each call (default bounded-hash)")
      ->envname("FAAS_BALANCER");
  app.add_option("--redis", c->redis,
                 "role gateway: redis://HOST:PORT[/DB], shared by the gateways for async "
                 "invocations, queue triggers and rate limits")
      ->envname("FAAS_REDIS");
  app.add_option("--redis-limits", c->redis_limits,
                 "role gateway: redis://HOST:PORT[/DB] for the rate-limit counters only (one "
                 "without fsync suits them; default: --redis)")
      ->envname("FAAS_REDIS_LIMITS");
  app.add_option("--tls-ca", c->tls_ca,
                 "PEM file of the cluster's CA: nodes accept only gateways with a certificate it "
                 "signed, gateways only nodes with one (with --tls-cert and --tls-key)")
      ->envname("FAAS_TLS_CA");
  app.add_option("--tls-cert", c->tls_cert,
                 "PEM file of this process's certificate, signed by --tls-ca (also served by a "
                 "control API bound off loopback)")
      ->envname("FAAS_TLS_CERT");
  app.add_option("--tls-key", c->tls_key, "PEM file of the private key of --tls-cert")
      ->envname("FAAS_TLS_KEY");
  app.add_option("--tls-node-name", c->tls_node_name,
                 "role gateway: the name nodes' certificates must carry (default: the host of "
                 "each node's address, as an IP or DNS SAN)")
      ->envname("FAAS_TLS_NODE_NAME");
  app.add_flag("--insecure-cluster", c->insecure_cluster,
               "serve a non-loopback --grpc without TLS: role node, NodeService (anyone who "
               "reaches the port and learns the nodes' secret can run functions); role all or "
               "gateway, the control API (the admin token crosses the network in plaintext)")
      ->envname("FAAS_INSECURE_CLUSTER");
  app.add_option("--http", c->http, "HTTP gateway address host:port (port 0 = any free port)")
      ->envname("FAAS_HTTP")
      ->capture_default_str();
  app.add_option("--grpc", c->grpc, "control API address host:port")
      ->envname("FAAS_GRPC")
      ->capture_default_str();
  app.add_option("--data-dir", c->data_dir, "where functions, versions and artifacts live")
      ->envname("FAAS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--store", c->store,
                 "registry backend: empty = SQLite in --data-dir, or postgres://... (shared)")
      ->envname("FAAS_STORE");
  app.add_option("--ready-file", c->ready_file,
                 "write the bound addresses as JSON here once ready (for scripts and tests)")
      ->envname("FAAS_READY_FILE");
  app.add_option("--worker", c->worker_path, "faas-worker binary (default: next to faasd)")
      ->envname("FAAS_WORKER");
  app.add_option("--log-level", c->log_level, "log levels, e.g. info or info,scheduler=debug")
      ->envname("FAAS_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--price-per-cpu-ms", c->price_per_cpu_ms,
                 "price of one billed CPU millisecond per 128 MiB memory tier, in micro-units")
      ->envname("FAAS_PRICE_PER_CPU_MS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--price-per-request", c->price_per_request,
                 "price of one invocation, in micro-units")
      ->envname("FAAS_PRICE_PER_REQUEST")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--currency-unit", c->currency_unit, "what one micro-unit of money is called")
      ->envname("FAAS_CURRENCY_UNIT")
      ->capture_default_str();
  app.add_flag("--unsafe-no-ledger", c->unsafe_no_ledger,
               "benchmarks only: do not record or bill invocations (measures metering overhead)");
  app.add_option("--cgroup-mode", c->cgroup_mode, "cgroup layout: auto (detect), v1, or v2")
      ->envname("FAAS_CGROUP_MODE")
      ->check(CLI::IsMember({"auto", "v1", "v2"}))
      ->capture_default_str();
  app.add_option("--cgroup-v2-mount", c->cgroup_v2_mount, "where the cgroup2 hierarchy is mounted")
      ->envname("FAAS_CGROUP_V2_MOUNT")
      ->capture_default_str();
  app.add_flag("--unsafe-no-limits", c->unsafe_no_limits,
               "start even where memory and pids limits cannot be enforced (a cgroup v2 tree "
               "without those controllers): functions then run without them. Never on a shared "
               "host; without this flag faasd refuses to start there and says how to fix it")
      ->envname("FAAS_UNSAFE_NO_LIMITS");
  app.add_option("--max-memory", c->max_memory_mb,
                 "MiB all functions together may use (the platform's cgroup level; 0 = 3/4 of "
                 "this machine's memory)")
      ->envname("FAAS_MAX_MEMORY")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-pids", c->max_pids,
                 "processes and threads all functions together may run (the platform's cgroup "
                 "level; 0 = half of min(pid_max, threads-max))")
      ->envname("FAAS_MAX_PIDS")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32))
      ->capture_default_str();
  app.add_option("--admin-token-file", c->admin_token_file,
                 "file with the control API's admin token (default: <data-dir>/admin-token, "
                 "created when missing)")
      ->envname("FAAS_ADMIN_TOKEN_FILE");
  app.add_option("--access-log", c->access_log, "log one line per HTTP request (true/false)")
      ->envname("FAAS_ACCESS_LOG")
      ->capture_default_str();
  app.add_option("--max-connections", c->max_connections,
                 "open HTTP connections; beyond, 503 no_capacity and close")
      ->envname("FAAS_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option(
         "--max-connections-per-ip", c->max_connections_per_ip,
         "open HTTP connections from one client address; beyond, 429 and close (0 = no cap)")
      ->envname("FAAS_MAX_CONNECTIONS_PER_IP")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  app.add_option("--http-threads", c->http_threads,
                 "event-loop threads serving HTTP connections (0 = one per CPU, at most 4)")
      ->envname("FAAS_HTTP_THREADS")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--pipeline-depth", c->pipeline_depth,
                 "requests written ahead to a busy instance of a short function (0 to 16; "
                 "docs/design/0042-pipeline-depth.md)")
      ->envname("FAAS_PIPELINE_DEPTH")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--warm-pool", c->warm_pool,
                 "the most function instances this node keeps, all functions together: a cold "
                 "start past it stops the least recently used idle instance of any function, "
                 "never below a function's min_warm (0 = no bound; docs/design/0032-warm-pool.md)")
      ->envname("FAAS_WARM_POOL")
      ->capture_default_str();
  app.add_option("--answer-buffer-budget", c->answer_buffer_budget_mib,
                 "MiB that worker answers being received may buffer together, beyond 64 KiB each; "
                 "an answer that does not fit waits (0 = an eighth of memory, at most 256)")
      ->envname("FAAS_ANSWER_BUFFER_BUDGET")
      ->check([](const std::string& v) -> std::string {
        // One largest answer frame (6.25 MiB) must fit, or a large answer could never be read.
        unsigned long long mib = std::strtoull(v.c_str(), nullptr, 10);
        return mib == 0 || (mib >= 7 && mib <= (1ull << 20)) ? "" : "0, or 7 to 1048576 (MiB)";
      })
      ->capture_default_str();
  app.add_option("--spare-cgroups", c->spare_cgroups,
                 "empty instance cgroups kept ready so cold starts do not create one (0 = off)")
      ->envname("FAAS_SPARE_CGROUPS")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--function-cpus", c->function_cpus,
                 "CPUs all instances of one function may use together (the quota of its cgroup "
                 "level): -1 = one fewer than faasd may run on, at least 1; 0 = no cap beyond "
                 "each instance's one CPU; else at least 1")
      ->envname("FAAS_FUNCTION_CPUS")
      ->check([](const std::string& v) -> std::string {
        // Below 1 would be under each instance's own one-CPU quota, which cgroup v1 refuses.
        double d = std::strtod(v.c_str(), nullptr);
        return d == -1 || d == 0 || (d >= 1 && d <= 4096) ? "" : "must be -1, 0, or 1 to 4096";
      })
      ->capture_default_str();
  app.add_option("--zygotes", c->zygotes,
                 "fork cold starts from a sandboxed, initialised zygote per function version "
                 "(false: spawn a new worker for every instance)")
      ->envname("FAAS_ZYGOTES")
      ->capture_default_str();
  app.add_option("--park-instances", c->park_instances,
                 "each zygote keeps one instance forked, jailed and in its cgroup ahead of need, "
                 "so a cold start only takes it (false: every cold start forks)")
      ->envname("FAAS_PARK_INSTANCES")
      ->capture_default_str();
  app.add_option("--instance-sched-batch", c->instance_sched_batch,
                 "instances run SCHED_BATCH: a woken instance does not preempt the event loop that "
                 "woke it (more warm throughput at saturation), nor a CPU-bound neighbour (a "
                 "higher tail next to one); docs/design/0040-batch-scheduled-instances.md")
      ->envname("FAAS_INSTANCE_SCHED_BATCH")
      ->capture_default_str();
  app.add_option("--parked-fresh", c->parked_fresh,
                 "instances each zygote of an `isolation: fresh` function keeps parked: every call "
                 "takes one, so a call that comes before the last refill is parked need not fork "
                 "(with --park-instances)")
      ->envname("FAAS_PARKED_FRESH")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--egress-allow", c->egress_allow,
                 "an IPv4 network (CIDR) that `network: outbound` functions may reach although "
                 "it is denied by default (private, link-local, or an address of this host); "
                 "repeatable")
      ->envname("FAAS_EGRESS_ALLOW")
      ->check([](const std::string& v) -> std::string {
        auto cidr = sandbox::ParseEgressNetwork(v);
        return cidr.ok() ? "" : cidr.status().message();
      });
  app.add_option("--slirp4netns", c->slirp4netns,
                 "the slirp4netns binary that carries outbound functions' traffic (default: "
                 "/usr/bin/slirp4netns or /usr/local/bin/slirp4netns; without it outbound "
                 "functions are refused)")
      ->envname("FAAS_SLIRP4NETNS");
  app.add_option("--async-concurrency", c->async_concurrency,
                 "async invocations run at the same time")
      ->envname("FAAS_ASYNC_CONCURRENCY")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--callback-allow", c->callback_allow,
                 "a CIDR range (e.g. 10.1.0.0/16) that async callbacks may reach although it is "
                 "loopback, private, link-local or this host's own; repeatable")
      ->envname("FAAS_CALLBACK_ALLOW")
      ->allow_extra_args(false)  // one range per --callback-allow; they accumulate
      ->delimiter(',')
      ->check([](const std::string& v) -> std::string {
        Result<Cidr> range = ParseCidr(v);
        return range.ok() ? "" : range.status().message();
      });
  AddDuration(app, "--http-read-timeout", &c->http_read_timeout,
              "longest wait for a request's headers, its body, or the next request on an idle "
              "keep-alive connection (408 when a request was started)",
              "FAAS_HTTP_READ_TIMEOUT");
  AddDuration(app, "--http-write-timeout", &c->http_write_timeout,
              "longest time to write one response", "FAAS_HTTP_WRITE_TIMEOUT");
  AddDuration(app, "--async-retention", &c->async_retention,
              "how long the results of async invocations (and Idempotency-Keys) are kept",
              "FAAS_ASYNC_RETENTION");
  AddDuration(app, "--queue-visibility", &c->queue_visibility,
              "lease of an async invocation: its gateway extends it every third of this while the "
              "invocation runs; when the gateway dies, another one (with --redis) takes the work "
              "over after this",
              "FAAS_QUEUE_VISIBILITY");
  AddDuration(app, "--shutdown-grace", &c->shutdown_grace,
              "on SIGTERM, how long in-flight invocations may finish", "FAAS_SHUTDOWN_GRACE");
  AddDuration(app, "--drain-delay", &c->drain_delay,
              "on SIGTERM, how long to keep serving with /readyz answering 503 before no longer "
              "accepting connections (for load balancers to notice; a second signal ends it)",
              "FAAS_DRAIN_DELAY");
  AddDuration(
      app, "--registry-resync", &c->registry_resync,
      "--role gateway (or all on postgres://): how often to re-read functions, routes, API "
      "keys, nodes and triggers from the shared store in full, besides following its change "
      "notices (0s = never)",
      "FAAS_REGISTRY_RESYNC");
  AddDuration(app, "--init-timeout", &c->init_timeout,
              "how long a new instance may take to load and run faas_init", "FAAS_INIT_TIMEOUT");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (Status roles = CheckRoleFlags(*c); !roles.ok()) {
    std::cerr << "faasd: " << roles.message() << "\nRun with --help for more information.\n";
    return 2;
  }
  return -1;
}

}  // namespace faas::daemon
