// The scheduler: per-function pools of worker instances, cold starts, deadlines
// (docs/architecture.md, docs/design/0003-zygote.md).
//
//   faas::scheduler::Scheduler sched({.worker_path = "build/bin/faas-worker"});
//   sched.SetFunction(spec);                                  // deploy / rollback
//   InvokeResult r = sched.Invoke("hello", std::move(req));   // blocks until done
//
// Each function has one pool (docs/design/0012-scheduler-pool.md): an idle instance is reused
// (warm), else a new instance is forked from the version's zygote (or, without one, a new worker
// is spawned: a cold start), up to max_instances; beyond that up to queue_depth callers, blocking
// and event-loop ones in one first-come-first-served queue, wait for a free instance for at most
// queue_timeout, then get kNoCapacity (a full queue answers at once).
// Idle instances above min_warm stop after idle_ttl. The wall-clock deadline of every invocation is
// enforced here, from outside the worker: on expiry the worker is SIGKILLed and replaced. A worker
// that dies, or breaks the frame protocol, fails only its own invocation. Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/metering/metrics.h"
#include "faas/metering/pricing.h"
#include "faas/store/ledger.h"
#include "faas/store/registry.h"

namespace faas {
class EventLoop;
}  // namespace faas

namespace faas::sandbox {
class CgroupRoot;
}  // namespace faas::sandbox

