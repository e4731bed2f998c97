// The scheduler's API: the functions map, deploys and removals, the blocking invocation path,
// Prewarm, Stats and Shutdown (scheduler_impl.h says which file does what; the admission rules
// are Pool's, docs/design/0012-scheduler-pool.md).
#include "faas/scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "faas/base/thread.h"
#include "faas/sandbox/cgroup.h"

#include "scheduler_impl.h"

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
    case Outcome::kNodeLost:
      return "node_lost";
  }
  return "internal";
}

void Scheduler::Impl::RetireZygote(Function* fn) {
  if (fn->zygote) {
    retired_zygotes.push_back(std::move(fn->zygote));
    fn->zygote.reset();
  }
}

void Scheduler::Impl::ToGraveyard(std::vector<PooledPtr>* dead) {
  if (!dead->empty()) {
    Bury(dead);
    reaper_work = true;  // a death may leave a min_warm deficit
    reaper_wake.notify_all();
  }
}

void Scheduler::Impl::MakeRoomLocked(std::vector<PooledPtr>* dead) {
  if (options.warm_pool == 0) {
    return;
  }
  // Linear in the functions, twice per eviction; paid only with a cold start, which costs far
  // more. Idle instances of one pool are in LRU order, so each pool's front is its candidate.
  std::size_t held = 0;
  for (const auto& [name, fn] : functions) {
    held += fn->pool.total();
  }
  while (held > options.warm_pool) {
    Pool* oldest = nullptr;
    Clock::time_point since{};
    for (const auto& [name, fn] : functions) {
      if (auto t = fn->pool.EvictableSince(); t && (oldest == nullptr || *t < since)) {
        oldest = &fn->pool;
        since = *t;
      }
    }
    if (oldest == nullptr) {
      return;  // the rest are busy, starting or min_warm: the reaper trims once they idle
    }
    dead->push_back(oldest->EvictIdle());
    --held;
  }
}

void Scheduler::Impl::Settle(std::vector<Grant>* grants, Deliveries* d) {
  bool cold = false;
  for (Grant& g : *grants) {
    if (g.kind == Grant::kWarm || g.kind == Grant::kCold) {
      ++in_flight;  // released (Done) by whoever receives it
    }
    cold = cold || g.kind == Grant::kCold;
    auto* call = static_cast<Call*>(g.waiter.get());
    if (call->async) {
      d->async.push_back(std::move(g));
      continue;
    }
    auto blocked = std::static_pointer_cast<BlockingCall>(std::move(g.waiter));
    blocked->grant = std::move(g);
    blocked->granted = true;
    d->wake.push_back(std::move(blocked));
  }
  grants->clear();
  if (cold) {  // a queued caller got a cold slot
    std::vector<PooledPtr> dead;
    MakeRoomLocked(&dead);
    ToGraveyard(&dead);
  }
}

void Scheduler::Impl::Deliver(Deliveries* d) {
  for (auto& blocked : d->wake) {
    blocked->cv.notify_one();
  }
  for (Grant& g : d->async) {
    Dispatch(std::move(g));
  }
  d->wake.clear();
  d->async.clear();
}

void Scheduler::Impl::Done(Function& fn, PooledPtr inst, const InvokeResult* answered,
                           const Requeued* requeue) {
  std::vector<PooledPtr> dead;
  std::vector<Grant> grants;
  Deliveries d;
  {
    std::lock_guard lock(mu);
    if (answered != nullptr) {
      fn.pool.NoteExec(answered->timings.exec, answered->cpu, answered->reported_handler);
    }
    if (requeue != nullptr && inst) {
      fn.pool.Requeue(inst.get(), requeue->waiters, requeue->until, requeue->affinity, &grants);
      in_flight -= static_cast<int>(requeue->waiters.size());  // waiters again, not granted
    }
    if (inst) {
      fn.pool.Release(std::move(inst), /*reusable=*/true, Now(), &dead, &grants);
    } else {
      fn.pool.ReturnSlot(/*invoked=*/true, &dead, &grants);
    }
    --in_flight;
    drained.notify_all();
    if (fn.park_next) {
      fn.park_next = false;
      reaper_work = true;
      reaper_wake.notify_all();
    }
    Settle(&grants, &d);
    ToGraveyard(&dead);
  }
  Deliver(&d);
}

