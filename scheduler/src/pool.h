// Pool: the admission state of one function (docs/design/0012-scheduler-pool.md). It decides
// who runs where; it does no I/O, starts no threads and reads no clock (times are passed in), so
// its rules are unit-tested with fake instances (tests/unit/scheduler/pool_test.cc).
//
//   Grant g = pool.Acquire(waiter, {.fresh = false, .body_bytes = n, .deadline = d}, &dead);
//   switch (g.kind) {
//     case Grant::kWarm:    run on g.instance, then pool.Release(std::move(inst), ...)
//     case Grant::kCold:    launch an instance of g.spec, then pool.Adopt(it) or pool.ReturnSlot
//     case Grant::kQueued:  wait: a later Release / ReturnSlot / AddIdle / SetSpec returns a
//                           Grant for this waiter in its `grants` output (or Cancel at deadline)
//     case Grant::kRefused: answer g.outcome with g.message
//   }
//
// Not thread-safe: the scheduler holds its mutex around every call and delivers the grants
// (wakes a blocked caller, posts to a loop) after unlocking. Instances the pool gives up
// (retired versions, expired, evicted) are moved to a `dead` vector for the caller to destroy
// outside its lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "faas/base/time.h"
#include "faas/scheduler/scheduler.h"

namespace faas::scheduler {

// What the pool needs to know of an instance. The scheduler's are running workers; the unit
// tests' are fakes.
class PooledInstance {
 public:
  virtual ~PooledInstance() = default;
  // The function version it runs (FunctionSpec::version).
  virtual uint32_t Version() const = 0;
  // False once it died, broke protocol or was retired: it is not reused.
  virtual bool Healthy() const = 0;
  Clock::time_point last_used{};  // set by the pool when it goes idle
  // Which caller it suits best (the scheduler's: the event loop its channel is registered
  // with); Acquire prefers it for a request with the same affinity. Set by its holder.
  const void* affinity = nullptr;
  // Set by its holder while another call can be pipelined behind the ones it has (the
  // event-loop path: the channel is its loop's and the last call's frame is written). Read by
  // the pool under its owner's lock; an atomic because the holder writes it without that lock.
  std::atomic<bool> takes_behind{false};
  // The pool's own (under its owner's lock): the affinity of the caller it is busy for
  // (nullptr: a blocking caller, or not yet known), and how many calls are pipelined behind
  // its current one (at most the pool's pipeline depth).
  const void* busy_for = nullptr;
  uint32_t behind = 0;
};
using PooledPtr = std::unique_ptr<PooledInstance>;

// One caller queued for an instance. The pool only keeps and compares the pointer; the
// scheduler's blocking and event-loop callers derive from it to learn how to be woken.
class Waiter {
 public:
  virtual ~Waiter() = default;
};
using WaiterPtr = std::shared_ptr<Waiter>;

// The answer to an Acquire, or a later grant to a queued waiter.
struct Grant {
  // kBehind: pipelined behind the call `ahead` is busy with (design/0015): the caller writes its
  // frame now and runs when that call ends (Pool::Handover), on the same caller (affinity).
  enum Kind { kWarm, kCold, kQueued, kRefused, kBehind };
  Kind kind = kRefused;
  WaiterPtr waiter;                          // who it is for
  std::shared_ptr<const FunctionSpec> spec;  // the version to run (current when granted)
  PooledPtr instance;                        // kWarm: now the caller's (busy)
  PooledInstance* ahead = nullptr;           // kBehind: busy with the call this one follows
  Outcome outcome = Outcome::kInternal;      // kRefused
  std::string message;                       // kRefused
};

struct AcquireRequest {
  bool fresh = false;          // a new instance, never reused (InvokeRequest::fresh)
  std::size_t body_bytes = 0;  // checked against max_body_bytes
  // When a queued waiter gives up (InvokeRequest::arrived + the function's queue timeout).
  Clock::time_point deadline{};
  // Prefer the most recently used idle instance with this affinity (PooledInstance::affinity)
  // over the most recently used one; nullptr: no preference.
  const void* affinity = nullptr;
  // May go behind a busy instance's call of the same affinity (Grant::kBehind): the caller
  // queues it there before that call can end.
  bool pipeline = false;
};

// Pipelining (design/0015, design/0042): at most `pipeline_depth` calls behind a busy instance's
// current one (0 to kMaxPipelineDepth), only for functions whose recent invocations average under
// kPipelineCpuLimit of CPU and under kPipelineWallLimit of exec (wall) time, measured over at least
// kPipelineMinSamples invocations. CPU is what makes a call short; wall time includes the wait for
// a CPU on a busy host (0.15-1.1 ms for `hello` under wrk -c32 here), and bounds how long a call
// behind may wait for one that sleeps.
inline constexpr std::chrono::microseconds kPipelineCpuLimit{200};
inline constexpr std::chrono::milliseconds kPipelineWallLimit{5};
inline constexpr uint32_t kPipelineMinSamples = 8;
inline constexpr uint32_t kMaxPipelineDepth = 16;

// An exponential moving average of durations, weight 1/8; its first sample sets it. `Settled()`
// once it has seen kPipelineMinSamples.
class DurationAverage {
 public:
  void Add(std::chrono::nanoseconds v) {
    avg_ = samples_ == 0 ? v : avg_ + (v - avg_) / 8;
    samples_ = std::min(samples_ + 1, kPipelineMinSamples);
  }
  std::chrono::nanoseconds Get() const { return avg_; }
  bool Settled() const { return samples_ >= kPipelineMinSamples; }

