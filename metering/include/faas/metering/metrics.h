// Metrics: per-function counters and duration histograms, rendered in the Prometheus text format
// at GET /metrics. Names follow the OpenTelemetry FaaS conventions where they exist.
//
//   metrics.RecordInvocation({.function = "resize", .outcome = "ok", .cold_start = true, ...});
//   std::string text = metrics.Render();
//
// Thread-safe. Recording takes one short lock of the calling thread's shard (threads are spread
// over kShards shards in the order they first record), so the event loops that record every
// invocation and HTTP answer do not contend; Render merges the shards.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace faas::metering {

struct InvocationSample {
  std::string function;
  std::string outcome;  // "ok", "function_timeout", ...
  bool cold_start = false;
  std::chrono::nanoseconds cpu{0};
  uint64_t billed_ms = 0;
  std::chrono::nanoseconds queue{0}, spawn{0}, load{0}, init{0}, exec{0}, total{0};
};

// Live instance counts of one function, read when /metrics is scraped.
struct InstanceGauge {
  std::string function;
  uint32_t idle = 0;
  uint32_t busy = 0;
  uint32_t waiting = 0;  // requests queued for an instance
  uint32_t zygote = 0;   // 1 while the current version has a zygote to fork from
  uint32_t parked = 0;   // instances that zygote keeps parked for the next cold starts
  uint64_t evicted = 0;  // its idle instances stopped to make room in the node's warm pool
};

// Live figures of the HTTP front, read when /metrics is scraped.
struct HttpGauges {
  int64_t in_flight = 0;                       // requests being handled now
  std::map<std::string, uint64_t> rejections;  // the HTTP server's own refusals, by reason
};

// One queue's messages, read when /metrics is scraped (store::QueueStats): the async
// invocations' `_async`, embedded or Redis-stream queues.
struct QueueGauge {
  std::string queue;
  uint64_t ready = 0;
  uint64_t delayed = 0;
  uint64_t in_flight = 0;
  uint64_t dead = 0;
};

// One trigger's backlog, read when /metrics is scraped (triggers::TriggerStatus).
struct TriggerGauge {
  std::string trigger;
  int64_t lag = -1;  // not yet delivered (Redis: the group's XINFO lag); < 0 unknown, not exported
  uint32_t in_flight = 0;
};

class Metrics {
 public:
  // Distinct tenants faas_tenant_billed_cpu_seconds_total keeps apart; the rest are summed
  // under tenant="_other", so a flood of API-key tenants cannot grow /metrics without bound.
  static constexpr std::size_t kMaxTenantSeries = 1000;

