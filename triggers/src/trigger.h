// Private to triggers/: one running trigger. The base class owns the parts both sources share
// (the worker pool, pause/stop, health and counters); RedisTrigger and EmbeddedTrigger supply
// the fetch loop and the ways a delivery ends (ack, retry, dead letter).
//
// Threads of one trigger:
//   fetch   (1)            reads messages from the source into `jobs_` while there is room;
//   workers (concurrency)  each takes one job at a time, calls `invoke`, and ends the delivery;
//   extender (1)           every visibility / 3, keeps the deliveries held (fetched, running, or
//                          waiting to end) this trigger's: ExtendHeld (embedded: Queue::Extend;
//                          Redis: XCLAIM … JUSTID of the entries still pending on this consumer);
//   Redis only: writer (1) applies acks/dead letters, claims due retries, reclaims entries of
//                          dead consumers (XAUTOCLAIM) and refreshes the lag.
// At most `concurrency` invocations run at once because only the workers invoke.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/store/queue.h"
#include "faas/triggers/triggers.h"

namespace faas::triggers {

// What every trigger of one manager shares. `invoke` and `queue` outlive the trigger.
struct TriggerEnv {
  const InvokeFn* invoke = nullptr;
  store::Queue* queue = nullptr;
  std::string consumer_name;
};

// One message handed to a worker.
struct Job {
  Delivery delivery;
  int64_t queue_id = 0;    // embedded: the message id
  std::string last_error;  // embedded: the error of the previous attempt, "" if none
};

class Trigger {
 public:
  Trigger(TriggerSpec spec, TriggerEnv env);
  virtual ~Trigger();  // requires JoinAll() to have returned
  Trigger(const Trigger&) = delete;
  Trigger& operator=(const Trigger&) = delete;

  // Starts the fetch and worker threads (and subclass threads). Once.
  void Run();
  // Pausing stops fetching; deliveries already fetched still run. Returns once the fetch loop
  // has parked (a Redis read in progress finishes first, ≤ ~1 s), or after 5 s.
  void SetPaused(bool paused);
  // Stops fetching and starting deliveries; does not wait.
  void BeginStop();
  // Waits until no invocation runs and every outcome is applied, or until `deadline`; then
  // abandons whatever is left (its outcome is never applied: the message is redelivered).
  // Requires BeginStop(). Invocations still running keep their worker thread until they
  // return; JoinAll() waits for them.
  void FinishStop(Clock::time_point deadline);
  // Joins every thread. Requires FinishStop().
  void JoinAll();

  TriggerStatus Snapshot() const;
  const TriggerSpec& Spec() const { return spec_; }  // `paused` may be stale; see Snapshot()

 protected:
  enum Component { kFetcher = 0, kWriter = 1 };

  // The source's fetch loop; returns when stopping_.
  virtual void FetchLoop() = 0;
  // Ends a delivery: success, failure to retry after `delay`, or dead letter with `error`.
  virtual void Ack(const Job& job) = 0;
  virtual void RetryLater(const Job& job, const std::string& error,
                          std::chrono::milliseconds delay) = 0;
  virtual void DeadLetter(const Job& job, const std::string& error) = 0;
  // Interrupts a blocking fetch (stop or pause).
  virtual void WakeFetcher() = 0;
  // Messages not yet delivered, -1 when unknown.
  virtual int64_t Lag() const = 0;
  // Keeps every delivery this trigger holds its own for another visibility_timeout, so that a
  // long invocation (or a long wait in the fetched batch) is not taken over and run a second time
  // by another consumer. Called on the extender thread every visibility_timeout / 3, from Run()
  // until FinishStop has waited for the deliveries in flight. A delivery found lost (another
  // consumer owns it now) is logged and no longer extended.
  virtual void ExtendHeld() = 0;
  // Extra threads (Redis writer): started by Run(), stopped by Abandon(). `Drained` holds
  // mu_ and says whether every outcome handed over has been applied.
  virtual void StartExtra() {}
  virtual bool DrainedLocked() const { return true; }
  virtual void StopExtra() {}

  // For fetch loops. Blocks while paused or while `batch` jobs wait for a worker; false when
  // stopping.
  bool WaitForRoom();
  // Hands jobs to the workers.
  void Enqueue(std::vector<Job> jobs);
  // Sleeps Backoff(failures) (capped at backoff_max), waking early on stop or pause. False
  // when stopping.
  bool BackoffWait(uint32_t failures);
  // Health of the source as seen by one thread; a change of the whole is logged once.
  void SetHealthy(Component c);
  void SetUnhealthy(Component c, const std::string& error);
  // The error text for a message whose deliveries exceeded max_attempts without finishing.
  std::string LostDeliveriesError(uint32_t attempt, const std::string& last_error) const;

  const TriggerSpec spec_;
  const TriggerEnv env_;
  std::shared_ptr<spdlog::logger> log_;

  mutable std::mutex mu_;             // guards everything below that is not atomic
  std::condition_variable work_cv_;   // workers: a job or stop
  std::condition_variable state_cv_;  // room, pause, in_flight, drained, stop
  std::deque<Job> jobs_;
  uint32_t in_flight_ = 0;
  bool fetch_parked_ = false;  // the fetch loop waits because it is paused (or exited)
  std::atomic<bool> paused_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandoned_{false};

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dead_lettered_{0};

 private:
  void WorkerLoop();
  void ExtendLoop();
  void Process(const Job& job);
  DeliveryResult CallInvoke(const Delivery& d);

  bool healthy_[2] = {true, true};
  std::string last_error_;
  std::thread fetcher_;
  std::vector<std::thread> workers_;
  std::mutex extender_mu_;  // guards extender_stop_
  std::condition_variable extender_cv_;
  bool extender_stop_ = false;
  std::thread extender_;
};

std::unique_ptr<Trigger> MakeRedisTrigger(TriggerSpec spec, TriggerEnv env);
std::unique_ptr<Trigger> MakeEmbeddedTrigger(TriggerSpec spec, TriggerEnv env);

}  // namespace faas::triggers