 private:
  std::chrono::nanoseconds avg_{0};
  uint32_t samples_ = 0;
};
// Busy first (design/0042): when the handler itself (as its worker reports it) averages under
// this, a new call lines up behind a busy instance of its loop (below the depth) before an idle
// instance is woken or a new one started; a call then waits at most about depth x this for the
// ones ahead of it. CPU-bound short functions; one that sleeps runs its calls side by side. A
// worker that lies can only line up its own function's calls.
inline constexpr std::chrono::microseconds kBusyFirstHandlerLimit{50};

// The refusals the scheduler gives, worded once (tests and docs check these texts).
inline constexpr const char* kShuttingDownMessage = "faasd is shutting down";
std::string NotFoundMessage(const std::string& name);
std::string DeletedMessage(const std::string& name);
std::string TooLargeMessage(const std::string& name, std::size_t size,
                            const store::FunctionConfig& cfg);
std::string QueueFullMessage(const std::string& name, const store::FunctionConfig& cfg,
                             uint32_t waiting);
std::string QueueTimeoutMessage(const std::string& name, const store::FunctionConfig& cfg);

class Pool {
 public:
  // `pipeline_depth`: 0 never pipelines; K lets up to K calls wait on a busy instance (kBehind);
  // at most kMaxPipelineDepth.
  explicit Pool(std::shared_ptr<const FunctionSpec> spec, uint32_t pipeline_depth = 0)
      : spec_(std::move(spec)), pipeline_depth_(std::min(pipeline_depth, kMaxPipelineDepth)) {}
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A new current version (deploy, rollback). Idle instances of other versions go to `dead`;
  // busy ones die when released. The slots freed go to queued waiters.
  void SetSpec(std::shared_ptr<const FunctionSpec> spec, std::vector<PooledPtr>* dead,
               std::vector<Grant>* grants);
  // One of: an idle instance of the current version (most recently used first, among those of
  // the request's affinity when there are any), a cold-start slot (below max_instances; a fresh
  // request at max_instances evicts the least recently used idle instance for one), a queue
  // position (FIFO; nobody overtakes a queued waiter, whatever its affinity), or a refusal
  // (shutting down, removed, body too large, queue full). Pipelining on, before a queue position
  // and only with nobody queued: a place behind a busy instance's calls of the same affinity that
  // takes one (kBehind; the one with the fewest behind, below the depth), for a function whose
  // recent invocations are short (kPipelineCpuLimit, kPipelineWallLimit). With BusyFirst, that
  // place comes before an idle instance or a cold slot.
  Grant Acquire(const WaiterPtr& waiter, const AcquireRequest& request,
                std::vector<PooledPtr>* dead);
  // The holder of a cold slot got its instance: it is busy until Released.
  // `affinity`: the caller's (AcquireRequest::affinity), which a kBehind must share.
  void Adopt(PooledInstance* instance, const void* affinity = nullptr) {
    instance->busy_for = affinity;
    busy_.insert(instance);
  }
  // The call ahead on `instance` was answered and the first one pipelined behind it now runs
  // there: the instance stays busy (counted as one invocation ended).
  void Handover(PooledInstance* instance);
  // Pipelining with a queue: the head of the queue, when it may wait behind `instance`'s call
  // (the same affinity, not fresh, the current version, pipelining admitted and fewer than the
  // depth behind), leaves the queue for that place (`behind` grows); else nullptr. Only the
  // head: FIFO holds. The caller runs on that affinity's thread and queues it behind at once.
  WaiterPtr TakeBehind(PooledInstance* instance);
  // The calls pipelined behind `instance` (`waiters`, in the order they were written) never
  // started: its call ahead failed before its answer was written. They go back to the head of
  // the queue in that order, each until `deadline` (no longer counted behind the instance);
  // refused (in `grants`) when the pool was closed meanwhile.
  void Requeue(PooledInstance* instance, const std::vector<WaiterPtr>& waiters,
               Clock::time_point deadline, const void* affinity, std::vector<Grant>* grants);
  // An answered invocation's exec (wall) time and CPU, for the averages that admit pipelining,
  // and its handler's wall time as the worker reported it (negative: not reported), for
  // BusyFirst.
  void NoteExec(std::chrono::nanoseconds exec, std::chrono::nanoseconds cpu,
                std::chrono::nanoseconds reported_handler = std::chrono::nanoseconds(-1));
  // An invocation ended on `instance`: it goes idle (last_used = now) when healthy, of the
  // current version, reusable and the pool is open; else to `dead`. Then serves the queue. The
  // calls pipelined behind (`behind`) ended with it, unanswered: they are counted too.
  void Release(PooledPtr instance, bool reusable, Clock::time_point now,
               std::vector<PooledPtr>* dead, std::vector<Grant>* grants);
  // A cold slot whose launch failed (`invoked`: it was an invocation's, which is counted).
  // The slot goes to the next waiter.
  void ReturnSlot(bool invoked, std::vector<PooledPtr>* dead, std::vector<Grant>* grants);
  // Reserves up to `count` slots for instances started ahead of demand (Prewarm, min_warm);
  // each is then given to AddIdle or returned with ReturnSlot(false).
  uint32_t Reserve(uint32_t count);
  // A reserved slot's new instance of `version`: idle, or to `dead` when the pool closed or
  // the version changed meanwhile (false). Then serves the queue.
  bool AddIdle(PooledPtr instance, uint32_t version, Clock::time_point now,
               std::vector<PooledPtr>* dead, std::vector<Grant>* grants);
  // Idle instances unused for idle_ttl at `now`, least recently used first, never taking the
  // pool below min_warm.
  std::vector<PooledPtr> Reap(Clock::time_point now);
  // Instances to start for min_warm (0 once removed or shut down).
  uint32_t WarmDeficit() const;
  // The node's warm pool is full (SchedulerOptions::warm_pool, design/0032): the last use of
  // this pool's least recently used idle instance when one may be evicted (the pool stays at or
  // above min_warm), else nullopt. EvictIdle gives it up (to be destroyed) and counts it.
  std::optional<Clock::time_point> EvictableSince() const;
  PooledPtr EvictIdle();
  uint64_t evicted() const { return evicted_; }
  // Queued waiters whose deadline is at or before `now` get their queue-timeout refusal.
  void Expire(Clock::time_point now, std::vector<Grant>* grants);
  // Takes `waiter` out of the queue: true when it was queued (its caller answers it now);
  // false when it was granted meanwhile (that grant is on its way) or never queued.
  bool Cancel(const WaiterPtr& waiter);
  // The function is deleted: every waiter is refused (not found), idle instances go to `dead`,
  // later Acquires are refused and released instances die.
  void Remove(std::vector<PooledPtr>* dead, std::vector<Grant>* grants);
  // The scheduler stops: the same, with "shutting down".
  void Shutdown(std::vector<PooledPtr>* dead, std::vector<Grant>* grants);

