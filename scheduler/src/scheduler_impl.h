// Scheduler::Impl: the state the scheduler's files share (docs/design/0012-scheduler-pool.md).
//   scheduler.cc   the API, the functions map, the blocking invocation path, Prewarm, Shutdown
//   async_path.cc  the event-loop invocation path (docs/design/0006-warm-path-reactor.md)
//   reaper.cc      idle TTL, min_warm, zygote starts, destroying dead instances
// Admission (who gets an instance, a cold slot, a queue place or a refusal) is Pool's alone
// (pool.h); both invocation paths are waiters in the same FIFO queue.
//
// Locking: one mutex, `mu`, guards the functions map, every Pool, the zygote state and the
// counters below. Nothing blocks under it (no launch, kill or reap); grants are settled under it
// (Settle) and delivered after unlocking (Deliver).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "faas/base/event_loop.h"
#include "faas/base/log.h"
#include "faas/scheduler/scheduler.h"

#include "answer_budget.h"
#include "billing.h"
#include "instance.h"
#include "launcher.h"
#include "pool.h"
#include "zygote.h"

namespace faas::scheduler {

// Failed starts plus deaths of one version's zygotes before it spawns every instance instead.
inline constexpr uint32_t kMaxZygoteFailures = 5;

// One function: its admission state, and what its cold starts fork from.
struct Function {
  Function(std::shared_ptr<const FunctionSpec> spec, uint32_t pipeline_depth)
      : pool(std::move(spec), pipeline_depth) {}
  Pool pool;
  // The current version's zygote (cold starts fork from it), started by the reaper thread.
  std::shared_ptr<Zygote> zygote;
  uint32_t zygote_failures = 0;         // failed starts and deaths of this version's zygotes
  Clock::time_point zygote_retry_at{};  // restart backoff
  bool zygote_disabled = false;         // this version spawns every instance (logged once)
  // A launch took the zygote's parked instance (or forked): Done wakes the reaper to park the
  // next one once that invocation is over, so the refill does not compete with it for the CPU.
  bool park_next = false;
  // The function's cgroup level (f-<name>): its instances and zygotes are made below it.
  std::shared_ptr<sandbox::FunctionCgroup> cgroup;
};

// A caller of either path, as a Pool waiter.
struct Call : Waiter {
  explicit Call(bool is_async) : async(is_async) {}
  const bool async;
};

// A Scheduler::Invoke caller queued for an instance: its grant is stored under mu and its
// condition variable notified.
struct BlockingCall final : Call {
  BlockingCall() : Call(false) {}
  std::condition_variable cv;
  bool granted = false;  // under mu
  Grant grant;           // under mu; its `waiter` is cleared (no cycle)
};

// One InvokeAsync call, from its arrival to its `done` (docs/design/0006-warm-path-reactor.md).
// Touched by its loop's thread only, except while it is queued in its Pool (under mu), while its
// launch runs on a blocking thread and while a blocking thread finishes a failed invocation (the
// loop does nothing with it in those times).
struct AsyncCall final : Call {
  AsyncCall() : Call(true) {}
  std::string name;
  InvokeRequest request;
  EventLoop* loop = nullptr;
  std::function<void(InvokeResult)> done;
  int64_t start_unix_ms = 0;
  std::shared_ptr<Function> fn;
  std::shared_ptr<const FunctionSpec> spec;
  InvokeResult out;
  PooledPtr inst;  // while it runs
  // Pipelined (Grant::kBehind, design/0015): the instance whose current call it waits behind,
  // with any queued before it, until it becomes the front call (then `inst`) or the instance
  // fails.
  PooledInstance* ahead = nullptr;
  bool answered = false;  // its answer was accepted (the instance serves on)
  // It failed, and the calls pipelined behind it provably never started (FailAsync): they go
  // back to the queue instead of failing with it.
  bool requeue_behind = false;
  Instance::Exchange x;
  uint64_t timer = 0;  // the queue timeout, then the next CPU/deadline check
  bool first_check = true;
  AnswerBudget::Ticket budget_ticket = 0;  // waiting for answer-buffer bytes (AnswerBudget)
};
using AsyncPtr = std::shared_ptr<AsyncCall>;

// An instance's channel as registered with one event loop (Instance::loop), edge-triggered, from
// the first call that loop ran on it until the instance ends or moves to another loop: no
// epoll_ctl per invocation. Its callback's state; touched on that loop's thread only (a loop the
// instance moved away from keeps the old slot and ignores it: its `call` stays empty).
struct ChannelSlot {
  AsyncPtr call;  // the call exchanging on the channel now, else null
  // Pipelined behind it, in the order written (design/0042); only the last one's frame may be
  // partly written (then nothing more is queued behind it).
  std::deque<AsyncPtr> behind;
  uint32_t events = 0;   // registered: EPOLLIN | EPOLLET, plus EPOLLOUT while a write waits
  bool suspect = false;  // an event came while no call was: peek before the next request
};

// Calls pipelined behind a failed one that never started (Pool::Requeue): their queue deadline
// and their loop.
struct Requeued {
  std::vector<WaiterPtr> waiters;
  Clock::time_point until;
  const void* affinity = nullptr;
};

// Grants settled under mu, to deliver after unlocking.
struct Deliveries {
  std::vector<std::shared_ptr<BlockingCall>> wake;
  std::vector<Grant> async;
};

struct Scheduler::Impl {
  SchedulerOptions options;
  std::unique_ptr<InstanceLauncher> launcher;
  std::unique_ptr<Recorder> recorder;
  std::shared_ptr<spdlog::logger> log = log::Get("scheduler");
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Function>, std::less<>> functions;
  // Each function's current version, for Current(): the gateway asks on every request, and a
  // shared lock keeps those lookups off `mu`. Written with mu held (order: mu, then specs_mu).
  mutable std::shared_mutex specs_mu;
  std::map<std::string, std::shared_ptr<const FunctionSpec>, std::less<>> specs;
  bool stopping = false;
  int in_flight = 0;  // granted an instance or a cold slot, not yet released
  std::condition_variable drained;
  std::condition_variable reaper_wake;
  bool reaper_work = false;  // something for the reaper now (a new version wants a zygote)
  std::thread reaper;
  // Zygotes no function uses any more; the last instance forked from one may still hold it.
  // Released by the reaper outside the lock (closing one kills its namespace and waits).
  std::vector<std::shared_ptr<Zygote>> retired_zygotes;  // under mu
  // Zygotes Prepare started for a deploy, by function, until the SetFunction that follows adopts
  // one (docs/design/0014-cold-start-after-deploy.md). The spec object is the zygote's alone
  // until then (no instance was forked from it), so adoption can write the version number into
  // it. Under mu.
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
  // SetFunction's hook (mu held): the zygote prepared for `spec` becomes the function's, billed
  // now.
  void AdoptPreparedLocked(Function* fn, const FunctionSpec& spec);
  // Instances done with: killed at once, then destroyed (reap, cgroup removal, the end's billing:
  // milliseconds) by the burier thread, off the request path (Bury).
  std::mutex burial_mu;
  std::condition_variable burial_wake;
  std::vector<PooledPtr> burials;  // under burial_mu
  // Handed to Bury and not destroyed yet; past kMaxInstancesBeingStopped a new cold start waits
  // (design/0034): an event-loop call's grant in `awaiting_burials`, a blocking caller on
  // `burial_room`. The burier releases them as it catches up, the reaper after a second at most.
  std::atomic<std::size_t> burying{0};
  std::vector<Grant> awaiting_burials;  // under burial_mu
  Clock::time_point awaiting_since{};   // under burial_mu: when the first of them came
  std::condition_variable burial_room;  // under burial_mu
  bool burier_stopping = false;         // under burial_mu: drain, then end
  std::thread burier;

