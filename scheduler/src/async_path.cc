// The event-loop invocation path (Scheduler::InvokeAsync, docs/design/0006-warm-path-reactor.md):
// an async call is a Pool waiter like a blocking one; its grant runs on its loop. The warm
// exchange (Begin, Pump, NextCheck, Settle) runs on the loop thread; so does taking a parked
// instance, while a cold start's launch and the killing of a failed instance run on a blocking
// thread, their results posted back.
#include <sys/epoll.h>

#include "faas/sandbox/channel.h"

#include "scheduler_impl.h"

namespace faas::scheduler {

void Scheduler::Impl::InvokeAsync(const AsyncPtr& call) {
  std::unique_lock lock(mu);
  if (stopping) {
    lock.unlock();
    EndWithout(call, Outcome::kShuttingDown, kShuttingDownMessage);
    return;
  }
  auto it = functions.find(call->name);
  if (it == functions.end()) {
    lock.unlock();
    EndWithout(call, Outcome::kNotFound, NotFoundMessage(call->name));
    return;
  }
  call->fn = it->second;
  call->spec = call->fn->pool.spec();
  const auto until = call->request.arrived + store::EffectiveQueueTimeout(call->spec->config);
  std::vector<PooledPtr> dead;
  Grant g = call->fn->pool.Acquire(call,
                                   {.fresh = call->request.fresh,
                                    .body_bytes = call->request.body.size(),
                                    .deadline = until,
                                    .affinity = call->loop,
                                    // A call behind must be queued before its loop runs on.
                                    .pipeline = call->loop->InLoopThread()},
                                   &dead);
  if (g.kind == Grant::kWarm || g.kind == Grant::kCold || g.kind == Grant::kBehind) {
    ++in_flight;
  }
  if (g.kind == Grant::kCold) {
    MakeRoomLocked(&dead);
  }
  ToGraveyard(&dead);
  lock.unlock();
  if (g.kind == Grant::kCold && BurialsBehind()) {
    AwaitBurials(std::move(g));  // backpressure (design/0034): never on the loop's time
    return;
  }
  if (g.kind != Grant::kQueued) {
    Dispatch(std::move(g));  // on this loop's thread: a warm call starts at once
    return;
  }
  // Backpressure: a place in the function's one queue; a grant (Dispatch) or the timeout ends
  // the wait. A grant made before this timer exists is posted, so it runs after it is set.
  call->timer = call->loop->AddTimer(until, [this, call] {
    call->timer = 0;
    OnQueueTimeout(call);
  });
}

void Scheduler::Impl::Dispatch(Grant g) {
  AsyncPtr call = std::static_pointer_cast<AsyncCall>(std::move(g.waiter));
  call->spec = g.spec;
  call->out.version = g.spec->version;
  switch (g.kind) {
    case Grant::kWarm:
      call->inst = std::move(g.instance);
      OnLoopOf(call, [this, call] {
        CancelTimer(call);  // the queue timeout
        StartAsync(call);
      });
      return;
    case Grant::kCold:
      OnLoopOf(call, [this, call] {
        CancelTimer(call);
        LaunchAsync(call);
      });
      return;
    case Grant::kBehind:
      call->ahead = g.ahead;
      QueueBehind(call);  // on its loop's thread (AcquireRequest::pipeline)
      return;
    case Grant::kRefused:
      EndWithout(call, g.outcome, std::move(g.message));
      return;
    case Grant::kQueued:
      return;  // not a grant: InvokeAsync handles it
  }
}

void Scheduler::Impl::OnQueueTimeout(const AsyncPtr& call) {
  {
    std::lock_guard lock(mu);
    if (!call->fn->pool.Cancel(call)) {
      return;  // granted meanwhile: the grant is on its way to this loop
    }
  }
  EndWithout(call, Outcome::kNoCapacity, QueueTimeoutMessage(call->name, call->spec->config));
}

void Scheduler::Impl::LaunchAsync(const AsyncPtr& call) {
  call->out.cold_start = true;
  call->out.timings.queue = Clock::now() - call->request.arrived;
  // A parked instance is only handed over: no hop to a blocking thread and back (design 0010).
  if (PooledPtr parked = TakeParked(*call->fn, call->spec, &call->out)) {
    call->inst = std::move(parked);
    {
      std::lock_guard lock(mu);
      call->fn->pool.Adopt(call->inst.get());
    }
    StartAsync(call);
    return;
  }
  // Spawning or forking, then load and faas_init, wait for the kernel and the worker.
  auto task = [this, call] {
    auto launched = Launch(*call->fn, call->spec, &call->out);
    if (!launched.ok()) {
      LaunchFailed(call->name, call->request.invocation_id, launched.status(), &call->out);
      Done(*call->fn, nullptr);
      EndWithout(call, call->out.outcome, call->out.error_message, /*keep_out=*/true);
      return;
    }
    FAAS_LOG(log, debug, "instance.started", {"fn", call->name},
             {"pid", InstanceOf(launched->get()).Pid()}, {"inv", call->request.invocation_id},
             {"cold_ms", ToMillis(call->out.timings.cold)},
             {"start", call->out.forked ? "fork" : "spawn"});
    call->inst = std::move(*launched);
    {
      std::lock_guard lock(mu);
      call->fn->pool.Adopt(call->inst.get(), call->loop);
    }
    call->loop->Post([this, call] { StartAsync(call); });
  };
  if (!blocking.Run(task)) {
    Done(*call->fn, nullptr);
    EndWithout(call, Outcome::kInternal, "cannot start a thread for the invocation");
  }
}

void Scheduler::Impl::EndWithout(const AsyncPtr& call, Outcome outcome, std::string message,
                                 bool keep_out) {
  if (!keep_out) {
    call->out.outcome = outcome;
    call->out.error_message = std::move(message);
    call->out.timings.queue = Clock::now() - call->request.arrived;
  }
  auto finish = [this, call] {
    CancelTimer(call);  // refused while queued (removed, shut down)
    if (call->out.outcome != Outcome::kNotFound) {
      recorder->Invocation(
          Billed(call->spec.get(), call->name, call->request, call->out, call->start_unix_ms));
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

void Scheduler::Impl::StartAsync(const AsyncPtr& call) {
  if (!call->out.cold_start) {
    call->out.timings.queue = Clock::now() - call->request.arrived;
  }
  Instance& inst = InstanceOf(call->inst.get());
  inst.SetWantLogEnd(options.pipeline_depth > 0);
  inst.Begin(call->request, &call->x);
  call->first_check = true;
  if (Status s = AttachChannel(call); !s.ok()) {
    FailAsync(call, InternalError("cannot watch the worker's channel: " + s.message()));
    return;
  }
  PumpAsync(call);
}

void Scheduler::Impl::PullBehind(const AsyncPtr& call) {
  // Only behind a frame written whole (QueueBehind keeps takes_behind so); the pool bounds the
  // depth.
  while (call->inst->takes_behind.load(std::memory_order_relaxed)) {
    WaiterPtr w;
    {
      std::lock_guard lock(mu);
      w = call->fn->pool.TakeBehind(call->inst.get());
      if (w == nullptr) {
        return;
      }
      ++in_flight;
    }
    AsyncPtr next = std::static_pointer_cast<AsyncCall>(std::move(w));
    CancelTimer(next);  // its queue timeout: the same loop (its affinity is the instance's)
    next->spec = call->spec;
    next->out.version = call->spec->version;
    next->ahead = call->inst.get();
    QueueBehind(next);
  }
}

void Scheduler::Impl::QueueBehind(const AsyncPtr& call) {
  // The pool granted it because the instance takes one (PooledInstance::takes_behind): its
  // channel is this loop's and the last frame on it was written whole.
  Instance& inst = InstanceOf(call->ahead);
  inst.Prepare(call->request, &call->x, /*keep_body=*/true);  // to run elsewhere (FailAsync)
  Instance::Exchange& last =
      inst.slot->behind.empty() ? inst.slot->call->x : inst.slot->behind.back()->x;
  inst.slot->behind.push_back(call);
  inst.WriteAhead(&call->x);
  last.pipelined = true;
  // The worker answers it only once it has read it whole: bytes past the answer ahead are then
  // the start of this one's. A frame written in part ends the line until it is the front call.
  last.spill_to = call->x.writing ? nullptr : &call->x.early;
  call->ahead->takes_behind.store(!call->x.writing && inst.TakesBehind(),
                                  std::memory_order_relaxed);
}

void Scheduler::Impl::StartBehind(const AsyncPtr& call) {
  call->out.timings.queue = Clock::now() - call->request.arrived;  // waited behind: queue time
  Instance& inst = InstanceOf(call->inst.get());
  inst.slot->call = call;  // the same loop's slot: a call behind shares its loop
  call->first_check = true;
  if (Status early = inst.Start(&call->x, /*behind=*/true); !early.ok()) {
    FailAsync(call, early);
    return;
  }
  PumpAsync(call);
}

Status Scheduler::Impl::AttachChannel(const AsyncPtr& call) {
  Instance& inst = InstanceOf(call->inst.get());
  const int fd = inst.ChannelFd();
  if (inst.loop == call->loop) {
    // Registered here since an earlier call: a byte the worker wrote while idle raised an event
    // this loop saw (suspect), so the idle-channel peek is needed only then. A byte whose event
    // is still queued is read as the start of the answer: a protocol violation too (the answer
    // must name this invocation's id, which the worker could not know in advance).
    call->x.check_idle = inst.slot->suspect;
    inst.slot->suspect = false;
  } else {
    if (inst.loop != nullptr) {
      inst.loop->Forget(fd);  // its old loop ignores the events still on their way (old slot)
      inst.loop = nullptr;
    }
    auto slot = std::make_shared<ChannelSlot>();
    slot->events = EPOLLIN | EPOLLET;
    FAAS_RETURN_IF_ERROR(call->loop->Watch(
        fd, slot->events, [this, slot](uint32_t events) { OnChannel(slot, events); }));
    inst.loop = call->loop;
    inst.slot = std::move(slot);
    call->inst->affinity = call->loop;  // the pool prefers it for this loop's calls
    call->x.check_idle = true;          // what arrived while idle raised its event elsewhere
  }
  inst.slot->call = call;
  return OkStatus();
}

void Scheduler::Impl::OnChannel(const std::shared_ptr<ChannelSlot>& slot, uint32_t events) {
  if (slot->call == nullptr) {
    slot->suspect = true;  // the worker wrote or hung up while idle; the next call looks first
    return;
  }
  AsyncPtr call = slot->call;  // PumpAsync may end the call, which clears the slot
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    call->x.readable = true;  // edge-triggered: this edge is not reported again
  }
  if (call->budget_ticket != 0) {
    return;  // reads nothing until its answer's bytes are granted (OnBudget pumps)
  }
  PumpAsync(call);
}

void Scheduler::Impl::PumpAsync(const AsyncPtr& call) {
  Instance& inst = InstanceOf(call->inst.get());
  Result<std::string> answer = InternalError("no answer");
  Instance::Pumped p = inst.Pump(&call->x, &answer);
  while (p == Instance::Pumped::kNeedsBudget) {
    Instance::Exchange& x = call->x;
    const std::size_t need = x.answer_bytes - x.budget_bytes;
    call->budget_ticket = answer_budget->Take(need, [this, call] {
      call->loop->Post([this, call] { OnBudget(call); });  // never inline: any thread
    });
    if (call->budget_ticket != 0) {
      // Read nothing more until the bytes are there (OnChannel ignores the channel meanwhile):
      // the worker blocks on its full socket, and the call's timers (deadline, CPU limit) still
      // run.
      if (call->timer == 0) {
        CheckAsync(call);
      }
      return;
    }
    x.budget_bytes = x.answer_bytes;
    p = inst.Pump(&call->x, &answer);
  }
  if (p == Instance::Pumped::kWaiting) {
    if (options.pipeline_depth > 0 && !call->x.WantsWrite() && !call->request.fresh) {
      // Its frame is written: calls of this loop may be pipelined behind it (and behind those
      // already there, when the last was written whole), the head of the queue now or later
      // arrivals (Pool::Acquire). Not behind a fresh call: its instance serves no other.
      const bool takes = (inst.slot->behind.empty() || !inst.slot->behind.back()->x.WantsWrite()) &&
                         inst.TakesBehind();
      call->inst->takes_behind.store(takes, std::memory_order_relaxed);
      if (takes) {
        PullBehind(call);
      }
    }
    // EPOLLOUT only while a write waits for room: kept on, it would report every request the
    // worker reads.
    const uint32_t want = EPOLLIN | EPOLLET | (call->x.WantsWrite() ? EPOLLOUT : 0u);
    if (inst.slot->events != want) {
      if (Status s = call->loop->Rearm(inst.ChannelFd(), want); !s.ok()) {
        FailAsync(call, InternalError("cannot watch the worker's channel: " + s.message()));
        return;
      }
      inst.slot->events = want;
    }
    if (call->timer == 0) {
      CheckAsync(call);
    }
    return;
  }
  StopWatching(call);
  if (p == Instance::Pumped::kAnswered) {
    Status violation = inst.Settle(call->x, *answer, options.log_capture_bytes, &call->out,
                                   sandbox::kFrameHeaderBytes);
    answer = std::string();  // freed before its budget is given back
    if (violation.ok()) {
      EndAnswer(call);
      call->answered = true;
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
  const Clock::time_point next =
      InstanceOf(call->inst.get()).NextCheck(&call->x, call->first_check, &expired);
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
  // The channel stays registered with the loop for the instance's next call (ChannelSlot).
  Instance& inst = InstanceOf(call->inst.get());
  call->inst->takes_behind.store(false, std::memory_order_relaxed);
  if (inst.slot != nullptr && inst.slot->call == call) {
    inst.slot->call = nullptr;
  }
  CancelTimer(call);
}

void Scheduler::Impl::FailAsync(const AsyncPtr& call, const Status& why) {
  Instance& inst = InstanceOf(call->inst.get());
  if (inst.slot != nullptr && !inst.slot->behind.empty() &&
      (why.code() == StatusCode::kDeadlineExceeded || why.code() == StatusCode::kUnavailable)) {
    // Did any call behind start? The worker runs one request at a time and writes its whole
    // answer before it reads the next. Killed now, it returns to user code no more, so it reads
    // no further request; if then nothing of an answer waits unread, it never finished this
    // call's, and no call behind started: they may run elsewhere (CompleteAsync). Bytes
    // waiting, or a broken protocol (Internal), and they fail with this one: they may have run.
    inst.Kill();
    call->requeue_behind = !inst.Unread();
  }
  StopWatching(call);  // from here a blocking thread has the instance
  EndAnswer(call);
  // Killing and reaping the worker waits for the kernel: never on the loop.
  auto task = [this, call, why] {
    InstanceOf(call->inst.get()).Finish(call->x, why, options.log_capture_bytes, &call->out);
    call->loop->Post([this, call] { CompleteAsync(call); });
  };
  if (!blocking.Run(task)) {
    // No thread to be had: SIGKILL without waiting; the burier reaps (Bury).
    InstanceOf(call->inst.get()).Abandon(call->x, why, &call->out);
    CompleteAsync(call);
  }
}

void Scheduler::Impl::CompleteAsync(const AsyncPtr& call) {
  PooledPtr inst = std::move(call->inst);
  Instance& instance = InstanceOf(inst.get());
  // The calls pipelined behind this one (design/0015, 0042): the first runs next when this one
  // was answered (the rest stay behind it); else the instance is dead, and they run elsewhere
  // (requeue_behind) or end with it.
  AsyncPtr next;
  std::deque<AsyncPtr> lost;
  if (instance.slot != nullptr && !instance.slot->behind.empty()) {
    if (call->answered) {
      next = std::move(instance.slot->behind.front());
      instance.slot->behind.pop_front();
    } else {
      lost.swap(instance.slot->behind);
    }
  }
  // They never started (FailAsync): back to the head of the queue, in order, each with a new
  // queue timeout, to run on another instance.
  Requeued requeued;
  if (!lost.empty() && call->requeue_behind) {
    requeued.until = Clock::now() + store::EffectiveQueueTimeout(call->spec->config);
    requeued.affinity = call->loop;
    for (AsyncPtr& l : lost) {
      l->ahead = nullptr;
      l->x = Instance::Exchange{};
      l->first_check = true;
      l->timer = l->loop->AddTimer(requeued.until, [this, l] {
        l->timer = 0;
        OnQueueTimeout(l);
      });
      requeued.waiters.push_back(std::move(l));
    }
    lost.clear();
  }
  AfterInvocation(instance, call->name, call->request, call->out);
  if (next != nullptr) {
    next->ahead = nullptr;
    next->inst = std::move(inst);
    HandOver(*call->fn, next->inst.get(), call->out);
  } else {
    // Counts the calls behind that end with it as ended, too.
    Done(*call->fn, std::move(inst), call->answered ? &call->out : nullptr,
         requeued.waiters.empty() ? nullptr : &requeued);
  }
  // Before the client is answered: an answered invocation is always in the ledger.
  recorder->Invocation(
      Billed(call->spec.get(), call->name, call->request, call->out, call->start_unix_ms));
  call->done(std::move(call->out));
  if (next != nullptr) {
    StartBehind(next);
    return;
  }
  if (lost.empty()) {
    return;
  }
  // They never ran: nothing to bill but the request; not retried (they may have been read).
  {
    std::lock_guard lock(mu);
    in_flight -= static_cast<int>(lost.size());
    drained.notify_all();
  }
  for (AsyncPtr& l : lost) {
    l->ahead = nullptr;
    EndWithout(l, Outcome::kCrashed, "the instance it was queued on crashed");
  }
}

}  // namespace faas::scheduler
