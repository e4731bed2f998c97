// Over 700 lines, knowingly: the blocking and event-loop invocation paths, the reaper and the
// zygote starts all share the pools' state under one mutex here, and splitting the file before
// that state has one owner would only spread the locking rules over more files. Issue #14
// rebuilds this around a per-function Pool (one admission path, a launcher and a clock seam);
// that cut is where the file splits.
#include "faas/scheduler/scheduler.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "faas/base/event_loop.h"
#include "faas/base/log.h"
#include "faas/sandbox/cgroup.h"
#include "faas/sandbox/channel.h"

#include "instance.h"
#include "recorder.h"
#include "zygote.h"

namespace faas::scheduler {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFunctionError:
      return "function_error";
    case Outcome::kCrashed:
      return "function_crashed";
    case Outcome::kTimeout:
      return "function_timeout";
    case Outcome::kInitFailed:
      return "init_failed";
    case Outcome::kResponseTooLarge:
      return "response_too_large";
    case Outcome::kSandboxViolation:
      return "sandbox_violation";
    case Outcome::kNoCapacity:
      return "no_capacity";
    case Outcome::kNotFound:
      return "function_not_found";
    case Outcome::kPayloadTooLarge:
      return "payload_too_large";
    case Outcome::kShuttingDown:
      return "shutting_down";
    case Outcome::kInternal:
      return "internal";
  }
  return "internal";
}

namespace {

using InstancePtr = std::unique_ptr<Instance>;
// Failed starts plus deaths of one version's zygotes before it spawns every instance instead.
constexpr uint32_t kMaxZygoteFailures = 5;

struct Pool;

// One InvokeAsync call, from its arrival to its `done` (docs/design/0006-warm-path-reactor.md).
// Touched by its loop's thread only, except while it waits in Pool::async_waiters (under mu) and
// while a blocking thread finishes a failed invocation (the loop does nothing with it then).
struct AsyncCall {
  std::string name;
  InvokeRequest request;
  EventLoop* loop = nullptr;
  std::function<void(InvokeResult)> done;
  int64_t start_unix_ms = 0;
  std::shared_ptr<Pool> pool;
  std::shared_ptr<const FunctionSpec> spec;
  InvokeResult out;
  std::unique_ptr<Instance> inst;  // while it runs
  Instance::Exchange x;
  uint64_t timer = 0;    // the queue timeout, then the next CPU/deadline check
  uint32_t watched = 0;  // the channel's epoll events while watched, else 0
  bool first_check = true;
  AnswerBudget::Ticket budget_ticket = 0;  // waiting for answer-buffer bytes (AnswerBudget)
};
using AsyncPtr = std::shared_ptr<AsyncCall>;

struct Pool {
  std::shared_ptr<const FunctionSpec> spec;  // the current version
  std::vector<InstancePtr> idle;             // back = most recently used
  std::set<Instance*> busy;                  // running an invocation (owned by that thread)
  uint32_t total = 0;                        // idle + busy + starting
  uint32_t waiting = 0;                      // requests queued for an instance
  uint64_t invocations = 0;
  uint64_t cold_starts = 0;
  bool removed = false;
  // The current version's zygote (cold starts fork from it), started by the reaper thread.
  std::shared_ptr<Zygote> zygote;
  uint32_t zygote_failures = 0;         // failed starts and deaths of this version's zygotes
  Clock::time_point zygote_retry_at{};  // restart backoff
  bool zygote_disabled = false;         // this version spawns every instance (logged once)
  // The function's cgroup level (f-<name>): its instances and zygotes are made below it.
  std::shared_ptr<sandbox::FunctionCgroup> cgroup;
  std::condition_variable freed;  // an instance or a slot became available
  // InvokeAsync calls queued for an instance (also counted in `waiting`), oldest first.
  std::deque<AsyncPtr> async_waiters;
  bool serve_async_next = false;  // with both kinds waiting, turns alternate
};

// With mu held: the most recently used idle instance of `version`, or nullptr. Idle instances of
// other versions met on the way leave the pool for `dead`.
InstancePtr TakeIdleLocked(Pool& pool, uint32_t version, std::vector<InstancePtr>* dead) {
  while (!pool.idle.empty()) {
    InstancePtr inst = std::move(pool.idle.back());
    pool.idle.pop_back();
    if (inst->Spec().version == version) {
      return inst;
    }
    --pool.total;
    dead->push_back(std::move(inst));
  }
  return nullptr;
}

// The refusals both invocation paths give, worded once.
constexpr const char* kShuttingDownMessage = "faasd is shutting down";
std::string NotFoundMessage(const std::string& name) {
  return "function \"" + name + "\" does not exist";
}
std::string DeletedMessage(const std::string& name) {
  return "function \"" + name + "\" was deleted";
}
std::string TooLargeMessage(const std::string& name, std::size_t size,
                            const store::FunctionConfig& cfg) {
  return "the request body of " + std::to_string(size) + " bytes is over the limit of " +
         std::to_string(cfg.max_body_bytes) + " bytes for \"" + name + "\"";
}
std::string QueueFullMessage(const std::string& name, const store::FunctionConfig& cfg,
                             uint32_t waiting) {
  return "all " + std::to_string(cfg.max_instances) + " instances of \"" + name +
         "\" are busy and " + std::to_string(waiting) + " requests are already waiting";
}
std::string QueueTimeoutMessage(const std::string& name, const store::FunctionConfig& cfg) {
  return "all " + std::to_string(cfg.max_instances) + " instances of \"" + name +
         "\" stayed busy for " + FormatDuration(store::EffectiveQueueTimeout(cfg));
}

}  // namespace

