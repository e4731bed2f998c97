// The scheduler's reaper thread: collects dead instances off the request path, stops idle ones
// past their idle_ttl (Pool::Reap), starts min_warm instances (Pool::WarmDeficit) and each
// version's zygote (docs/design/0003-zygote.md), with restart backoff, and refills the zygotes'
// parked instances (docs/design/0010). The burier thread destroys what it collected.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "scheduler_impl.h"

namespace faas::scheduler {

void Scheduler::Impl::ReaperLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    reaper_wake.wait_for(lock, options.reap_interval, [&] { return stopping || reaper_work; });
    if (stopping) {
      break;
    }
    reaper_work = false;
    lock.unlock();
    ReleaseAwaiting(/*stale=*/true);
    lock.lock();
    const auto now = Clock::now();
    std::vector<PooledPtr> expired;
    std::vector<std::shared_ptr<Function>> need_warm;
    std::vector<std::shared_ptr<Function>> need_zygote;
    std::vector<std::shared_ptr<Zygote>> need_park;
    for (auto& [name, fn] : functions) {
      const FunctionSpec& spec = *fn->pool.spec();
      if (fn->zygote && !fn->zygote->Alive()) {
        ++fn->zygote_failures;
        fn->zygote_retry_at = now + std::chrono::milliseconds(250);
        FAAS_LOG(log, warn, "zygote.died", {"fn", name}, {"version", spec.version},
                 {"pid", fn->zygote->HostPid()}, {"deaths", fn->zygote_failures});
        RetireZygote(fn.get());
        if (fn->zygote_failures >= kMaxZygoteFailures) {
          fn->zygote_disabled = true;
          FAAS_LOG(log, warn, "zygote.unavailable", {"fn", name}, {"version", spec.version},
                   {"error", "its zygote died too often"}, {"fallback", "spawn"});
        }
      }
      if (options.zygotes && !fn->zygote && !fn->zygote_disabled && now >= fn->zygote_retry_at) {
        need_zygote.push_back(fn);
      }
      if (options.park_instances && fn->zygote && fn->zygote->WantsPark()) {
        need_park.push_back(fn->zygote);  // a cold start took a parked instance
      }
      std::vector<PooledPtr> idle_expired = fn->pool.Reap(Now());
      std::move(idle_expired.begin(), idle_expired.end(), std::back_inserter(expired));
      if (fn->pool.WarmDeficit() > 0) {
        need_warm.push_back(fn);
      }
    }
    if (options.park_instances) {
      for (const auto& [name, p] : prepared) {
        if (p.zygote && p.zygote->WantsPark()) {
          need_park.push_back(p.zygote);  // a deploy's zygote, not yet current: its first park
        }
      }
    }
    MakeRoomLocked(&expired);         // over the warm pool while everything was busy: trim now
    StartZygotes(lock, need_zygote);  // each parks its first instance as it starts
    if (!need_park.empty()) {
      lock.unlock();
      bool more = false;
      for (const auto& z : need_park) {
        // One per zygote and round: another function's refill need not wait for a second one.
        if (Status s = z->Park(options); !s.ok()) {
          FAAS_LOG(log, warn, "zygote.park_failed", {"pid", z->HostPid()}, {"error", s.message()});
        } else {
          more = more || z->WantsPark();  // fewer parked than its ParkTarget: next round
        }
      }
      need_park.clear();  // a zygote retired meanwhile is released below or by its instances
      lock.lock();
      reaper_work = reaper_work || more;
    }
    StartWarm(lock, need_warm, &expired);
    std::vector<std::shared_ptr<Zygote>> zygotes;
    zygotes.swap(retired_zygotes);
    if (!expired.empty() || !zygotes.empty()) {
      lock.unlock();
      FAAS_LOG(log, debug, "instances.stopped", {"count", expired.size()});
      Bury(&expired);
      for (const auto& z : zygotes) {
        z->StopParking();  // it may live on with its last instances; its parked one goes now
      }
      zygotes.clear();
      lock.lock();
    }
  }
}

void Scheduler::Impl::Bury(std::vector<PooledPtr>* dead) {
  if (dead->empty()) {
    return;
  }
  // SIGKILL now: each exits on its own time (and CPU), so the burier mostly reaps processes
  // already gone, and none lives on, holding memory, however far behind the burier is.
  for (auto& d : *dead) {
    InstanceOf(d.get()).EndNow();
  }
  {
    std::lock_guard lock(burial_mu);
    burying += dead->size();
    std::move(dead->begin(), dead->end(), std::back_inserter(burials));
  }
  dead->clear();
  burial_wake.notify_one();
}

void Scheduler::Impl::AwaitBurials(Grant g) {
  {
    std::lock_guard lock(burial_mu);
    if (BurialsBehind()) {  // else the burier caught up meanwhile: go now
      if (awaiting_burials.empty()) {
        awaiting_since = Clock::now();
      }
      awaiting_burials.push_back(std::move(g));
      return;
    }
  }
  Dispatch(std::move(g));
}

void Scheduler::Impl::WaitForBurials() {
  std::unique_lock lock(burial_mu);
  burial_room.wait_for(lock, std::chrono::seconds(1), [&] { return !BurialsBehind(); });
}