namespace faas::scheduler {

// What the scheduler needs to run one version of a function.
struct FunctionSpec {
  std::string name;
  uint32_t version = 0;
  std::string library_path;
  store::FunctionConfig config;
  // The host uid (= gid) its instances run as: the registry's (store::kFunctionUidBase..). 0 only
  // for embedders without a registry (tests, benches): then sandbox::FunctionUid(name).
  uint32_t uid = 0;
};

struct InvokeRequest {
  std::string invocation_id;
  std::string method = "POST";
  std::string path = "/";
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string trigger = "http";  // http | async | queue
  std::string queue;             // queue triggers: the stream or queue name
  std::string message_id;        // queue triggers and async: the message's id
  uint32_t attempt = 1;          // delivery attempt, 1-based
  std::string tenant;            // the API key's tenant, recorded in the ledger ("" = none)
  bool fresh = false;  // a new instance, discarded afterwards (forced cold start, for benchmarks)
  Clock::time_point arrived = Clock::now();
};

enum class Outcome {
  kOk,                // the handler returned 0; status/headers/body are the function's
  kFunctionError,     // the handler returned non-zero (500 function_error)
  kCrashed,           // the worker died or broke protocol (502 function_crashed)
  kTimeout,           // the execution-time limit passed; the instance was killed (504)
  kInitFailed,        // the library failed to load or faas_init failed (502 init_failed)
  kResponseTooLarge,  // the response passed its limit (502)
  kSandboxViolation,  // killed for a forbidden syscall or a sandbox limit (502)
  kNoCapacity,        // at max_instances and no instance freed in time (503)
  kNotFound,          // no such function (404)
  kPayloadTooLarge,   // the request body is over the function's max_body_bytes (413)
  kShuttingDown,      // the daemon is stopping (503)
  kInternal,          // our failure, e.g. cannot spawn (500)
  // A cluster gateway delivered the invocation to a node that died before it answered (502;
  // ../shared/CLUSTER.md §5). Never produced by the Scheduler itself.
  kNodeLost,
};

// Durations of the phases of one invocation (zero when the phase did not happen).
struct PhaseTimings {
  std::chrono::nanoseconds queue{0};  // waiting for a free instance
  std::chrono::nanoseconds spawn{0};  // cold start: until the worker process exists
  std::chrono::nanoseconds load{0};   // cold start: dlopen + ABI checks (worker-reported)
  std::chrono::nanoseconds init{0};   // cold start: faas_init (worker-reported)
  std::chrono::nanoseconds cold{0};   // cold start: request for an instance until it is ready
  std::chrono::nanoseconds exec{0};   // request frame written until response frame read
};

struct InvokeResult {
  Outcome outcome = Outcome::kInternal;
  std::string error_message;  // for every outcome but kOk and kFunctionError
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int handler_return = 0;
  bool cold_start = false;
  bool forked = false;  // the cold start forked the instance from the version's zygote
  uint32_t version = 0;
  PhaseTimings timings;
  std::chrono::nanoseconds cpu{0};  // kernel-measured CPU time of the instance during exec
  // The handler's wall time as the worker reported it (pipelining on only; -1: not reported).
  // Untrusted: used only to line up the function's own calls (design/0042), never billed.
  std::chrono::nanoseconds reported_handler{-1};
  // The instance's peak memory so far, this invocation included (0: unknown).
  uint64_t peak_memory_bytes = 0;
  std::string logs;  // captured stdout/stderr of this invocation (capped)
  std::string node;  // the node that ran it (X-Faas-Node), set by a cluster gateway's invoker
};

struct FunctionStats {
  uint32_t idle = 0;
  uint32_t busy = 0;
  uint32_t waiting = 0;  // requests queued for an instance
  uint64_t invocations = 0;
  uint64_t cold_starts = 0;
  uint64_t evicted = 0;     // idle instances stopped to make room in a full warm pool
  pid_t zygote_pid = 0;     // the current version's zygote (host pid), 0 while it has none
  pid_t parked_pid = 0;     // its oldest parked instance (host pid), 0 while none is parked
  uint32_t parked = 0;      // how many instances its zygote keeps parked now
  bool spawn_only = false;  // this version cannot have a zygote (logged as zygote.unavailable)
};

// Instances a node has stopped (evicted, expired, failed, retired) and not yet destroyed: past
// this many, a new cold start waits until the burier catches up, so a caller who cycles through
// more functions than the warm pool holds cannot grow the node's processes, file descriptors and
// memory with the request rate (docs/design/0034-bounded-burials.md).
inline constexpr std::size_t kMaxInstancesBeingStopped = 32;

struct SchedulerOptions {
  std::string worker_path;                         // faas-worker binary
  std::chrono::milliseconds init_timeout{10'000};  // load + faas_init of a new instance
  std::size_t log_capture_bytes = 64u << 10;       // per invocation, then a marker
  // What worker answers being received may buffer together, beyond each one's first 64 KiB
  // (docs/sandbox.md, "Limits enforced from outside"); at least one largest frame.
  std::size_t answer_buffer_budget = 256u << 20;
  std::chrono::milliseconds reap_interval{1'000};  // how often idle_ttl is checked
  // The node's warm pool (docs/design/0032-warm-pool.md): the most instances it keeps, of every
  // function together. A cold start past it first stops the least recently used idle instance
  // of any function (never below a function's min_warm); 0 = no bound (each function is bounded
  // by its max_instances and idle_ttl only).
  uint32_t warm_pool = 0;
  // Requests the event-loop path may write to a busy instance ahead of its answer: 0 to 16
  // (docs/design/0015-warm-path-batching.md, "Pipelining"; 0042-pipeline-depth.md); only for
  // functions whose recent invocations average under 0.2 ms of CPU and 5 ms of exec time, and
  // never ahead of queued requests.
  uint32_t pipeline_depth = 0;
  // The clock of idle instances' last use and idle_ttl (nullptr: Clock::now). A seam for tests;
  // invocation deadlines and queue timeouts use the real clock.
  std::function<Clock::time_point()> clock = nullptr;
  uint64_t tmp_bytes = 16u << 20;          // each instance's private /tmp
  uint64_t pids_max = 64;                  // processes + threads per instance
  sandbox::CgroupRoot* cgroups = nullptr;  // per-instance cgroups; not owned
  // Empty cgroups kept ready so a cold start does not create one (CgroupRoot::KeepSpares);
  // 0 = create each on demand.
  std::size_t spare_cgroups = 8;
  // Cold starts fork from a per-version zygote (docs/design/0003-zygote.md); false: every
  // instance is a newly spawned worker.
  bool zygotes = true;
  // Each zygote keeps one instance forked, jailed and in its cgroup ahead of need, so a cold
  // start only takes it (docs/design/0010-cold-start-after-idle.md, "Parked"); false: every cold
  // start forks.
  bool park_instances = true;
  // How many a zygote of an `isolation: fresh` function keeps parked (at least 1): each of its
  // calls takes one, and a call that comes before the last one's refill is parked would fork on
  // its own path (docs/design/0010, "Parked instances").
  std::size_t parked_fresh = 2;
  // Instances run SCHED_BATCH (docs/design/0040-batch-scheduled-instances.md): a woken instance
  // does not preempt the event loop that woke it, so the loop goes on with its other ready
  // work instead of being switched out for each request (+20 % warm throughput at saturation),
  // but neither does it preempt a CPU-bound neighbour (+15 % on its p99 next to one). Zygotes
  // stay SCHED_OTHER. Off by default: isolation first.
  bool instance_sched_batch = false;
  // CPUs one function's instances and zygote may use together (its cgroup level's quota; 0 = no
  // cap). Each instance also has its own one-CPU quota.
  double function_cpus = 0;
  // `network: outbound` (docs/design/0007-outbound-network.md): the slirp4netns binary ("" = not
  // available: outbound functions are refused, see OutboundNetworkAvailable), and the IPv4
  // networks (CIDR, checked by the caller with sandbox::ParseEgressNetwork) of faasd
  // --egress-allow.
  std::string slirp4netns;
  std::vector<std::string> egress_allow;
  store::Ledger* ledger = nullptr;       // every invocation's row; not owned
  metering::Metrics* metrics = nullptr;  // /metrics counters; not owned
  metering::Prices prices;
};

// What the gateway, async invocations and triggers need to run an invocation: the local
// Scheduler implements it; a cluster gateway's client of remote nodes will too. Thread-safe.
class Invoker {
 public:
  virtual ~Invoker() = default;
  // The current version of `name`, or nullptr (the gateway's edge checks read its config).
  virtual std::shared_ptr<const FunctionSpec> Current(const std::string& name) const = 0;
  // Runs one invocation of the current version of `name`. Blocks; never throws.
  virtual InvokeResult Invoke(const std::string& name, InvokeRequest request) = 0;
  // The same without blocking: called on `loop`'s thread, which later (or before this returns)
  // calls `done` with the result. `loop` must keep running until `done` is called.
  virtual void InvokeAsync(const std::string& name, InvokeRequest request, EventLoop* loop,
                           std::function<void(InvokeResult)> done) = 0;
};

class Scheduler final : public Invoker {
 public:
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler() override;  // Shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Makes `spec` the current version of its function (deploy, rollback, startup). Idle
  // instances of other versions stop now; busy ones stop when their invocation ends.
  void SetFunction(FunctionSpec spec);
  // Stops every instance of the function; later invocations get kNotFound.
  void RemoveFunction(const std::string& name);
  // Runs one invocation of the current version of `name`. Blocks; never throws.
  InvokeResult Invoke(const std::string& name, InvokeRequest request) override;
  // The same without blocking (docs/design/0006-warm-path-reactor.md): called on `loop`'s thread,
  // which later (or before this returns) calls `done` with the result. The warm path runs in the
  // loop: an idle instance, or the next one freed while the request waits in the queue, gets
  // the frame; the answer is read when the channel is ready; the deadline is a timer. Cold
  // starts, and killing an instance after a failure, run on a blocking thread. `loop` must keep
  // running until `done` is called (HttpServer::Drain waits for every answer).
  void InvokeAsync(const std::string& name, InvokeRequest request, EventLoop* loop,
                   std::function<void(InvokeResult)> done) override;
  // Starts one instance of `spec` in a separate worker, waits for it to load and initialise,
  // then stops it. InvalidArgument("init_failed: …") or DeadlineExceeded on failure.
  Status Probe(const FunctionSpec& spec, std::chrono::nanoseconds* took = nullptr);
  // A deploy's probe that is also the version's zygote start
  // (docs/design/0014-cold-start-after-deploy.md): loads the library and runs faas_init in a
  // zygote of `spec` (its version number does not matter yet) and keeps it for the next
  // SetFunction of spec.name, which adopts it when the library, config and uid are the same: the
  // deploy then answers once the version can fork, and its first call forks. Errors are Probe's,
  // word for word. A version that cannot have a zygote (faas_init left threads; or zygotes are
  // off) gets Probe instead. A zygote not adopted is stopped by DropPrepared, and by the next
  // Prepare, SetFunction or RemoveFunction of the function, or Shutdown; its start is billed
  // only when adopted (a probe is not billed).
  Status Prepare(const FunctionSpec& spec, std::chrono::nanoseconds* took = nullptr);
  // Stops the zygote Prepare kept for `name`, if SetFunction did not adopt it (a failed deploy).
  void DropPrepared(const std::string& name);
  // OK when outbound functions can run here; else FailedPrecondition saying what is missing.
  Status OutboundNetworkAvailable() const;
  // Starts up to `count` instances now (bounded by max_instances) and keeps them idle. Returns
  // how many it started; NotFound for an unknown function; the first start error if none started.
  Result<uint32_t> Prewarm(const std::string& name, uint32_t count);
  // The current version of `name`, or nullptr (the gateway's edge checks read its config).
  std::shared_ptr<const FunctionSpec> Current(const std::string& name) const override;
  FunctionStats Stats(const std::string& name) const;
  // Stats of every function, by name.
  std::vector<std::pair<std::string, FunctionStats>> AllStats() const;
  // Stops accepting invocations, waits up to `grace` for running ones, then kills every
  // worker and waits for them to exit.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The one table of stable codes for outcomes: "ok", "function_timeout", "no_capacity", ... The
// ledger's outcome column, log fields and the API's error code (gateway::ToHttpError) all use
// it. The view is of a string literal, so .data() is NUL-terminated and lives forever.
std::string_view OutcomeName(Outcome outcome);

}  // namespace faas::scheduler