struct Scheduler::Impl {
  SchedulerOptions options;
  std::unique_ptr<Recorder> recorder;
  std::shared_ptr<spdlog::logger> log = log::Get("scheduler");
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Pool>, std::less<>> pools;
  // Each function's current version, for Current(): the gateway asks on every request, and a
  // shared lock keeps those lookups off `mu`. Written with mu held (order: mu, then specs_mu).
  mutable std::shared_mutex specs_mu;
  std::map<std::string, std::shared_ptr<const FunctionSpec>, std::less<>> specs;
  bool stopping = false;
  int in_flight = 0;
  std::condition_variable drained;
  std::condition_variable reaper_wake;
  bool reaper_work = false;  // something for the reaper now (a new version wants a zygote)
  std::thread reaper;
  // Zygotes no pool uses any more; the last instance forked from one may still hold it. Released
  // by the reaper outside the lock (closing one kills its namespace and waits). Guarded by mu.
  std::vector<std::shared_ptr<Zygote>> retired_zygotes;
  void RetireZygote(Pool* pool) {  // mu held
    if (pool->zygote) {
      retired_zygotes.push_back(std::move(pool->zygote));
      pool->zygote.reset();
    }
  }
  // Zygotes Prepare started for a deploy, by function, until the SetFunction that follows adopts
  // one (docs/design/0014-cold-start-after-deploy.md). The spec object is the zygote's alone
  // until then (no instance was forked from it), so adoption can write the version number into
  // it. Guarded by mu.
  struct Prepared {
    std::shared_ptr<FunctionSpec> spec;
    std::shared_ptr<Zygote> zygote;
  };
  std::map<std::string, Prepared, std::less<>> prepared;
  void DropPreparedLocked(std::string_view name) {  // mu held; the reaper stops it
    if (auto it = prepared.find(name); it != prepared.end()) {
      retired_zygotes.push_back(std::move(it->second.zygote));
      prepared.erase(it);
      reaper_work = true;
      reaper_wake.notify_all();
    }
  }
  // SetFunction's hook (mu held): the zygote prepared for `spec` becomes the pool's, billed now.
  void AdoptPreparedLocked(Pool* pool, const FunctionSpec& spec);
  // Instances done with: destroyed (SIGKILL, reap, cgroup removal: milliseconds) by the reaper
  // thread, off the request path. Guarded by mu.
  std::vector<InstancePtr> graveyard;
  void ToGraveyard(std::vector<InstancePtr>* dead) {  // mu held
    if (!dead->empty()) {
      std::move(dead->begin(), dead->end(), std::back_inserter(graveyard));
      dead->clear();
      reaper_wake.notify_all();
    }
  }

  void ReaperLoop();
  // Starts a zygote for each pool in `pools` that still wants one. Called and returns with the
  // lock held; starts run without it.
  void StartZygotes(std::unique_lock<std::mutex>& lock,
                    const std::vector<std::shared_ptr<Pool>>& want);
  // Moves the request's body into the worker's frame.
  InvokeResult InvokeInner(const std::string& name, InvokeRequest& request,
                           std::shared_ptr<const FunctionSpec>* spec_out);
  // Bills what an instance used when it ends: background CPU, and the teardown as platform.
  Instance::OnEnd BillAtEnd() {
    Recorder* rec = recorder.get();
    return [rec](const FunctionSpec& spec, std::chrono::nanoseconds background,
                 std::chrono::nanoseconds platform) {
      rec->Background(spec, background, /*final=*/true);
      rec->Platform(spec, platform);
    };
  }
  // A new instance is ready: records its start's CPU (init billed, platform counted) and bills
  // its background CPU from now on. Call once per started instance, kept or not.
  void Started(Instance* inst) {
    recorder->Started(inst->Spec(), inst->PlatformCpu(), inst->InitCpu());
    inst->SetOnEnd(BillAtEnd());
  }
  // Returns the instance to the idle list or to `dead` (mu held). The caller then notifies
  // pool->freed after unlocking, so the woken waiter does not block at once on mu.
  void Release(const std::shared_ptr<Pool>& pool, InstancePtr inst, std::vector<InstancePtr>* dead);

  // Scheduler::Invoke's body.
  InvokeResult InvokeSync(const std::string& name, InvokeRequest request);
  // The async path (loop thread unless said otherwise).
  void InvokeAsync(const AsyncPtr& call);
  // Runs the whole invocation on a blocking thread (cold starts, forced fresh instances).
  void RunBlocking(const AsyncPtr& call);
  void StartAsync(const AsyncPtr& call);  // the call holds a busy instance
  void PumpAsync(const AsyncPtr& call);
  void CheckAsync(const AsyncPtr& call);  // CPU budget and deadline
  void StopWatching(const AsyncPtr& call);
  // The call reads no more of its answer: stops waiting for budget, frees the buffer, gives
  // back what it took. Loop thread.
  void EndAnswer(const AsyncPtr& call);
  void OnBudget(const AsyncPtr& call);  // the bytes a waiting call asked for were taken for it
  void FailAsync(const AsyncPtr& call,
                 const Status& why);         // Finish on a blocking thread, then Complete
  void CompleteAsync(const AsyncPtr& call);  // release the instance, record, done
  // Ends a call that got no instance (refused, timed out in the queue, shut down); any thread.
  void EndWithout(const AsyncPtr& call, Outcome outcome, std::string message);
  void OnQueueTimeout(const AsyncPtr& call);
  // Runs `fn` on the call's loop: now when this is that loop's thread, else posted there.
  static void OnLoopOf(const AsyncPtr& call, std::function<void()> fn);
  static void CancelTimer(const AsyncPtr& call);  // the call's loop thread
  // With mu held: hands idle instances (and free slots) to queued async calls. The caller runs
  // RunHandoffs after unlocking.
  struct Handoffs {
    std::vector<AsyncPtr> start;  // got an instance
    std::vector<AsyncPtr> cold;   // got a free slot: cold start on a blocking thread
  };
  void HandOffLocked(const std::shared_ptr<Pool>& pool, std::vector<InstancePtr>* dead,
                     Handoffs* h);
  void RunHandoffs(Handoffs& h);

  // What answers being received may hold together (SchedulerOptions::answer_buffer_budget).
  std::unique_ptr<AnswerBudget> answer_budget;
  BlockingPool blocking;  // last: destroyed (joined) first
};

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->answer_budget = std::make_unique<AnswerBudget>(impl_->options.answer_buffer_budget);
  impl_->recorder = std::make_unique<Recorder>(impl_->options.ledger, impl_->options.metrics,
                                               impl_->options.prices);
  impl_->reaper = std::thread([this] { impl_->ReaperLoop(); });
  if (impl_->options.cgroups != nullptr && impl_->options.spare_cgroups > 0) {
    sandbox::CgroupLimits base;  // the default function: one write adjusts other memory sizes
    base.memory_bytes = uint64_t{store::FunctionConfig{}.memory_mb} << 20;
    base.pids_max = impl_->options.pids_max;
    impl_->options.cgroups->KeepSpares(impl_->options.spare_cgroups, base);
  }
}

Scheduler::~Scheduler() {
  Shutdown();
}

