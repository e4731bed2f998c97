#include "faas/metering/metrics.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <utility>

#include "faas/metering/cpu_clock.h"

namespace faas::metering {
namespace {

// Label values are function names ([a-z0-9-]) and outcome names: nothing to escape, but keep the
// exposition valid for anything.
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendF(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void AppendF(std::string& out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  if (static_cast<std::size_t>(n) < sizeof buf) {
    out.append(buf, static_cast<std::size_t>(n));
    return;
  }
  // Long label values (route templates reach 1 KiB): format again into the string itself.
  std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(n) + 1);
  va_start(ap, fmt);
  std::vsnprintf(out.data() + at, static_cast<std::size_t>(n) + 1, fmt, ap);
  va_end(ap);
  out.resize(at + static_cast<std::size_t>(n));
}

}  // namespace

void Metrics::Histogram::Observe(std::chrono::nanoseconds d) {
  double s = static_cast<double>(d.count()) / 1e9;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (s <= kBuckets[i]) {
      ++counts[i];
    }
  }
  ++count;
  sum += s;
}

void Metrics::Histogram::Add(const Histogram& other) {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    counts[i] += other.counts[i];
  }
  count += other.count;
  sum += other.sum;
}

Metrics::Shard& Metrics::MyShard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t index = next++ % kShards;
  return shards_[index];
}

void Metrics::RecordInvocation(const InvocationSample& s) {
  Shard& shard = MyShard();
  std::lock_guard lock(shard.mu);
  PerFunction& f = shard.functions[s.function];
  ++f.by_outcome[s.outcome];
  f.cpu_ns += static_cast<uint64_t>(std::max<int64_t>(0, s.cpu.count()));
  f.billed_ms += s.billed_ms;
  if (s.cold_start) {
    ++f.cold_starts;
    f.init.Observe(s.load + s.init);
    f.phases["spawn"].Observe(s.spawn);
    f.phases["load"].Observe(s.load);
    f.phases["init"].Observe(s.init);
  }
  f.phases["queue"].Observe(s.queue);
  f.phases["exec"].Observe(s.exec);
  f.phases["total"].Observe(s.total);
}

void Metrics::RecordOutcome(const std::string& function, const std::string& outcome) {
  Shard& shard = MyShard();
  std::lock_guard lock(shard.mu);
  ++shard.functions[function].by_outcome[outcome];
}

void Metrics::RecordBackground(const std::string& function, std::chrono::nanoseconds cpu,
                               uint64_t billed_ms) {
  Shard& shard = MyShard();
  std::lock_guard lock(shard.mu);
  PerFunction& f = shard.functions[function];
  f.cpu_ns += static_cast<uint64_t>(std::max<int64_t>(0, cpu.count()));
  f.billed_ms += billed_ms;
}

void Metrics::RecordPlatformCpu(const std::string& function, std::chrono::nanoseconds cpu) {
  Shard& shard = MyShard();
  std::lock_guard lock(shard.mu);
  shard.functions[function].platform_cpu_ns +=
      static_cast<uint64_t>(std::max<int64_t>(0, cpu.count()));
}

void Metrics::RecordHttpRequest(const std::string& route, const std::string& function, int status,
                                std::chrono::nanoseconds took) {
  std::string key;
  key.reserve(route.size() + function.size() + 6);
  key.append(route).append(1, '\x1f').append(function).append(1, '\x1f');
  key += std::to_string(status);
  Shard& shard = MyShard();
  std::lock_guard lock(shard.mu);
  ++shard.http_requests[key];
  shard.http_durations[route].Observe(took);
}

void Metrics::RecordRejection(const std::string& reason) {
  std::lock_guard lock(mu_);
  ++rejections_[reason];
}

void Metrics::RecordTenantInvocation(const std::string& tenant, const std::string& function) {
  std::string key = tenant + '\x1f' + function;
  std::lock_guard lock(mu_);
  ++tenants_[key];
}

void Metrics::RecordTenantCpu(const std::string& tenant, std::chrono::nanoseconds cpu) {
  const auto ms = static_cast<uint64_t>(BilledMillis(cpu));
  std::lock_guard lock(mu_);
  auto it = tenant_billed_ms_.find(tenant);
  if (it == tenant_billed_ms_.end()) {
    const bool full =
        tenant_billed_ms_.size() - tenant_billed_ms_.count("_other") >= kMaxTenantSeries;
    it = tenant_billed_ms_.try_emplace(full ? std::string("_other") : tenant, 0).first;
  }
  it->second += ms;
}