  // The clock of last_used and idle TTL (SchedulerOptions::clock, else Clock::now).
  Clock::time_point Now() const { return options.clock ? options.clock() : Clock::now(); }
  void RetireZygote(Function* fn);  // mu held
  // A full warm pool (SchedulerOptions::warm_pool): while the node holds more instances than it
  // keeps, the least recently used idle one of any function goes to `dead`. mu held; called
  // after a cold slot was handed out, and by the reaper.
  void MakeRoomLocked(std::vector<PooledPtr>* dead);
  void ToGraveyard(std::vector<PooledPtr>* dead);  // mu held: Bury, and a reaper round

  // Grants: Settle with mu held (counts in_flight, stores blocking callers' grants), Deliver
  // after unlocking (wakes them, starts async calls on their loops).
  void Settle(std::vector<Grant>* grants, Deliveries* d);
  void Deliver(Deliveries* d);
  // An invocation ended on `inst` (or, with inst == nullptr, its cold launch failed): back to
  // the pool, which hands it or the slot to the next waiter. Any thread, mu not held.
  // `answered`: an answered invocation's result, for the pool's pipelining averages.
  // `requeue`: calls pipelined behind `inst` that never started, back to the head of the queue
  // (Pool::Requeue) before the instance is released.
  void Done(Function& fn, PooledPtr inst, const InvokeResult* answered = nullptr,
            const Requeued* requeue = nullptr);
  // The call ahead on `inst` was answered and the one behind it runs there now.
  void HandOver(Function& fn, PooledInstance* inst, const InvokeResult& answered);