void Scheduler::SetFunction(FunctionSpec spec) {
  auto shared = std::make_shared<const FunctionSpec>(std::move(spec));
  std::vector<InstancePtr> retired;
  // The function's cgroup level, made (a few mkdirs) before taking the lock. Without one,
  // instances are made at the top level.
  std::shared_ptr<sandbox::FunctionCgroup> group;
  if (impl_->options.cgroups != nullptr) {
    auto made = impl_->options.cgroups->Function(shared->name,
                                                 FunctionLevelLimits(*shared, impl_->options));
    if (made.ok()) {
      group = std::move(*made);
    } else {
      FAAS_LOG(impl_->log, warn, "function.cgroup_failed", {"fn", shared->name},
               {"error", made.status().message()});
    }
  }
  {
    std::lock_guard lock(impl_->mu);
    auto& pool = impl_->pools[shared->name];
    if (!pool) {
      pool = std::make_shared<Pool>();
    }
    if (group != nullptr) {
      pool->cgroup = std::move(group);  // the old level (if any) goes when its last instance does
    }
    pool->spec = shared;
    {
      std::unique_lock specs_lock(impl_->specs_mu);
      impl_->specs[shared->name] = shared;
    }
    // The zygote was started with the old spec (library, env, limits): a new one is made.
    impl_->RetireZygote(pool.get());
    pool->zygote_failures = 0;
    pool->zygote_retry_at = {};
    pool->zygote_disabled = false;
    impl_->AdoptPreparedLocked(pool.get(), *shared);
    impl_->reaper_work = true;
    auto stale = std::stable_partition(pool->idle.begin(), pool->idle.end(), [&](auto& i) {
      return i->Spec().version == shared->version;
    });
    std::move(stale, pool->idle.end(), std::back_inserter(retired));
    pool->idle.erase(stale, pool->idle.end());
    pool->total -= static_cast<uint32_t>(retired.size());
  }
  impl_->reaper_wake.notify_all();  // min_warm may have changed
  FAAS_LOG(impl_->log, info, "function.set", {"fn", shared->name}, {"version", shared->version},
           {"retired", retired.size()});
}

void Scheduler::RemoveFunction(const std::string& name) {
  std::vector<InstancePtr> retired;
  std::vector<AsyncPtr> gone;  // queued async calls
  {
    std::lock_guard lock(impl_->mu);
    impl_->DropPreparedLocked(name);
    auto it = impl_->pools.find(name);
    if (it == impl_->pools.end()) {
      return;
    }
    it->second->removed = true;
    gone.assign(it->second->async_waiters.begin(), it->second->async_waiters.end());
    it->second->waiting -= static_cast<uint32_t>(gone.size());
    it->second->async_waiters.clear();
    impl_->RetireZygote(it->second.get());
    impl_->reaper_work = true;
    retired = std::move(it->second->idle);
    it->second->total -= static_cast<uint32_t>(retired.size());
    it->second->freed.notify_all();
    impl_->pools.erase(it);
    std::unique_lock specs_lock(impl_->specs_mu);
    impl_->specs.erase(name);
  }
  for (const AsyncPtr& call : gone) {
    impl_->EndWithout(call, Outcome::kNotFound, DeletedMessage(name));
  }
  FAAS_LOG(impl_->log, info, "function.removed", {"fn", name}, {"stopped", retired.size()});
}

void Scheduler::Impl::Release(const std::shared_ptr<Pool>& pool, InstancePtr inst,
                              std::vector<InstancePtr>* dead) {
  pool->busy.erase(inst.get());
  bool keep = inst->Healthy() && !pool->removed && !stopping &&
              inst->Spec().version == pool->spec->version &&
              pool->spec->config.isolation != "fresh";
  if (keep) {
    inst->last_used = Clock::now();
    pool->idle.push_back(std::move(inst));
  } else {
    --pool->total;
    dead->push_back(std::move(inst));
  }
}

InvokeResult Scheduler::Invoke(const std::string& name, InvokeRequest request) {
  return impl_->InvokeSync(name, std::move(request));
}

InvokeResult Scheduler::Impl::InvokeSync(const std::string& name, InvokeRequest request) {
  int64_t start_unix_ms = UnixMillisNow();
  std::shared_ptr<const FunctionSpec> spec;
  InvokeResult out = InvokeInner(name, request, &spec);
  if (out.outcome != Outcome::kNotFound) {
    // Before the caller answers the client: an answered invocation is always in the ledger.
    recorder->Invocation(spec.get(), name, request, out, start_unix_ms);
  }
  return out;
}

void Scheduler::InvokeAsync(const std::string& name, InvokeRequest request, EventLoop* loop,
                            std::function<void(InvokeResult)> done) {
  auto call = std::make_shared<AsyncCall>();
  call->name = name;
  call->request = std::move(request);
  call->loop = loop;
  call->done = std::move(done);
  call->start_unix_ms = UnixMillisNow();
  impl_->InvokeAsync(call);
}