  const std::shared_ptr<const FunctionSpec>& spec() const { return spec_; }
  const std::set<PooledInstance*>& busy() const { return busy_; }
  uint32_t idle() const { return static_cast<uint32_t>(idle_.size()); }
  uint32_t total() const { return total_; }
  uint32_t waiting() const { return static_cast<uint32_t>(queue_.size()); }
  uint64_t invocations() const { return invocations_; }
  uint64_t cold_starts() const { return cold_starts_; }
  bool closed() const { return removed_ || stopping_; }
  // Pipelining admitted now (depth, isolation, enough short execs).
  bool Pipelining() const;
  // Pipelining admitted, and the handler itself is short (kBusyFirstHandlerLimit, as the worker
  // reports it): a new call goes behind a busy instance before an idle one is taken.
  bool BusyFirst() const;
  std::chrono::nanoseconds exec_average() const { return exec_avg_.Get(); }
  std::chrono::nanoseconds cpu_average() const { return cpu_avg_.Get(); }

 private:
  struct Queued {
    WaiterPtr waiter;
    bool fresh = false;
    Clock::time_point deadline{};
    const void* affinity = nullptr;
  };
  uint32_t MaxInstances() const { return spec_->config.max_instances; }
  // The most recently used idle instance of the current version (others met on the way go to
  // `dead`), or nullptr; the most recently used of `affinity` first, when there is one.
  PooledPtr TakeIdle(std::vector<PooledPtr>* dead, const void* affinity = nullptr);
  // The busy instance a call of `affinity` may line up behind (kBehind): of that affinity, taking
  // one, below the depth, the current version, healthy; the one with the fewest behind. nullptr:
  // none.
  PooledInstance* LineFor(const void* affinity) const;
  Grant Behind(Grant g, PooledInstance* ahead);  // g as a kBehind grant behind `ahead`
  // Makes room for a fresh instance at max_instances by stopping the least recently used idle.
  void EvictForFresh(std::vector<PooledPtr>* dead);
  // Grants to queued waiters in arrival order while the first can be served.
  void Serve(std::vector<PooledPtr>* dead, std::vector<Grant>* grants);
  void CloseAll(Outcome outcome, const std::string& message, std::vector<PooledPtr>* dead,
                std::vector<Grant>* grants);

  std::shared_ptr<const FunctionSpec> spec_;  // the current version
  std::deque<PooledPtr> idle_;                // back = most recently used
  std::set<PooledInstance*> busy_;            // running an invocation (owned by its caller)
  uint32_t total_ = 0;                        // idle + busy + starting (slots handed out)
  std::deque<Queued> queue_;                  // waiters, oldest first
  uint64_t invocations_ = 0;
  uint64_t cold_starts_ = 0;
  uint64_t evicted_ = 0;  // idle instances given up for another function's cold start
  bool removed_ = false;
  bool stopping_ = false;
  uint32_t pipeline_depth_ = 0;
  DurationAverage exec_avg_;
  DurationAverage cpu_avg_;
  DurationAverage handler_avg_;  // as reported by the workers (untrusted)
};

}  // namespace faas::scheduler