void Scheduler::Impl::HandOver(Function& fn, PooledInstance* inst, const InvokeResult& answered) {
  std::lock_guard lock(mu);
  fn.pool.NoteExec(answered.timings.exec, answered.cpu, answered.reported_handler);
  fn.pool.Handover(inst);
  --in_flight;  // the call ahead's; the one behind stays counted until it ends
  drained.notify_all();
  if (fn.park_next) {
    fn.park_next = false;
    reaper_work = true;
    reaper_wake.notify_all();
  }
}

Instance::OnEnd Scheduler::Impl::BillAtEnd() {
  Recorder* rec = recorder.get();
  return [rec](const FunctionSpec& spec, std::chrono::nanoseconds background,
               std::chrono::nanoseconds platform) {
    rec->Background(Billed(spec), background);
    rec->Platform(Billed(spec), platform);
  };
}

void Scheduler::Impl::Started(Instance& inst) {
  recorder->Started(Billed(inst.Spec()), inst.PlatformCpu(), inst.InitCpu());
  inst.SetOnEnd(BillAtEnd());
}

Result<PooledPtr> Scheduler::Impl::Launch(Function& fn,
                                          const std::shared_ptr<const FunctionSpec>& spec,
                                          InvokeResult* out) {
  std::shared_ptr<Zygote> zygote;
  std::shared_ptr<sandbox::FunctionCgroup> group;
  {
    std::lock_guard lock(mu);
    zygote = fn.zygote;
    group = fn.cgroup;
  }
  const auto t0 = Clock::now();
  StartTimings st;
  auto started = launcher->Launch(spec, zygote, group, &st);
  if (out != nullptr) {
    out->timings.spawn = st.spawn;
    out->timings.load = st.load;
    out->timings.init = st.init;
    out->timings.cold = Clock::now() - t0;
  }
  if (!started.ok()) {
    return started.status();
  }
  Instance& inst = InstanceOf(started->get());
  Started(inst);
  if (out != nullptr) {
    out->forked = inst.Forked();
  }
  if (zygote != nullptr && inst.Forked() && out != nullptr) {
    std::lock_guard lock(mu);
    fn.park_next = true;  // Done wakes the reaper to park the next instance
  } else if (zygote != nullptr) {
    std::lock_guard lock(mu);
    // No invocation follows (a prewarm): park the next one now. Or the fork failed: the zygote
    // is dead, restart it now.
    reaper_work = true;
    reaper_wake.notify_all();
  }
  return started;
}

PooledPtr Scheduler::Impl::TakeParked(Function& fn, const std::shared_ptr<const FunctionSpec>& spec,
                                      InvokeResult* out) {
  std::shared_ptr<Zygote> zygote;
  {
    std::lock_guard lock(mu);
    zygote = fn.zygote;
  }
  if (zygote == nullptr) {
    return nullptr;
  }
  const auto t0 = Clock::now();
  StartTimings st;
  PooledPtr parked = launcher->TakeParked(spec, zygote, &st);
  if (parked == nullptr) {
    return nullptr;
  }
  out->timings.spawn = st.spawn;
  out->timings.load = out->timings.init = std::chrono::nanoseconds(0);
  out->timings.cold = Clock::now() - t0;
  out->forked = true;
  Started(InstanceOf(parked.get()));  // the start's platform CPU (a metric; no ledger row)
  std::lock_guard lock(mu);
  fn.park_next = true;  // Done wakes the reaper to park the next instance
  return parked;
}

void Scheduler::Impl::LaunchFailed(const std::string& name, const std::string& invocation_id,
                                   const Status& s, InvokeResult* out) {
  const bool lib_fault =
      s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kDeadlineExceeded;
  out->outcome = lib_fault ? Outcome::kInitFailed : Outcome::kInternal;
  out->error_message = lib_fault ? s.message() : "cannot start an instance: " + s.message();
  FAAS_LOG(log, warn, "instance.start_failed", {"fn", name}, {"inv", invocation_id},
           {"error", s.message()});
}