InvokeResult Scheduler::Impl::InvokeInner(const std::string& name, InvokeRequest& request,
                                          std::shared_ptr<const FunctionSpec>* spec_out) {
  InvokeResult out;
  std::shared_ptr<Pool> pool;
  std::shared_ptr<const FunctionSpec> spec;
  InstancePtr inst;
  std::vector<InstancePtr> dead;  // destroyed (SIGKILL + reap) outside the lock
  {
    std::unique_lock lock(mu);
    if (stopping) {
      out.outcome = Outcome::kShuttingDown;
      out.error_message = kShuttingDownMessage;
      return out;
    }
    auto it = pools.find(name);
    if (it == pools.end()) {
      out.outcome = Outcome::kNotFound;
      out.error_message = NotFoundMessage(name);
      return out;
    }
    pool = it->second;
    spec = pool->spec;
    *spec_out = spec;
    out.version = spec->version;
    if (request.body.size() > spec->config.max_body_bytes) {
      out.outcome = Outcome::kPayloadTooLarge;
      out.error_message = TooLargeMessage(name, request.body.size(), spec->config);
      return out;
    }
    ++in_flight;
    // Backpressure: at max_instances, a request waits in a bounded queue for a free instance.
    auto wait_until = request.arrived + store::EffectiveQueueTimeout(spec->config);
    bool queued = false;
    for (;;) {
      if (pool->removed) {
        out.outcome = Outcome::kNotFound;
        out.error_message = DeletedMessage(name);
        break;
      }
      if (!request.fresh && (inst = TakeIdleLocked(*pool, spec->version, &dead)) != nullptr) {
        break;
      }
      if (request.fresh && !pool->idle.empty() && pool->total >= spec->config.max_instances) {
        // A forced cold start at max_instances makes room by stopping an idle instance.
        dead.push_back(std::move(pool->idle.front()));
        pool->idle.erase(pool->idle.begin());
        --pool->total;
      }
      if (pool->total < spec->config.max_instances) {
        ++pool->total;
        out.cold_start = true;
        ++pool->cold_starts;
        break;
      }
      if (!queued) {
        if (pool->waiting >= spec->config.queue_depth) {
          out.outcome = Outcome::kNoCapacity;
          out.error_message = QueueFullMessage(name, spec->config, pool->waiting);
          break;
        }
        queued = true;
        ++pool->waiting;
      }
      if (pool->freed.wait_until(lock, wait_until) == std::cv_status::timeout &&
          pool->idle.empty() && pool->total >= spec->config.max_instances) {
        out.outcome = Outcome::kNoCapacity;
        out.error_message = QueueTimeoutMessage(name, spec->config);
        break;
      }
    }
    if (queued) {
      --pool->waiting;
    }
    if (inst) {
      pool->busy.insert(inst.get());
    }
    if (!inst && !out.cold_start) {
      --in_flight;
      drained.notify_all();
      ToGraveyard(&dead);
      return out;
    }
  }
  out.timings.queue = Clock::now() - request.arrived;

  if (out.cold_start) {
    std::shared_ptr<Zygote> zygote;
    std::shared_ptr<sandbox::FunctionCgroup> group;
    {
      std::lock_guard lock(mu);
      zygote = pool->zygote;
      group = pool->cgroup;
    }
    auto t0 = Clock::now();
    StartTimings st;
    auto started = Instance::Create(spec, options, zygote, group, &st);
    out.timings.spawn = st.spawn;
    out.timings.load = st.load;
    out.timings.init = st.init;
    out.timings.cold = Clock::now() - t0;
    if (!started.ok()) {
      const Status& s = started.status();
      bool lib_fault =
          s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kDeadlineExceeded;
      out.outcome = lib_fault ? Outcome::kInitFailed : Outcome::kInternal;
      out.error_message = lib_fault ? s.message() : "cannot start an instance: " + s.message();
      FAAS_LOG(log, warn, "instance.start_failed", {"fn", name}, {"inv", request.invocation_id},
               {"error", s.message()});
      Handoffs handoffs;
      {
        std::lock_guard lock(mu);
        --pool->total;
        ++pool->invocations;
        HandOffLocked(pool, &dead, &handoffs);
        pool->freed.notify_one();
        --in_flight;
        drained.notify_all();
        ToGraveyard(&dead);
      }
      RunHandoffs(handoffs);
      return out;
    }
    inst = std::move(*started);
    out.forked = inst->Forked();
    Started(inst.get());
    FAAS_LOG(log, debug, "instance.started", {"fn", name}, {"pid", inst->Pid()},
             {"inv", request.invocation_id}, {"cold_ms", ToMillis(out.timings.cold)},
             {"start", out.forked ? "fork" : "spawn"});
    std::lock_guard lock(mu);
    pool->busy.insert(inst.get());
    if (zygote != nullptr && !out.forked) {
      reaper_work = true;  // the fork failed: the zygote is dead, restart it now
      reaper_wake.notify_all();
    }
  }

  out.version = spec->version;
  inst->Invoke(request, options.log_capture_bytes, *answer_budget, &out);
  if (!inst->Healthy()) {
    FAAS_LOG(log, warn, "instance.lost", {"fn", name}, {"inv", request.invocation_id},
             {"pid", inst->Pid()}, {"outcome", OutcomeName(out.outcome)},
             {"reason", out.error_message});
  }
  if (request.fresh) {
    inst->Retire();  // used once, never reused
  }
  if (auto bg = inst->TakeBackgroundCpu(false); bg.count() > 0) {
    recorder->Background(inst->Spec(), bg, /*final=*/false);
  }
  Handoffs handoffs;
  {
    std::lock_guard lock(mu);
    ++pool->invocations;
    Release(pool, std::move(inst), &dead);
    HandOffLocked(pool, &dead, &handoffs);
    --in_flight;
    drained.notify_all();
    ToGraveyard(&dead);
  }
  pool->freed.notify_one();
  RunHandoffs(handoffs);
  return out;
}

void Scheduler::Impl::InvokeAsync(const AsyncPtr& call) {
  InvokeResult& out = call->out;
  std::vector<InstancePtr> dead;
  std::unique_lock lock(mu);
  if (stopping) {
    lock.unlock();
    EndWithout(call, Outcome::kShuttingDown, kShuttingDownMessage);
    return;
  }
  auto it = pools.find(call->name);
  if (it == pools.end()) {
    lock.unlock();
    EndWithout(call, Outcome::kNotFound, NotFoundMessage(call->name));
    return;
  }
  call->pool = it->second;
  call->spec = call->pool->spec;
  Pool& pool = *call->pool;
  const store::FunctionConfig& cfg = call->spec->config;
  out.version = call->spec->version;
  if (call->request.body.size() > cfg.max_body_bytes) {
    lock.unlock();
    EndWithout(call, Outcome::kPayloadTooLarge,
               TooLargeMessage(call->name, call->request.body.size(), cfg));
    return;
  }
  if (call->request.fresh) {
    lock.unlock();
    RunBlocking(call);
    return;
  }
  // Waiting blocked callers go first (HandOffLocked alternates while both kinds wait).
  const bool others_first = pool.waiting > 0;
  if (!others_first) {
    call->inst = TakeIdleLocked(pool, call->spec->version, &dead);
  }
  ToGraveyard(&dead);
  if (call->inst) {
    pool.busy.insert(call->inst.get());
    ++in_flight;
    lock.unlock();
    StartAsync(call);
    return;
  }
  if (!others_first && pool.total < cfg.max_instances) {
    lock.unlock();
    RunBlocking(call);  // a cold start: spawning and init may take a while
    return;
  }
  if (pool.waiting >= cfg.queue_depth) {
    std::string message = QueueFullMessage(call->name, cfg, pool.waiting);
    lock.unlock();
    EndWithout(call, Outcome::kNoCapacity, std::move(message));
    return;
  }
  // Backpressure: wait in the bounded queue for an instance; HandOffLocked starts it.
  ++pool.waiting;
  pool.async_waiters.push_back(call);
  lock.unlock();
  const auto until = call->request.arrived + store::EffectiveQueueTimeout(cfg);
  call->timer = call->loop->AddTimer(until, [this, call] {
    call->timer = 0;
    OnQueueTimeout(call);
  });
}