std::string Metrics::Render() const {
  std::string out;
  std::function<std::vector<InstanceGauge>()> source;
  std::function<HttpGauges()> http_source;
  std::function<uint64_t()> ledger_source;
  std::function<std::map<std::string, uint64_t>()> cluster_nodes;
  std::function<bool(std::vector<QueueGauge>*)> queues;
  std::function<std::vector<TriggerGauge>()> triggers;
  {
    std::lock_guard lock(mu_);
    source = instances_;
    http_source = http_source_;
    ledger_source = ledger_source_;
    cluster_nodes = cluster_nodes_;
    queues = queues_;
    triggers = triggers_;
  }
  // The cluster's and the queues' gauges, outside our lock: their sources read the store,
  // Redis and the trigger manager.
  if (cluster_nodes) {
    const std::map<std::string, uint64_t> by_state = cluster_nodes();
    if (!by_state.empty()) {
      out +=
          "# HELP faas_cluster_nodes Registered nodes as this gateway sees them: up (taking "
          "work), unreachable (failing its health checks), draining, dead.\n";
      out += "# TYPE faas_cluster_nodes gauge\n";
      for (const auto& [state, n] : by_state) {
        AppendF(out, "faas_cluster_nodes{state=\"%s\"} %llu\n", Escape(state).c_str(),
                static_cast<unsigned long long>(n));
      }
    }
  }
  std::vector<QueueGauge> queue_gauges;
  if (queues && queues(&queue_gauges)) {
    out +=
        "# HELP faas_queue_messages Messages of each queue (_async: async invocations) by "
        "state: ready, delayed (retry backoff), in_flight (leased), dead (dead letters).\n";
    out += "# TYPE faas_queue_messages gauge\n";
    for (const QueueGauge& q : queue_gauges) {
      const std::string name = Escape(q.queue);
      for (const auto& [state, n] : {std::pair<const char*, uint64_t>{"ready", q.ready},
                                     {"delayed", q.delayed},
                                     {"in_flight", q.in_flight},
                                     {"dead", q.dead}}) {
        AppendF(out, "faas_queue_messages{queue=\"%s\",state=\"%s\"} %llu\n", name.c_str(), state,
                static_cast<unsigned long long>(n));
      }
    }
  }
  if (triggers) {
    const std::vector<TriggerGauge> gauges = triggers();
    out +=
        "# HELP faas_trigger_lag Messages of a trigger's source not yet delivered (Redis "
        "streams: the consumer group's lag).\n";
    out += "# TYPE faas_trigger_lag gauge\n";
    for (const TriggerGauge& t : gauges) {
      if (t.lag >= 0) {
        AppendF(out, "faas_trigger_lag{trigger=\"%s\"} %lld\n", Escape(t.trigger).c_str(),
                static_cast<long long>(t.lag));
      }
    }
    out += "# HELP faas_trigger_in_flight Deliveries of a trigger running or pending now.\n";
    out += "# TYPE faas_trigger_in_flight gauge\n";
    for (const TriggerGauge& t : gauges) {
      AppendF(out, "faas_trigger_in_flight{trigger=\"%s\"} %u\n", Escape(t.trigger).c_str(),
              t.in_flight);
    }
  }
  // Outside our lock, like the instance source.
  HttpGauges http = http_source ? http_source() : HttpGauges{};
  out +=
      "# HELP faas_limits_enforced 1 when instances' memory and pids limits are enforced, 0 "
      "when faasd runs without them (--unsafe-no-limits).\n";
  out += "# TYPE faas_limits_enforced gauge\n";
  out += limits_enforced_.load() ? "faas_limits_enforced 1\n" : "faas_limits_enforced 0\n";
  if (ledger_source) {
    out +=
        "# HELP faas_ledger_unshipped_rows Ledger rows recorded on this node and not yet "
        "committed to the central ledger.\n";
    out += "# TYPE faas_ledger_unshipped_rows gauge\n";
    AppendF(out, "faas_ledger_unshipped_rows %llu\n",
            static_cast<unsigned long long>(ledger_source()));
  }
  if (source) {  // outside our lock: the source takes the scheduler's
    out += "# HELP faas_instances Function instances by state.\n";
    out += "# TYPE faas_instances gauge\n";
    std::string waiting;
    std::string evicted;
    for (const InstanceGauge& g : source()) {
      AppendF(out, "faas_instances{function=\"%s\",state=\"idle\"} %u\n",
              Escape(g.function).c_str(), g.idle);
      AppendF(out, "faas_instances{function=\"%s\",state=\"busy\"} %u\n",
              Escape(g.function).c_str(), g.busy);
      AppendF(out, "faas_instances{function=\"%s\",state=\"zygote\"} %u\n",
              Escape(g.function).c_str(), g.zygote);
      AppendF(out, "faas_instances{function=\"%s\",state=\"parked\"} %u\n",
              Escape(g.function).c_str(), g.parked);
      AppendF(waiting, "faas_queue_waiting{function=\"%s\"} %u\n", Escape(g.function).c_str(),
              g.waiting);
      AppendF(evicted, "faas_instances_evicted_total{function=\"%s\"} %llu\n",
              Escape(g.function).c_str(), static_cast<unsigned long long>(g.evicted));
    }
    out += "# HELP faas_queue_waiting Requests waiting for a free instance.\n";
    out += "# TYPE faas_queue_waiting gauge\n";
    out += waiting;
    out +=
        "# HELP faas_instances_evicted_total Idle instances stopped to make room in the node's "
        "warm pool (faasd --warm-pool).\n";
    out += "# TYPE faas_instances_evicted_total counter\n";
    out += evicted;
  }
  // The shards merged, one at a time (a scrape sees each shard at some instant).
  std::map<std::string, PerFunction> functions;
  std::map<std::string, uint64_t> http_requests;
  std::map<std::string, Histogram> http_durations;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (const auto& [fn, f] : shard.functions) {
      PerFunction& m = functions[fn];
      for (const auto& [outcome, n] : f.by_outcome) {
        m.by_outcome[outcome] += n;
      }
      m.cold_starts += f.cold_starts;
      m.cpu_ns += f.cpu_ns;
      m.billed_ms += f.billed_ms;
      m.platform_cpu_ns += f.platform_cpu_ns;
      m.init.Add(f.init);
      for (const auto& [phase, h] : f.phases) {
        m.phases[phase].Add(h);
      }
    }
    for (const auto& [key, n] : shard.http_requests) {
      http_requests[key] += n;
    }
    for (const auto& [route, h] : shard.http_durations) {
      http_durations[route].Add(h);
    }
  }
  std::lock_guard lock(mu_);
  out += "# HELP faas_invocations_total Invocations by function and outcome.\n";
  out += "# TYPE faas_invocations_total counter\n";
  for (const auto& [fn, f] : functions) {
    for (const auto& [outcome, n] : f.by_outcome) {
      AppendF(out, "faas_invocations_total{function=\"%s\",outcome=\"%s\"} %llu\n",
              Escape(fn).c_str(), Escape(outcome).c_str(), static_cast<unsigned long long>(n));
    }
  }
  out += "# HELP faas_coldstarts_total Invocations that had to start an instance.\n";
  out += "# TYPE faas_coldstarts_total counter\n";
  for (const auto& [fn, f] : functions) {
    AppendF(out, "faas_coldstarts_total{function=\"%s\"} %llu\n", Escape(fn).c_str(),
            static_cast<unsigned long long>(f.cold_starts));
  }
  out += "# HELP faas_cpu_seconds_total CPU time of the function's instances, from the kernel.\n";
  out += "# TYPE faas_cpu_seconds_total counter\n";
  for (const auto& [fn, f] : functions) {
    AppendF(out, "faas_cpu_seconds_total{function=\"%s\"} %.9f\n", Escape(fn).c_str(),
            static_cast<double>(f.cpu_ns) / 1e9);
  }
  out +=
      "# HELP faas_platform_cpu_seconds_total CPU the platform spent starting the function's "
      "instances and zygotes (exec, jail, fork): measured, never billed.\n";
  out += "# TYPE faas_platform_cpu_seconds_total counter\n";
  for (const auto& [fn, f] : functions) {
    AppendF(out, "faas_platform_cpu_seconds_total{function=\"%s\"} %.9f\n", Escape(fn).c_str(),
            static_cast<double>(f.platform_cpu_ns) / 1e9);
  }
  // Prometheus wants base units (seconds): billing counts whole milliseconds, so this is exact
  // to three decimals.
  out += "# HELP faas_billed_cpu_seconds_total Billed CPU time.\n";
  out += "# TYPE faas_billed_cpu_seconds_total counter\n";
  for (const auto& [fn, f] : functions) {
    AppendF(out, "faas_billed_cpu_seconds_total{function=\"%s\"} %llu.%03llu\n", Escape(fn).c_str(),
            static_cast<unsigned long long>(f.billed_ms / 1000),
            static_cast<unsigned long long>(f.billed_ms % 1000));
  }
  auto histogram = [&](const char* name, const std::string& labels, const Histogram& h) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      AppendF(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels.c_str(), kBuckets[i],
              static_cast<unsigned long long>(h.counts[i]));
    }
    AppendF(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels.c_str(),
            static_cast<unsigned long long>(h.count));
    AppendF(out, "%s_sum{%s} %.9f\n", name, labels.c_str(), h.sum);
    AppendF(out, "%s_count{%s} %llu\n", name, labels.c_str(),
            static_cast<unsigned long long>(h.count));
  };
  out += "# HELP faas_init_duration_seconds Load + faas_init time of cold starts.\n";
  out += "# TYPE faas_init_duration_seconds histogram\n";
  for (const auto& [fn, f] : functions) {
    histogram("faas_init_duration_seconds", "function=\"" + Escape(fn) + "\"", f.init);
  }
  out +=
      "# HELP faas_invoke_duration_seconds Invocation phases (queue, spawn, load, init, exec, "
      "total).\n";
  out += "# TYPE faas_invoke_duration_seconds histogram\n";
  for (const auto& [fn, f] : functions) {
    for (const auto& [phase, h] : f.phases) {
      histogram("faas_invoke_duration_seconds",
                "function=\"" + Escape(fn) + "\",phase=\"" + phase + "\"", h);
    }
  }

  out += "# HELP faas_http_requests_total HTTP requests answered, by route, function and status.\n";
  out += "# TYPE faas_http_requests_total counter\n";
  for (const auto& [key, n] : http_requests) {
    std::size_t a = key.find('\x1f');
    std::size_t b = key.find('\x1f', a + 1);
    AppendF(out, "faas_http_requests_total{route=\"%s\",function=\"%s\",status=\"%s\"} %llu\n",
            Escape(key.substr(0, a)).c_str(), Escape(key.substr(a + 1, b - a - 1)).c_str(),
            key.substr(b + 1).c_str(), static_cast<unsigned long long>(n));
  }
  out += "# HELP faas_http_request_duration_seconds Request parsed until response ready.\n";
  out += "# TYPE faas_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : http_durations) {
    histogram("faas_http_request_duration_seconds", "route=\"" + Escape(route) + "\"", h);
  }
  out += "# HELP faas_http_in_flight Requests being handled now.\n";
  out += "# TYPE faas_http_in_flight gauge\n";
  AppendF(out, "faas_http_in_flight %lld\n", static_cast<long long>(http.in_flight));
  out +=
      "# HELP faas_http_rejections_total Requests and connections refused before any function "
      "ran, by reason.\n";
  out += "# TYPE faas_http_rejections_total counter\n";
  std::map<std::string, uint64_t> all = http.rejections;
  for (const auto& [reason, n] : rejections_) {
    all[reason] += n;
  }
  for (const auto& [reason, n] : all) {
    AppendF(out, "faas_http_rejections_total{reason=\"%s\"} %llu\n", Escape(reason).c_str(),
            static_cast<unsigned long long>(n));
  }
  out += "# HELP faas_tenant_invocations_total Invocations by API-key tenant and function.\n";
  out += "# TYPE faas_tenant_invocations_total counter\n";
  for (const auto& [key, n] : tenants_) {
    std::size_t a = key.find('\x1f');
    AppendF(out, "faas_tenant_invocations_total{tenant=\"%s\",function=\"%s\"} %llu\n",
            Escape(key.substr(0, a)).c_str(), Escape(key.substr(a + 1)).c_str(),
            static_cast<unsigned long long>(n));
  }
  out +=
      "# HELP faas_tenant_billed_cpu_seconds_total Billed CPU of invocations made with an API key "
      "of the tenant (whole milliseconds, shown in seconds; tenants past the first 1000 are "
      "summed as _other).\n";
  out += "# TYPE faas_tenant_billed_cpu_seconds_total counter\n";
  for (const auto& [tenant, ms] : tenant_billed_ms_) {
    AppendF(out, "faas_tenant_billed_cpu_seconds_total{tenant=\"%s\"} %llu.%03llu\n",
            Escape(tenant).c_str(), static_cast<unsigned long long>(ms / 1000),
            static_cast<unsigned long long>(ms % 1000));
  }
  return out;
}

}  // namespace faas::metering