  // A new instance of `spec` for `fn` through the launcher (blocks; mu not held). Fills the
  // cold-start timings and `forked` of *out when given; records the start (Started).
  Result<PooledPtr> Launch(Function& fn, const std::shared_ptr<const FunctionSpec>& spec,
                           InvokeResult* out);
  // A parked instance of `spec` for `fn`, handed over without blocking (any thread, the event
  // loop's too; mu not held), with the cold-start timings in *out and the start recorded; or
  // nullptr when none is parked now (then Launch).
  PooledPtr TakeParked(Function& fn, const std::shared_ptr<const FunctionSpec>& spec,
                       InvokeResult* out);
  // A failed launch as an invocation's outcome and message (and a log line).
  void LaunchFailed(const std::string& name, const std::string& invocation_id, const Status& s,
                    InvokeResult* out);
  // Bills what an instance used when it ends: background CPU, and the teardown as platform.
  Instance::OnEnd BillAtEnd();
  // A new instance is ready: records its start's CPU (init billed, platform counted) and bills
  // its background CPU from now on. Call once per started instance, kept or not.
  void Started(Instance& inst);
  // After an invocation: logs a lost instance, records background CPU.
  void AfterInvocation(Instance& inst, const std::string& name, const InvokeRequest& request,
                       const InvokeResult& out);

  // The blocking path (scheduler.cc). Moves the request's body into the worker's frame.
  InvokeResult InvokeSync(const std::string& name, InvokeRequest request);
  InvokeResult InvokeInner(const std::string& name, InvokeRequest& request,
                           std::shared_ptr<const FunctionSpec>* spec_out);

  // The event-loop path (async_path.cc; loop thread unless said otherwise).
  void InvokeAsync(const AsyncPtr& call);
  void Dispatch(Grant g);  // a grant for an async call; any thread
  // A cold slot: take a parked instance on the loop, else launch on a blocking thread.
  void LaunchAsync(const AsyncPtr& call);
  void StartAsync(const AsyncPtr& call);  // the call holds a busy instance
  // The call's frame is written: the head of its function's queue, when it is this loop's, is
  // pipelined behind it (Pool::TakeBehind), and so on while the depth allows and the last frame
  // was written whole.
  void PullBehind(const AsyncPtr& call);
  // A kBehind grant, on the loop of the calls ahead: its frame is written now (what fits).
  void QueueBehind(const AsyncPtr& call);
  // The call ahead was answered: the call behind becomes the front one (it holds `inst`).
  void StartBehind(const AsyncPtr& call);
  // Registers the instance's channel with the call's loop unless it is already (ChannelSlot)
  // and makes the call its current one.
  Status AttachChannel(const AsyncPtr& call);
  void OnChannel(const std::shared_ptr<ChannelSlot>& slot, uint32_t events);
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
  // Ends a call that got no instance (refused, timed out in the queue, shut down, launch
  // failed); any thread. With `keep_out`, *call->out already says why.
  void EndWithout(const AsyncPtr& call, Outcome outcome, std::string message,
                  bool keep_out = false);
  void OnQueueTimeout(const AsyncPtr& call);
  // Runs `fn` on the call's loop: now when this is that loop's thread, else posted there.
  static void OnLoopOf(const AsyncPtr& call, std::function<void()> fn);
  static void CancelTimer(const AsyncPtr& call);  // the call's loop thread

  // The reaper (reaper.cc).
  void ReaperLoop();
  // The burier: destroys the instances the reaper hands it (kill, reap, cgroup removal, the end's
  // billing; 0.3-10 ms each here, more under load) on a thread of its own at a lower CPU
  // priority, so the reaper's next park (a fresh function's next call takes it) does not queue
  // behind them, and neither competes with invocations (docs/design/0010, "Parked instances").
  void BurierLoop();
  void Bury(std::vector<PooledPtr>* dead);  // any thread but the burier; mu not needed
  bool BurialsBehind() const { return burying.load() > kMaxInstancesBeingStopped; }
  // A cold grant while BurialsBehind(): dispatched once the burier is back under the bound.
  void AwaitBurials(Grant g);
  void WaitForBurials();  // the same for a blocking caller, at most a second
  // Dispatches what AwaitBurials held: when the burier is back under the bound, or (`stale`) all
  // of it once it has waited a second (a burial stuck in the kernel must not stop cold starts).
  void ReleaseAwaiting(bool stale);
  // Starts a zygote for each function in `want` that still wants one. Called and returns with
  // the lock held; starts run without it.
  void StartZygotes(std::unique_lock<std::mutex>& lock,
                    const std::vector<std::shared_ptr<Function>>& want);
  // Starts min_warm instances of `want`, one at a time outside the lock. Same lock contract.
  void StartWarm(std::unique_lock<std::mutex>& lock,
                 const std::vector<std::shared_ptr<Function>>& want,
                 std::vector<PooledPtr>* expired);

  // What answers being received may hold together (SchedulerOptions::answer_buffer_budget).
  std::unique_ptr<AnswerBudget> answer_budget;
  BlockingPool blocking;  // last: destroyed (joined) first
};

}  // namespace faas::scheduler