void Scheduler::Impl::OnQueueTimeout(const AsyncPtr& call) {
  {
    std::lock_guard lock(mu);
    auto& waiters = call->pool->async_waiters;
    auto it = std::find(waiters.begin(), waiters.end(), call);
    if (it == waiters.end()) {
      return;  // handed an instance meanwhile: its start is on the way
    }
    waiters.erase(it);
    --call->pool->waiting;
  }
  EndWithout(call, Outcome::kNoCapacity, QueueTimeoutMessage(call->name, call->spec->config));
}

void Scheduler::Impl::EndWithout(const AsyncPtr& call, Outcome outcome, std::string message) {
  call->out.outcome = outcome;
  call->out.error_message = std::move(message);
  call->out.timings.queue = Clock::now() - call->request.arrived;
  auto finish = [this, call] {
    if (call->out.outcome != Outcome::kNotFound) {
      recorder->Invocation(call->spec.get(), call->name, call->request, call->out,
                           call->start_unix_ms);
    }
    call->done(std::move(call->out));
  };
  OnLoopOf(call, std::move(finish));
}

void Scheduler::Impl::OnLoopOf(const AsyncPtr& call, std::function<void()> fn) {
  if (call->loop->InLoopThread()) {
    fn();
  } else {
    call->loop->Post(std::move(fn));
  }
}

void Scheduler::Impl::CancelTimer(const AsyncPtr& call) {
  if (call->timer != 0) {
    call->loop->CancelTimer(call->timer);
    call->timer = 0;
  }
}

void Scheduler::Impl::RunBlocking(const AsyncPtr& call) {
  auto task = [this, call] {
    auto result = std::make_shared<InvokeResult>(InvokeSync(call->name, std::move(call->request)));
    call->loop->Post([call, result] { call->done(std::move(*result)); });
  };
  if (!blocking.Run(task)) {
    EndWithout(call, Outcome::kInternal, "cannot start a thread for the invocation");
  }
}

void Scheduler::Impl::StartAsync(const AsyncPtr& call) {
  CancelTimer(call);  // the queue timeout
  call->out.timings.queue = Clock::now() - call->request.arrived;
  call->out.version = call->spec->version;
  call->inst->Begin(call->request, &call->x);
  call->first_check = true;
  PumpAsync(call);
}

void Scheduler::Impl::PumpAsync(const AsyncPtr& call) {
  Result<std::string> answer = InternalError("no answer");
  Instance::Pumped p = call->inst->Pump(&call->x, &answer);
  while (p == Instance::Pumped::kNeedsBudget) {
    Instance::Exchange& x = call->x;
    const std::size_t need = x.answer_bytes - x.budget_bytes;
    call->budget_ticket = answer_budget->Take(need, [this, call] {
      call->loop->Post([this, call] { OnBudget(call); });  // never inline: any thread
    });
    if (call->budget_ticket != 0) {
      // Read nothing more until the bytes are there: the worker blocks on its full socket,
      // and the call's timers (deadline, CPU limit) still run.
      if (call->watched != 0) {
        call->loop->Unwatch(call->inst->ChannelFd());
        call->watched = 0;
      }
      if (call->timer == 0) {
        CheckAsync(call);
      }
      return;
    }
    x.budget_bytes = x.answer_bytes;
    p = call->inst->Pump(&call->x, &answer);
  }
  if (p == Instance::Pumped::kWaiting) {
    const uint32_t want = EPOLLIN | (call->x.WantsWrite() ? EPOLLOUT : 0u);
    if (call->watched != want) {
      const int fd = call->inst->ChannelFd();
      if (call->watched != 0) {
        call->loop->Unwatch(fd);
      }
      call->watched = 0;
      if (Status s = call->loop->Watch(fd, want, [this, call](uint32_t) { PumpAsync(call); });
          !s.ok()) {
        StopWatching(call);
        FailAsync(call, InternalError("cannot watch the worker's channel: " + s.message()));
        return;
      }
      call->watched = want;
    }
    if (call->timer == 0) {
      CheckAsync(call);
    }
    return;
  }
  StopWatching(call);
  if (p == Instance::Pumped::kAnswered) {
    Status violation = call->inst->Settle(call->x, *answer, options.log_capture_bytes, &call->out,
                                          sandbox::kFrameHeaderBytes);
    answer = std::string();  // freed before its budget is given back
    if (violation.ok()) {
      EndAnswer(call);
      CompleteAsync(call);
      return;
    }
    // A framed but unacceptable answer: the worker is killed, which is not the loop's to wait
    // for (issue #13: killing and reaping took the loop tens of milliseconds).
    FailAsync(call, violation);
    return;
  }
  FailAsync(call, answer.status());
}

void Scheduler::Impl::OnBudget(const AsyncPtr& call) {
  if (call->budget_ticket == 0) {
    return;  // the call ended meanwhile and gave the bytes back (EndAnswer)
  }
  call->budget_ticket = 0;
  call->x.budget_bytes = call->x.answer_bytes;
  PumpAsync(call);
}

void Scheduler::Impl::EndAnswer(const AsyncPtr& call) {
  Instance::Exchange& x = call->x;
  if (call->budget_ticket != 0) {
    if (!answer_budget->Withdraw(call->budget_ticket)) {
      x.budget_bytes = x.answer_bytes;  // taken for it meanwhile: OnBudget will find 0
    }
    call->budget_ticket = 0;
  }
  x.frame = std::string();
  answer_budget->Give(x.budget_bytes);
  x.budget_bytes = 0;
}

void Scheduler::Impl::CheckAsync(const AsyncPtr& call) {
  Status expired;
  const Clock::time_point next = call->inst->NextCheck(&call->x, call->first_check, &expired);
  call->first_check = false;
  if (!expired.ok()) {
    StopWatching(call);
    FailAsync(call, expired);
    return;
  }
  call->timer = call->loop->AddTimer(next, [this, call] {
    call->timer = 0;
    CheckAsync(call);
  });
}

void Scheduler::Impl::StopWatching(const AsyncPtr& call) {
  if (call->watched != 0) {
    call->loop->Unwatch(call->inst->ChannelFd());
    call->watched = 0;
  }
  CancelTimer(call);
}