void Scheduler::Impl::AfterInvocation(Instance& inst, const std::string& name,
                                      const InvokeRequest& request, const InvokeResult& out) {
  if (!inst.Healthy()) {
    FAAS_LOG(log, warn, "instance.lost", {"fn", name}, {"inv", request.invocation_id},
             {"pid", inst.Pid()}, {"outcome", OutcomeName(out.outcome)},
             {"reason", out.error_message});
  }
  if (request.fresh) {
    inst.Retire();  // used once, never reused
  }
  if (auto bg = inst.TakeBackgroundCpu(false); bg.count() > 0) {
    recorder->Background(Billed(inst.Spec()), bg);
  }
}

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->launcher = std::make_unique<ProcessLauncher>(&impl_->options);
  impl_->answer_budget = std::make_unique<AnswerBudget>(impl_->options.answer_buffer_budget);
  impl_->recorder = std::make_unique<Recorder>(impl_->options.ledger, impl_->options.metrics,
                                               impl_->options.prices);
  impl_->reaper = std::thread([this] {
    NameThisThread("faas-reaper");
    impl_->ReaperLoop();
  });
  impl_->burier = std::thread([this] {
    NameThisThread("faas-burier");
    impl_->BurierLoop();
  });
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
  std::vector<PooledPtr> retired;
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
  Deliveries d;
  {
    std::lock_guard lock(impl_->mu);
    auto& fn = impl_->functions[shared->name];
    std::vector<Grant> grants;
    if (!fn) {
      fn = std::make_shared<Function>(shared, impl_->options.pipeline_depth);
    } else {
      fn->pool.SetSpec(shared, &retired, &grants);
    }
    if (group != nullptr) {
      fn->cgroup = std::move(group);  // the old level (if any) goes when its last instance does
    }
    {
      std::unique_lock specs_lock(impl_->specs_mu);
      impl_->specs[shared->name] = shared;
    }
    // The zygote was started with the old spec (library, env, limits): a new one is made.
    impl_->RetireZygote(fn.get());
    fn->zygote_failures = 0;
    fn->zygote_retry_at = {};
    fn->zygote_disabled = false;
    impl_->AdoptPreparedLocked(fn.get(), *shared);
    impl_->reaper_work = true;
    impl_->Settle(&grants, &d);
  }
  impl_->Deliver(&d);
  impl_->reaper_wake.notify_all();  // min_warm may have changed
  FAAS_LOG(impl_->log, info, "function.set", {"fn", shared->name}, {"version", shared->version},
           {"retired", retired.size()});
}

void Scheduler::RemoveFunction(const std::string& name) {
  std::vector<PooledPtr> retired;
  Deliveries d;
  {
    std::lock_guard lock(impl_->mu);
    impl_->DropPreparedLocked(name);
    auto it = impl_->functions.find(name);
    if (it == impl_->functions.end()) {
      return;
    }
    std::vector<Grant> grants;
    it->second->pool.Remove(&retired, &grants);
    impl_->RetireZygote(it->second.get());
    impl_->reaper_work = true;
    impl_->functions.erase(it);
    {
      std::unique_lock specs_lock(impl_->specs_mu);
      impl_->specs.erase(name);
    }
    impl_->Settle(&grants, &d);
  }
  impl_->Deliver(&d);
  FAAS_LOG(impl_->log, info, "function.removed", {"fn", name}, {"stopped", retired.size()});
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
    recorder->Invocation(Billed(spec.get(), name, request, out, start_unix_ms));
  }
  return out;
}

