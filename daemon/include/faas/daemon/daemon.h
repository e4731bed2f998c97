// faasd: configuration and the process lifecycle (docs/architecture.md).
//
//   DaemonConfig cfg;
//   if (int rc = ParseDaemonFlags(argc, argv, &cfg); rc >= 0) return rc;  // --help or bad flags
//   return RunDaemon(cfg);   // blocks until SIGTERM/SIGINT, then drains and returns 0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace faas::daemon {

struct DaemonConfig {
  // FAAS_ROLE (docs/operations.md "Roles"): "all" (one machine, embedded SQLite), "gateway"
  // (HTTP edge + control API; invocations go to nodes over gRPC) or "node" (scheduler and
  // workers, serving gateways on --grpc). gateway and node need --store postgres://...
  std::string role = "all";
  std::string node_id;    // FAAS_NODE_ID (node, all): this node's id; default the hostname
  std::string advertise;  // FAAS_ADVERTISE (node): its gRPC address for gateways; default bound
  // FAAS_NODES (gateway): id=grpc_host:port@http_host:port,... the nodes it routes to
  std::string nodes;
  std::string balancer;  // FAAS_BALANCER (gateway): how it picks a node; "" = bounded-hash
  // FAAS_REDIS (gateway): redis://HOST:PORT[/DB], what gateways share besides PostgreSQL (async
  // invocations and queue triggers on Redis Streams, async results, rate-limit counters).
  std::string redis;
  // FAAS_REDIS_LIMITS (gateway): redis://HOST:PORT[/DB] for the rate-limit counters alone, so a
  // counter written on every request does not share an appendfsync=always instance with the
  // queues; "" = the --redis one (docs/design/0023-shared-limits-and-retries.md).
  std::string redis_limits;
  // Trust between machines (docs/design/0028-cluster-tls.md). FAAS_TLS_CA/CERT/KEY: PEM files of
  // the cluster's CA and this process's certificate and key (all three or none). Nodes then
  // require gateways' client certificates signed by the CA, gateways verify nodes' against it,
  // and a control API bound off loopback serves TLS with the certificate.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // FAAS_TLS_NODE_NAME (gateway): the name nodes' certificates are checked against; empty =
  // each node address's host (an IP or DNS SAN of the node's certificate).
  std::string tls_node_name;
  // FAAS_INSECURE_CLUSTER: serve a non-loopback --grpc without TLS files: NodeService on a node
  // (anyone who reaches the port and learns the nodes' secret could run functions), the control
  // API on all or gateway (the admin token travels in plaintext). Refused otherwise.
  bool insecure_cluster = false;
  std::string http = "127.0.0.1:8080";   // FAAS_HTTP; port 0 picks a free port
  std::string grpc = "127.0.0.1:9090";   // FAAS_GRPC
  std::string data_dir = "./faas-data";  // FAAS_DATA_DIR
  std::string ready_file;                // FAAS_READY_FILE: bound addresses as JSON once ready
  std::string worker_path;               // FAAS_WORKER; default: faas-worker next to faasd
  std::string log_level = "info";        // FAAS_LOG_LEVEL: "info,scheduler=debug"
  // FAAS_STORE: where the registry lives. "" = SQLite in data_dir; postgres://... (or
  // postgresql://) = a shared PostgreSQL database, artifacts cached in data_dir/artifact-cache
  // (store::OpenRegistry). The ledger and queues stay in data_dir either way.
  std::string store;
  std::chrono::milliseconds shutdown_grace{30'000};  // FAAS_SHUTDOWN_GRACE
  // On SIGTERM, how long faasd keeps serving, /readyz answering 503, before it stops accepting:
  // time for load balancers to notice. A second signal ends it early. FAAS_DRAIN_DELAY
  std::chrono::milliseconds drain_delay{0};
  // FAAS_REGISTRY_RESYNC (gateway): how often it re-reads functions, routes, keys and nodes
  // from the shared store in full, besides following its NOTIFYs (0 = never).
  std::chrono::milliseconds registry_resync{30'000};
  std::chrono::milliseconds init_timeout{10'000};  // FAAS_INIT_TIMEOUT
  int64_t price_per_cpu_ms = 1;   // FAAS_PRICE_PER_CPU_MS: micro-units per billed ms per 128 MiB
  int64_t price_per_request = 0;  // FAAS_PRICE_PER_REQUEST: micro-units per invocation
  std::string currency_unit = "micro-credits";     // FAAS_CURRENCY_UNIT: what one micro-unit is
  bool unsafe_no_ledger = false;                   // benchmarks only: record and bill nothing
  std::string cgroup_mode = "auto";                // FAAS_CGROUP_MODE: auto | v1 | v2
  std::string cgroup_v2_mount = "/sys/fs/cgroup";  // FAAS_CGROUP_V2_MOUNT
  // FAAS_UNSAFE_NO_LIMITS: start even where memory and pids limits cannot be enforced (a cgroup
  // v2 tree without those controllers); without it faasd refuses to start there.
  bool unsafe_no_limits = false;
  // FAAS_MAX_MEMORY (MiB) and FAAS_MAX_PIDS: caps of every function together (the platform's
  // cgroup level); 0 = the default, 3/4 of the machine's memory and half its pids
  // (sandbox::DefaultMaxMemoryBytes, DefaultMaxPids).
  uint64_t max_memory_mb = 0;
  uint64_t max_pids = 0;
  // FAAS_ADMIN_TOKEN_FILE: the control API's admin token; default <data-dir>/admin-token,
  // created (mode 0600, 256 random bits) when missing.
  std::string admin_token_file;
  bool access_log = true;                    // FAAS_ACCESS_LOG: one line per HTTP request
  std::size_t max_connections = 4096;        // FAAS_MAX_CONNECTIONS: beyond, 503 and close
  std::size_t max_connections_per_ip = 256;  // FAAS_MAX_CONNECTIONS_PER_IP: beyond, 429 and close
  std::chrono::milliseconds http_read_timeout{30'000};   // FAAS_HTTP_READ_TIMEOUT: 408 after
  std::chrono::milliseconds http_write_timeout{30'000};  // FAAS_HTTP_WRITE_TIMEOUT
  uint32_t http_threads = 0;  // FAAS_HTTP_THREADS: event loops; 0 = per CPU, <= 4
  // FAAS_ANSWER_BUFFER_BUDGET: MiB all worker answers being received may buffer together;
  // 0 = an eighth of the host's memory, at most 256 MiB (at least 8).
  uint64_t answer_buffer_budget_mib = 0;
  // FAAS_PIPELINE_DEPTH: requests written ahead to a busy instance (0 to 16; design/0042).
  uint32_t pipeline_depth = 4;
  uint32_t spare_cgroups = 8;         // FAAS_SPARE_CGROUPS: empty cgroups kept ready
  bool zygotes = true;                // FAAS_ZYGOTES: cold starts fork from a zygote
  bool instance_sched_batch = false;  // FAAS_INSTANCE_SCHED_BATCH: instances run SCHED_BATCH
  bool park_instances = true;  // FAAS_PARK_INSTANCES: each zygote keeps one instance forked ahead
  // FAAS_WARM_POOL: the most instances this node keeps, all functions together; a cold start past
  // it stops the least recently used idle one (docs/design/0032-warm-pool.md). 0 = no bound.
  uint32_t warm_pool = 0;
  uint32_t parked_fresh = 2;  // FAAS_PARKED_FRESH: parked per zygote of an isolation-fresh function
  // network: outbound (docs/design/0007-outbound-network.md): networks a function may reach
  // although they are denied by default (repeatable --egress-allow CIDR), and slirp4netns
  // ("" = look in the system directories).
  std::vector<std::string> egress_allow;
  std::string slirp4netns;
  // FAAS_FUNCTION_CPUS: CPUs one function's instances may use together; 0 = no cap, -1 = one
  // fewer than the daemon may run on (at least 1), so one function never takes every CPU.
  double function_cpus = -1;
  uint32_t async_concurrency = 16;  // FAAS_ASYNC_CONCURRENCY: async invocations at once
  std::chrono::milliseconds async_retention{24 * 3'600'000};  // FAAS_ASYNC_RETENTION
  // FAAS_QUEUE_VISIBILITY: the lease of an async invocation. Its consumer extends it every third
  // of this while the invocation runs (Queue::Extend), so it need not cover the function timeout;
  // when the consumer dies, another one (another gateway, with --redis) takes it over after this.
  std::chrono::milliseconds queue_visibility{30'000};
  // FAAS_CALLBACK_ALLOW (comma-separated): CIDR ranges async callbacks may reach although they
  // are loopback, private, link-local or this host's own (gateway/address_policy.h).
  std::vector<std::string> callback_allow;
};

// Parses flags, FAAS_* env vars and an optional --config file (INI: key = value). Returns -1 to
// continue, or the exit code to return now (0 for --help/--version, 2 for a usage error).
int ParseDaemonFlags(int argc, char** argv, DaemonConfig* config);

// Runs faasd until SIGTERM or SIGINT. Returns the process exit code.
int RunDaemon(const DaemonConfig& config);

}  // namespace faas::daemon