void Scheduler::Impl::FailAsync(const AsyncPtr& call, const Status& why) {
  EndAnswer(call);
  // Killing and reaping the worker waits for the kernel: never on the loop.
  auto task = [this, call, why] {
    call->inst->Finish(call->x, why, options.log_capture_bytes, &call->out);
    call->loop->Post([this, call] { CompleteAsync(call); });
  };
  if (!blocking.Run(task)) {
    // No thread to be had: SIGKILL without waiting; the reaper thread reaps (graveyard).
    call->inst->Abandon(call->x, why, &call->out);
    CompleteAsync(call);
  }
}

void Scheduler::Impl::CompleteAsync(const AsyncPtr& call) {
  InstancePtr inst = std::move(call->inst);
  InvokeResult& out = call->out;
  if (!inst->Healthy()) {
    FAAS_LOG(log, warn, "instance.lost", {"fn", call->name}, {"inv", call->request.invocation_id},
             {"pid", inst->Pid()}, {"outcome", OutcomeName(out.outcome)},
             {"reason", out.error_message});
  }
  if (auto bg = inst->TakeBackgroundCpu(false); bg.count() > 0) {
    recorder->Background(inst->Spec(), bg, /*final=*/false);
  }
  std::vector<InstancePtr> dead;
  Handoffs handoffs;
  {
    std::lock_guard lock(mu);
    ++call->pool->invocations;
    Release(call->pool, std::move(inst), &dead);
    HandOffLocked(call->pool, &dead, &handoffs);
    --in_flight;
    drained.notify_all();
    ToGraveyard(&dead);
  }
  call->pool->freed.notify_one();
  RunHandoffs(handoffs);
  // Before the client is answered: an answered invocation is always in the ledger.
  recorder->Invocation(call->spec.get(), call->name, call->request, out, call->start_unix_ms);
  call->done(std::move(out));
}

void Scheduler::Impl::HandOffLocked(const std::shared_ptr<Pool>& pool,
                                    std::vector<InstancePtr>* dead, Handoffs* h) {
  while (!pool->async_waiters.empty() && !stopping && !pool->removed) {
    const bool blocked_waiting = pool->waiting > pool->async_waiters.size();
    if (blocked_waiting && !pool->serve_async_next) {
      pool->serve_async_next = true;  // this one is for a blocked caller (notified after unlock)
      return;
    }
    if (InstancePtr inst = TakeIdleLocked(*pool, pool->spec->version, dead)) {
      // Within the first few waiters, one on the releasing thread's own loop goes first: it
      // starts at once, where another loop's would cost a cross-thread wake-up.
      auto pick = pool->async_waiters.begin();
      const auto local_end = pool->async_waiters.begin() +
                             std::min<std::ptrdiff_t>(8, std::ssize(pool->async_waiters));
      for (auto w = pick; w != local_end; ++w) {
        if ((*w)->loop->InLoopThread()) {
          pick = w;
          break;
        }
      }
      AsyncPtr call = std::move(*pick);
      pool->async_waiters.erase(pick);
      --pool->waiting;
      pool->serve_async_next = false;
      pool->busy.insert(inst.get());
      call->inst = std::move(inst);
      ++in_flight;
      h->start.push_back(std::move(call));
      continue;
    }
    if (pool->total < pool->spec->config.max_instances) {
      AsyncPtr call = std::move(pool->async_waiters.front());
      pool->async_waiters.pop_front();
      --pool->waiting;
      pool->serve_async_next = false;
      h->cold.push_back(std::move(call));
      continue;
    }
    return;
  }
}

void Scheduler::Impl::RunHandoffs(Handoffs& h) {
  for (AsyncPtr& call : h.start) {
    OnLoopOf(call, [this, call] { StartAsync(call); });
  }
  for (AsyncPtr& call : h.cold) {
    OnLoopOf(call, [this, call] {
      CancelTimer(call);  // the queue timeout
      RunBlocking(call);
    });
  }
}

Status Scheduler::Probe(const FunctionSpec& spec, std::chrono::nanoseconds* took) {
  auto t0 = Clock::now();
  StartTimings st;
  auto started =
      Instance::Start(std::make_shared<const FunctionSpec>(spec), impl_->options, nullptr, &st);
  if (took != nullptr) {
    *took = Clock::now() - t0;
  }
  if (!started.ok()) {
    return started.status();
  }
  return OkStatus();  // the probe instance stops here (destructor: close, kill, reap)
}

Status Scheduler::Prepare(const FunctionSpec& spec, std::chrono::nanoseconds* took) {
  if (!impl_->options.zygotes) {
    return Probe(spec, took);
  }
  auto t0 = Clock::now();
  // The zygote goes where SetFunction's would: below the function's level (made now, or the live
  // one, whose caps only rise; SetFunction asks for the same level again and gets this one).
  std::shared_ptr<sandbox::FunctionCgroup> group;
  if (impl_->options.cgroups != nullptr) {
    auto made =
        impl_->options.cgroups->Function(spec.name, FunctionLevelLimits(spec, impl_->options));
    if (made.ok()) {
      group = std::move(*made);
    }
  }
  auto own = std::make_shared<FunctionSpec>(spec);
  auto started = Zygote::Start(own, impl_->options, std::move(group));
  if (!started.ok()) {
    const Status& s = started.status();
    if (s.code() == StatusCode::kDeadlineExceeded) {
      if (took != nullptr) {
        *took = Clock::now() - t0;
      }
      return s;  // Probe's words too; a second start would double the deploy's wait
    }
    // Probe's own verdict and words: a version whose faas_init leaves threads deploys without a
    // zygote, and a library that fails says so exactly as it always did.
    FAAS_LOG(impl_->log, info, "zygote.not_prepared", {"fn", spec.name}, {"error", s.message()},
             {"fallback", "probe"});
    Status probed = Probe(spec, took);
    if (took != nullptr) {
      *took = Clock::now() - t0;
    }
    return probed;
  }
  std::shared_ptr<Zygote> stale;  // stopped outside the lock
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) {
      stale = std::move(*started);
    } else {
      impl_->DropPreparedLocked(spec.name);
      impl_->prepared[spec.name] = Impl::Prepared{std::move(own), std::move(*started)};
    }
  }
  stale.reset();
  if (took != nullptr) {
    *took = Clock::now() - t0;
  }
  return OkStatus();
}

void Scheduler::DropPrepared(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  impl_->DropPreparedLocked(name);
}