  // Where faas_instances{state} and faas_queue_waiting come from (the scheduler).
  void SetInstanceSource(std::function<std::vector<InstanceGauge>()> source) {
    std::lock_guard lock(mu_);
    instances_ = std::move(source);
  }
  void RecordInvocation(const InvocationSample& s);
  // An invocation counted in faas_invocations_total{function,outcome} only, with no phases,
  // CPU or cold start: a gateway's call lost with its node (outcome node_lost), which the node
  // can no longer count.
  void RecordOutcome(const std::string& function, const std::string& outcome);
  // CPU used by an instance between invocations (also billed).
  void RecordBackground(const std::string& function, std::chrono::nanoseconds cpu,
                        uint64_t billed_ms);
  // CPU the platform spent for the function (starting instances and zygotes; docs/metering.md).
  void RecordPlatformCpu(const std::string& function, std::chrono::nanoseconds cpu);
  // The HTTP front (gateway): one answered request. `route` is the matched template, never a
  // raw path, so label values stay few.
  void RecordHttpRequest(const std::string& route, const std::string& function, int status,
                         std::chrono::nanoseconds took);
  // A request refused before any function ran (unauthorized, rate_limited, ...).
  void RecordRejection(const std::string& reason);
  // An invocation made with an API key of `tenant`.
  void RecordTenantInvocation(const std::string& tenant, const std::string& function);
  // Where faas_http_in_flight and the server's rejections come from (empty: none).
  void SetHttpSource(std::function<HttpGauges()> source) {
    std::lock_guard lock(mu_);
    http_source_ = std::move(source);
  }
  // Where faas_ledger_unshipped_rows comes from: a node that ships its ledger to the central
  // one (store::LedgerShipper::UnshippedRows). Without a source the gauge is not exported.
  void SetLedgerSource(std::function<uint64_t()> unshipped_rows) {
    std::lock_guard lock(mu_);
    ledger_source_ = std::move(unshipped_rows);
  }
  // CPU of one invocation made with an API key of `tenant`, as billed (whole milliseconds,
  // BilledMillis): faas_tenant_billed_cpu_seconds_total{tenant}.
  void RecordTenantCpu(const std::string& tenant, std::chrono::nanoseconds cpu);
  // faas_cluster_nodes{state}: the nodes as this gateway sees them (state -> count). Read at
  // scrape time; an empty map exports nothing.
  void SetClusterNodeSource(std::function<std::map<std::string, uint64_t>()> source) {
    std::lock_guard lock(mu_);
    cluster_nodes_ = std::move(source);
  }
  // faas_queue_messages{queue,state}: queue backlogs, read at scrape time. The source returns
  // false when it cannot read them now (Redis down): nothing is exported for that scrape.
  void SetQueueSource(std::function<bool(std::vector<QueueGauge>*)> source) {
    std::lock_guard lock(mu_);
    queues_ = std::move(source);
  }
  // faas_trigger_lag{trigger} and faas_trigger_in_flight{trigger}, read at scrape time.
  void SetTriggerSource(std::function<std::vector<TriggerGauge>()> source) {
    std::lock_guard lock(mu_);
    triggers_ = std::move(source);
  }
  // faas_limits_enforced: 0 when faasd runs with --unsafe-no-limits where memory and pids
  // limits cannot be enforced.
  void SetLimitsEnforced(bool on) { limits_enforced_.store(on); }
  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

  // Histogram buckets in seconds (0.1 ms .. 30 s).
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30};

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
    void Observe(std::chrono::nanoseconds d);
    void Add(const Histogram& other);
  };
  struct PerFunction {
    std::map<std::string, uint64_t> by_outcome;
    uint64_t cold_starts = 0;
    uint64_t cpu_ns = 0;
    uint64_t billed_ms = 0;
    uint64_t platform_cpu_ns = 0;             // not in cpu_ns: the platform's, never billed
    Histogram init;                           // faas_init + load of cold starts
    std::map<std::string, Histogram> phases;  // queue, spawn, load, init, exec, total
  };
  // The per-request figures, in shards: one per group of recording threads.
  struct Shard {
    std::mutex mu;
    std::map<std::string, PerFunction> functions;
    // HTTP front: keyed route \x1f function \x1f status; durations by route.
    std::map<std::string, uint64_t> http_requests;
    std::map<std::string, Histogram> http_durations;
  };
  static constexpr std::size_t kShards = 8;
  Shard& MyShard();

  mutable std::mutex mu_;                      // the rest
  mutable std::array<Shard, kShards> shards_;  // mutable: Render locks them
  std::function<std::vector<InstanceGauge>()> instances_;
  std::map<std::string, uint64_t> rejections_;
  std::map<std::string, uint64_t> tenants_;  // tenant \x1f function
  std::function<HttpGauges()> http_source_;
  std::function<uint64_t()> ledger_source_;
  std::map<std::string, uint64_t> tenant_billed_ms_;  // at most kMaxTenantSeries + "_other"
  std::function<std::map<std::string, uint64_t>()> cluster_nodes_;
  std::function<bool(std::vector<QueueGauge>*)> queues_;
  std::function<std::vector<TriggerGauge>()> triggers_;
  std::atomic<bool> limits_enforced_{true};
};

}  // namespace faas::metering