void Scheduler::Impl::ReleaseAwaiting(bool stale) {
  std::vector<Grant> go;
  {
    std::lock_guard lock(burial_mu);
    if (awaiting_burials.empty() ||
        (BurialsBehind() && !(stale && Clock::now() - awaiting_since >= std::chrono::seconds(1)))) {
      return;
    }
    go.swap(awaiting_burials);
  }
  for (Grant& g : go) {
    Dispatch(std::move(g));  // posts each to its call's loop
  }
}

void Scheduler::Impl::BurierLoop() {
  // Below the event loops and the reaper, never starved: a nice value is a CFS weight
  // (nice 10 gets ~1/10 of a CPU that the loops want), unlike SCHED_IDLE. Raising it needs no
  // privilege; a failure only leaves the burier at the daemon's priority.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::unique_lock lock(burial_mu);
  for (;;) {
    burial_wake.wait(lock, [&] { return burier_stopping || !burials.empty(); });
    if (burials.empty()) {
      return;  // stopping, and drained
    }
    std::vector<PooledPtr> dead;
    dead.swap(burials);
    lock.unlock();
    for (auto& d : dead) {
      d.reset();  // reap, cgroup removal, its end billed
      if (--burying <= kMaxInstancesBeingStopped) {
        ReleaseAwaiting(/*stale=*/false);  // takes burial_mu first: no waiter misses the notify
        burial_room.notify_all();
      }
    }
    lock.lock();
  }
}

void Scheduler::Impl::StartWarm(std::unique_lock<std::mutex>& lock,
                                const std::vector<std::shared_ptr<Function>>& want,
                                std::vector<PooledPtr>* expired) {
  // One instance per function per round, outside the lock; the next round starts the next.
  for (const auto& fn : want) {
    if (stopping || fn->pool.WarmDeficit() == 0 || fn->pool.Reserve(1) == 0) {
      continue;
    }
    MakeRoomLocked(expired);
    auto spec = fn->pool.spec();
    lock.unlock();
    auto started = Launch(*fn, spec, nullptr);
    lock.lock();
    std::vector<Grant> grants;
    if (started.ok()) {
      fn->pool.AddIdle(std::move(*started), spec->version, Now(), expired, &grants);
    } else {
      fn->pool.ReturnSlot(/*invoked=*/false, expired, &grants);
      FAAS_LOG(log, warn, "instance.prewarm_failed", {"fn", spec->name},
               {"error", started.status().message()});
    }
    Deliveries d;
    Settle(&grants, &d);
    lock.unlock();
    Deliver(&d);
    lock.lock();
    if (started.ok() && fn->pool.WarmDeficit() > 0) {
      reaper_work = true;  // the next one in the next round, without waiting reap_interval
    }
  }
}

void Scheduler::Impl::StartZygotes(std::unique_lock<std::mutex>& lock,
                                   const std::vector<std::shared_ptr<Function>>& want) {
  for (const auto& fn : want) {
    if (fn->pool.closed() || stopping || fn->zygote || fn->zygote_disabled) {
      continue;
    }
    auto spec = fn->pool.spec();
    auto group = fn->cgroup;
    lock.unlock();
    auto t0 = Clock::now();
    auto started = Zygote::Start(spec, options, std::move(group));
    auto took = Clock::now() - t0;
    lock.lock();
    if (started.ok()) {
      // Its loading and faas_init are billed once, as an "init" row; the forks it serves later
      // are the platform's work.
      recorder->Started(Billed(*spec), (*started)->PlatformCpu(), (*started)->InitCpu());
      Recorder* rec = recorder.get();
      (*started)->SetOnEnd([rec](const FunctionSpec& s, std::chrono::nanoseconds cpu) {
        rec->Platform(Billed(s), cpu);
      });
      if (fn->pool.closed() || stopping || spec != fn->pool.spec()) {
        retired_zygotes.push_back(std::move(*started));  // deployed over while it started
        continue;
      }
      fn->zygote = std::move(*started);
      FAAS_LOG(log, info, "zygote.started", {"fn", spec->name}, {"version", spec->version},
               {"pid", fn->zygote->HostPid()}, {"ms", ToMillis(took)});
      continue;
    }
    if (spec != fn->pool.spec()) {
      continue;
    }
    const Status& s = started.status();
    ++fn->zygote_failures;
    // A version whose faas_init cannot be forked (or fails) will not do better next time.
    if (s.code() == StatusCode::kFailedPrecondition || fn->zygote_failures >= kMaxZygoteFailures) {
      fn->zygote_disabled = true;
      FAAS_LOG(log, warn, "zygote.unavailable", {"fn", spec->name}, {"version", spec->version},
               {"error", s.message()}, {"fallback", "spawn"});
    } else {
      fn->zygote_retry_at =
          Clock::now() + std::chrono::seconds(1) * (1u << std::min(fn->zygote_failures, 6u));
      FAAS_LOG(log, warn, "zygote.start_failed", {"fn", spec->name}, {"version", spec->version},
               {"error", s.message()}, {"failures", fn->zygote_failures});
    }
  }
}

}  // namespace faas::scheduler