void Scheduler::Impl::AdoptPreparedLocked(Pool* pool, const FunctionSpec& spec) {
  auto it = prepared.find(spec.name);
  if (it == prepared.end()) {
    return;
  }
  Prepared p = std::move(it->second);
  prepared.erase(it);
  // The version number is the only difference a deploy makes; anything else means this zygote
  // loaded something else (another path to SetFunction), and the reaper starts the right one.
  if (p.spec->library_path != spec.library_path || p.spec->config != spec.config ||
      RunAs(*p.spec) != RunAs(spec) || !p.zygote->Alive()) {
    retired_zygotes.push_back(std::move(p.zygote));
    return;
  }
  *p.spec = spec;  // the zygote's (and its worker's) spec, now with its version number
  // Billed as StartZygotes bills a zygote: loading and faas_init once, as an "init" row.
  recorder->Started(spec, p.zygote->PlatformCpu(), p.zygote->InitCpu());
  Recorder* rec = recorder.get();
  p.zygote->SetOnEnd(
      [rec](const FunctionSpec& s, std::chrono::nanoseconds cpu) { rec->Platform(s, cpu); });
  pool->zygote = std::move(p.zygote);
  FAAS_LOG(log, info, "zygote.started", {"fn", spec.name}, {"version", spec.version},
           {"pid", pool->zygote->HostPid()}, {"prepared", true});
}

Status Scheduler::OutboundNetworkAvailable() const {
  const std::string& slirp = impl_->options.slirp4netns;
  if (slirp.empty() || ::access(slirp.c_str(), X_OK) != 0) {
    return FailedPreconditionError(
        "network outbound needs slirp4netns" + (slirp.empty() ? "" : " (" + slirp + ")") +
        ", which is not installed here (apt-get install slirp4netns); an outbound function is "
        "refused rather than run without its egress filter");
  }
  return OkStatus();
}

Result<uint32_t> Scheduler::Prewarm(const std::string& name, uint32_t count) {
  std::shared_ptr<Pool> pool;
  std::shared_ptr<const FunctionSpec> spec;
  uint32_t slots = 0;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pools.find(name);
    if (it == impl_->pools.end()) {
      return NotFoundError("function \"" + name + "\" does not exist");
    }
    pool = it->second;
    spec = pool->spec;
    uint32_t free = spec->config.max_instances - std::min(pool->total, spec->config.max_instances);
    slots = std::min(count, free);
    pool->total += slots;  // reserved: concurrent invocations see them as starting
  }
  uint32_t started = 0;
  Status first_error;
  for (uint32_t i = 0; i < slots; ++i) {
    std::shared_ptr<Zygote> zygote;
    std::shared_ptr<sandbox::FunctionCgroup> group;
    {
      std::lock_guard lock(impl_->mu);
      zygote = pool->zygote;
      group = pool->cgroup;
    }
    StartTimings st;
    auto inst = Instance::Create(spec, impl_->options, zygote, group, &st);
    if (inst.ok()) {
      impl_->Started(inst->get());
    }
    std::lock_guard lock(impl_->mu);
    if (!inst.ok() || pool->removed || impl_->stopping || spec != pool->spec) {
      --pool->total;
      if (!inst.ok() && first_error.ok()) {
        first_error = inst.status();
      }
      continue;
    }
    (*inst)->last_used = Clock::now();
    pool->idle.push_back(std::move(*inst));
    pool->freed.notify_one();
    ++started;
    std::vector<InstancePtr> dead;
    Impl::Handoffs handoffs;
    impl_->HandOffLocked(pool, &dead, &handoffs);
    impl_->ToGraveyard(&dead);
    impl_->RunHandoffs(handoffs);  // posts to loops or starts blocking threads: fine under mu
  }
  if (started == 0 && !first_error.ok()) {
    return first_error;
  }
  return started;
}

std::vector<std::pair<std::string, FunctionStats>> Scheduler::AllStats() const {
  std::vector<std::string> names;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [name, pool] : impl_->pools) {
      names.push_back(name);
    }
  }
  std::vector<std::pair<std::string, FunctionStats>> out;
  out.reserve(names.size());
  for (const auto& n : names) {
    out.emplace_back(n, Stats(n));
  }
  return out;
}

std::shared_ptr<const FunctionSpec> Scheduler::Current(const std::string& name) const {
  std::shared_lock lock(impl_->specs_mu);
  auto it = impl_->specs.find(name);
  return it == impl_->specs.end() ? nullptr : it->second;
}

FunctionStats Scheduler::Stats(const std::string& name) const {
  FunctionStats s;
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pools.find(name);
  if (it != impl_->pools.end()) {
    s.idle = static_cast<uint32_t>(it->second->idle.size());
    s.busy = static_cast<uint32_t>(it->second->busy.size());
    s.waiting = it->second->waiting;
    s.invocations = it->second->invocations;
    s.cold_starts = it->second->cold_starts;
    s.zygote_pid = it->second->zygote ? it->second->zygote->HostPid() : 0;
    s.spawn_only = it->second->zygote_disabled;
  }
  return s;
}