InvokeResult Scheduler::Impl::InvokeInner(const std::string& name, InvokeRequest& request,
                                          std::shared_ptr<const FunctionSpec>* spec_out) {
  InvokeResult out;
  std::shared_ptr<Function> fn;
  Grant g;
  {
    std::unique_lock lock(mu);
    if (stopping) {
      out.outcome = Outcome::kShuttingDown;
      out.error_message = kShuttingDownMessage;
      return out;
    }
    auto it = functions.find(name);
    if (it == functions.end()) {
      out.outcome = Outcome::kNotFound;
      out.error_message = NotFoundMessage(name);
      return out;
    }
    fn = it->second;
    const std::shared_ptr<const FunctionSpec> arrival_spec = fn->pool.spec();
    auto call = std::make_shared<BlockingCall>();
    std::vector<PooledPtr> dead;
    const auto until = request.arrived + store::EffectiveQueueTimeout(arrival_spec->config);
    g = fn->pool.Acquire(
        call, {.fresh = request.fresh, .body_bytes = request.body.size(), .deadline = until},
        &dead);
    if (g.kind == Grant::kCold) {
      MakeRoomLocked(&dead);
    }
    ToGraveyard(&dead);
    if (g.kind == Grant::kWarm || g.kind == Grant::kCold) {
      ++in_flight;
      if (g.kind == Grant::kCold && BurialsBehind()) {
        lock.unlock();
        WaitForBurials();
        lock.lock();
      }
    } else if (g.kind == Grant::kQueued) {
      // Backpressure: a place in the function's one queue, served in arrival order with the
      // event-loop callers. Whoever frees an instance or a slot grants it (Settle, under mu).
      while (!call->granted) {
        if (call->cv.wait_until(lock, until) == std::cv_status::timeout && !call->granted &&
            fn->pool.Cancel(call)) {
          break;
        }
      }
      if (call->granted) {
        g = std::move(call->grant);
      } else {
        g.kind = Grant::kRefused;
        g.outcome = Outcome::kNoCapacity;
        g.message = QueueTimeoutMessage(name, arrival_spec->config);
      }
    }
  }
  *spec_out = g.spec;
  out.version = g.spec->version;
  out.timings.queue = Clock::now() - request.arrived;
  if (g.kind == Grant::kRefused) {
    out.outcome = g.outcome;
    out.error_message = std::move(g.message);
    return out;
  }
  PooledPtr inst = std::move(g.instance);
  if (g.kind == Grant::kCold) {
    out.cold_start = true;
    auto launched = Launch(*fn, g.spec, &out);
    if (!launched.ok()) {
      LaunchFailed(name, request.invocation_id, launched.status(), &out);
      Done(*fn, nullptr);
      return out;
    }
    inst = std::move(*launched);
    Instance& started = InstanceOf(inst.get());
    FAAS_LOG(log, debug, "instance.started", {"fn", name}, {"pid", started.Pid()},
             {"inv", request.invocation_id}, {"cold_ms", ToMillis(out.timings.cold)},
             {"start", out.forked ? "fork" : "spawn"});
    std::lock_guard lock(mu);
    fn->pool.Adopt(inst.get());
  }
  Instance& instance = InstanceOf(inst.get());
  instance.Invoke(request, options.log_capture_bytes, *answer_budget, &out);
  AfterInvocation(instance, name, request, out);
  Done(*fn, std::move(inst));
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
  // Its first instance is parked by the reaper, beside the rest of the deploy (creating the
  // version, loading it on every node, answering), not before the probe answers: the call after
  // the deploy takes it, or waits for the park under way (Zygote::TakeParked).
  auto started = Zygote::Start(own, impl_->options, std::move(group), /*park_first=*/false);
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
      impl_->reaper_work = true;  // its first park
      impl_->reaper_wake.notify_all();
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

void Scheduler::Impl::AdoptPreparedLocked(Function* fn, const FunctionSpec& spec) {
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
  recorder->Started(Billed(spec), p.zygote->PlatformCpu(), p.zygote->InitCpu());
  Recorder* rec = recorder.get();
  p.zygote->SetOnEnd([rec](const FunctionSpec& s, std::chrono::nanoseconds cpu) {
    rec->Platform(Billed(s), cpu);
  });
  fn->zygote = std::move(p.zygote);
  const Zygote::Phases& ph = fn->zygote->StartPhases();
  FAAS_LOG(log, info, "zygote.started", {"fn", spec.name}, {"version", spec.version},
           {"pid", fn->zygote->HostPid()}, {"prepared", true}, {"boot_ms", ToMillis(ph.boot)},
           {"spawn_ms", ToMillis(ph.start.spawn)}, {"load_ms", ToMillis(ph.start.load)},
           {"init_ms", ToMillis(ph.start.init)}, {"ready_ms", ToMillis(ph.ready)},
           {"park_ms", ToMillis(ph.park)});
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
  std::shared_ptr<Function> fn;
  std::shared_ptr<const FunctionSpec> spec;
  uint32_t slots = 0;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->functions.find(name);
    if (it == impl_->functions.end()) {
      return NotFoundError(NotFoundMessage(name));
    }
    fn = it->second;
    spec = fn->pool.spec();
    slots = fn->pool.Reserve(count);  // concurrent invocations see them as starting
  }
  uint32_t started = 0;
  Status first_error;
  for (uint32_t i = 0; i < slots; ++i) {
    auto inst = impl_->Launch(*fn, spec, nullptr);
    std::vector<PooledPtr> dead;
    std::vector<Grant> grants;
    Deliveries d;
    {
      std::lock_guard lock(impl_->mu);
      if (!inst.ok()) {
        fn->pool.ReturnSlot(/*invoked=*/false, &dead, &grants);
        if (first_error.ok()) {
          first_error = inst.status();
        }
      } else if (fn->pool.AddIdle(std::move(*inst), spec->version, impl_->Now(), &dead, &grants)) {
        ++started;
      }
      impl_->Settle(&grants, &d);
      impl_->ToGraveyard(&dead);
    }
    impl_->Deliver(&d);
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
    for (const auto& [name, fn] : impl_->functions) {
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
  auto it = impl_->functions.find(name);
  if (it != impl_->functions.end()) {
    const Function& fn = *it->second;
    s.idle = fn.pool.idle();
    s.busy = static_cast<uint32_t>(fn.pool.busy().size());
    s.waiting = fn.pool.waiting();
    s.invocations = fn.pool.invocations();
    s.cold_starts = fn.pool.cold_starts();
    s.evicted = fn.pool.evicted();
    s.zygote_pid = fn.zygote ? fn.zygote->HostPid() : 0;
    s.parked_pid = fn.zygote ? fn.zygote->ParkedPid() : 0;
    s.parked = fn.zygote ? static_cast<uint32_t>(fn.zygote->ParkedCount()) : 0;
    s.spawn_only = fn.zygote_disabled;
  }
  return s;
}

void Scheduler::Shutdown(std::chrono::milliseconds grace) {
  std::vector<PooledPtr> all;
  {
    std::unique_lock lock(impl_->mu);
    if (impl_->stopping && !impl_->reaper.joinable()) {
      return;
    }
    impl_->stopping = true;
    // Every queued caller is answered (once, by its grant); idle instances stop below.
    std::vector<Grant> grants;
    Deliveries d;
    for (auto& [name, fn] : impl_->functions) {
      fn->pool.Shutdown(&all, &grants);
    }
    impl_->Settle(&grants, &d);
    lock.unlock();
    impl_->Deliver(&d);
    lock.lock();
    impl_->reaper_wake.notify_all();
    impl_->drained.wait_for(lock, grace, [&] { return impl_->in_flight == 0; });
    for (auto& [name, fn] : impl_->functions) {
      for (PooledInstance* busy : fn->pool.busy()) {
        // Past the grace period: the invocation ends as crashed. The whole group, not only the
        // process faasd holds: an instance forked from a zygote did not end on Kill() alone.
        InstanceOf(busy).KillAll();
      }
    }
    impl_->drained.wait(lock, [&] { return impl_->in_flight == 0; });
  }
  if (impl_->reaper.joinable()) {
    impl_->reaper.join();
  }
  if (impl_->burier.joinable()) {
    {
      std::lock_guard lock(impl_->burial_mu);
      impl_->burier_stopping = true;
    }
    impl_->burial_wake.notify_one();
    impl_->burier.join();  // what the reaper handed it is destroyed
  }
  {
    std::lock_guard lock(impl_->burial_mu);  // any handed over after the burier ended
    std::move(impl_->burials.begin(), impl_->burials.end(), std::back_inserter(all));
    impl_->burials.clear();
  }
  FAAS_LOG(impl_->log, info, "scheduler.stopped", {"instances", all.size()});
  all.clear();  // SIGKILL + reap each
  std::vector<std::shared_ptr<Zygote>> zygotes;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [name, fn] : impl_->functions) {
      impl_->RetireZygote(fn.get());
    }
    for (auto& [name, p] : impl_->prepared) {
      impl_->retired_zygotes.push_back(std::move(p.zygote));
    }
    impl_->prepared.clear();
    zygotes.swap(impl_->retired_zygotes);
  }
  for (const auto& z : zygotes) {
    z->StopParking();
  }
  zygotes.clear();  // after every instance: each zygote is PID 1 of its instances' namespace
}

}  // namespace faas::scheduler