void Scheduler::Impl::ReaperLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    reaper_wake.wait_for(lock, options.reap_interval,
                         [&] { return stopping || !graveyard.empty() || reaper_work; });
    if (stopping) {
      break;
    }
    reaper_work = false;
    auto now = Clock::now();
    std::vector<InstancePtr> expired;
    expired.swap(graveyard);
    std::vector<std::shared_ptr<Pool>> need_warm;
    std::vector<std::shared_ptr<Pool>> need_zygote;
    for (auto& [name, pool] : pools) {
      const auto& cfg = pool->spec->config;
      if (pool->zygote && !pool->zygote->Alive()) {
        ++pool->zygote_failures;
        pool->zygote_retry_at = now + std::chrono::milliseconds(250);
        FAAS_LOG(log, warn, "zygote.died", {"fn", name}, {"version", pool->spec->version},
                 {"pid", pool->zygote->HostPid()}, {"deaths", pool->zygote_failures});
        RetireZygote(pool.get());
        if (pool->zygote_failures >= kMaxZygoteFailures) {
          pool->zygote_disabled = true;
          FAAS_LOG(log, warn, "zygote.unavailable", {"fn", name}, {"version", pool->spec->version},
                   {"error", "its zygote died too often"}, {"fallback", "spawn"});
        }
      }
      if (options.zygotes && !pool->zygote && !pool->zygote_disabled &&
          now >= pool->zygote_retry_at) {
        need_zygote.push_back(pool);
      }
      // idle is LRU-ordered: front = least recently used.
      while (!pool->idle.empty() && pool->total > cfg.min_warm &&
             now - pool->idle.front()->last_used >= cfg.idle_ttl) {
        expired.push_back(std::move(pool->idle.front()));
        pool->idle.erase(pool->idle.begin());
        --pool->total;
      }
      if (pool->total < cfg.min_warm) {
        need_warm.push_back(pool);
      }
    }
    StartZygotes(lock, need_zygote);
    // Start min_warm instances one at a time, outside the lock.
    for (auto& pool : need_warm) {
      if (pool->total >= pool->spec->config.min_warm || pool->removed) {
        continue;
      }
      ++pool->total;
      auto spec = pool->spec;
      auto zygote = pool->zygote;
      auto group = pool->cgroup;
      lock.unlock();
      StartTimings st;
      auto started = Instance::Create(spec, options, zygote, group, &st);
      if (started.ok()) {
        Started(started->get());
      }
      lock.lock();
      if (started.ok() && !pool->removed && !stopping && spec == pool->spec) {
        (*started)->last_used = Clock::now();
        pool->idle.push_back(std::move(*started));
        pool->freed.notify_one();
        Handoffs handoffs;
        HandOffLocked(pool, &expired, &handoffs);
        RunHandoffs(handoffs);  // not a loop thread: posts (or blocking threads), fine under mu
      } else {
        --pool->total;
        if (!started.ok()) {
          FAAS_LOG(log, warn, "instance.prewarm_failed", {"fn", spec->name},
                   {"error", started.status().message()});
        } else {
          expired.push_back(std::move(*started));
        }
      }
    }
    std::vector<std::shared_ptr<Zygote>> zygotes;
    zygotes.swap(retired_zygotes);
    if (!expired.empty() || !zygotes.empty()) {
      lock.unlock();
      FAAS_LOG(log, debug, "instances.stopped", {"count", expired.size()});
      expired.clear();
      zygotes.clear();
      lock.lock();
    }
  }
}

void Scheduler::Impl::StartZygotes(std::unique_lock<std::mutex>& lock,
                                   const std::vector<std::shared_ptr<Pool>>& want) {
  for (const auto& pool : want) {
    if (pool->removed || stopping || pool->zygote || pool->zygote_disabled) {
      continue;
    }
    auto spec = pool->spec;
    auto group = pool->cgroup;
    lock.unlock();
    auto t0 = Clock::now();
    auto started = Zygote::Start(spec, options, std::move(group));
    auto took = Clock::now() - t0;
    lock.lock();
    if (started.ok()) {
      // Its loading and faas_init are billed once, as an "init" row; the forks it serves later
      // are the platform's work.
      recorder->Started(*spec, (*started)->PlatformCpu(), (*started)->InitCpu());
      Recorder* rec = recorder.get();
      (*started)->SetOnEnd(
          [rec](const FunctionSpec& s, std::chrono::nanoseconds cpu) { rec->Platform(s, cpu); });
      if (pool->removed || stopping || spec != pool->spec) {
        retired_zygotes.push_back(std::move(*started));  // deployed over while it started
        continue;
      }
      pool->zygote = std::move(*started);
      FAAS_LOG(log, info, "zygote.started", {"fn", spec->name}, {"version", spec->version},
               {"pid", pool->zygote->HostPid()}, {"ms", ToMillis(took)});
      continue;
    }
    if (spec != pool->spec) {
      continue;
    }
    const Status& s = started.status();
    ++pool->zygote_failures;
    // A version whose faas_init cannot be forked (or fails) will not do better next time.
    if (s.code() == StatusCode::kFailedPrecondition ||
        pool->zygote_failures >= kMaxZygoteFailures) {
      pool->zygote_disabled = true;
      FAAS_LOG(log, warn, "zygote.unavailable", {"fn", spec->name}, {"version", spec->version},
               {"error", s.message()}, {"fallback", "spawn"});
    } else {
      pool->zygote_retry_at =
          Clock::now() + std::chrono::seconds(1) * (1u << std::min(pool->zygote_failures, 6u));
      FAAS_LOG(log, warn, "zygote.start_failed", {"fn", spec->name}, {"version", spec->version},
               {"error", s.message()}, {"failures", pool->zygote_failures});
    }
  }
}

void Scheduler::Shutdown(std::chrono::milliseconds grace) {
  std::vector<InstancePtr> all;
  std::vector<AsyncPtr> queued;
  {
    std::unique_lock lock(impl_->mu);
    if (impl_->stopping && !impl_->reaper.joinable()) {
      return;
    }
    impl_->stopping = true;
    for (auto& [name, pool] : impl_->pools) {
      queued.insert(queued.end(), pool->async_waiters.begin(), pool->async_waiters.end());
      pool->waiting -= static_cast<uint32_t>(pool->async_waiters.size());
      pool->async_waiters.clear();
    }
    lock.unlock();
    for (const AsyncPtr& call : queued) {
      impl_->EndWithout(call, Outcome::kShuttingDown, kShuttingDownMessage);
    }
    lock.lock();
    impl_->reaper_wake.notify_all();
    impl_->drained.wait_for(lock, grace, [&] { return impl_->in_flight == 0; });
    for (auto& [name, pool] : impl_->pools) {
      for (Instance* busy : pool->busy) {
        // Past the grace period: the invocation ends as crashed. The whole group, not only the
        // process faasd holds: an instance forked from a zygote did not end on Kill() alone.
        busy->KillAll();
      }
      for (auto& i : pool->idle) {
        all.push_back(std::move(i));
      }
      pool->total -= static_cast<uint32_t>(pool->idle.size());
      pool->idle.clear();
      pool->freed.notify_all();
    }
    impl_->drained.wait(lock, [&] { return impl_->in_flight == 0; });
  }
  if (impl_->reaper.joinable()) {
    impl_->reaper.join();
  }
  {
    std::lock_guard lock(impl_->mu);
    std::move(impl_->graveyard.begin(), impl_->graveyard.end(), std::back_inserter(all));
    impl_->graveyard.clear();
  }
  FAAS_LOG(impl_->log, info, "scheduler.stopped", {"instances", all.size()});
  all.clear();  // SIGKILL + reap each
  std::vector<std::shared_ptr<Zygote>> zygotes;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [name, pool] : impl_->pools) {
      impl_->RetireZygote(pool.get());
    }
    for (auto& [name, p] : impl_->prepared) {
      impl_->retired_zygotes.push_back(std::move(p.zygote));
    }
    impl_->prepared.clear();
    zygotes.swap(impl_->retired_zygotes);
  }
  zygotes.clear();  // after every instance: each zygote is PID 1 of its instances' namespace
}

}  // namespace faas::scheduler
