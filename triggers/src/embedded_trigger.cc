// A trigger on the embedded queue (store::Queue). The queue keeps the delivery state: a lease
// per delivery (attempt = QueueMessage.attempt), Retry with a visible_at for the backoff, and
// dead letters; a lease that is never ended expires after the visibility timeout and the
// message is leased again with attempt + 1, which is how a crashed faasd's messages come back.
// While a delivery is held (fetched and waiting for a worker, or running), the trigger's extender
// thread (trigger.h) pushes its lease deadline to now + visibility every visibility / 3
// (Queue::Extend), so the visibility only bounds how long a dead consumer's work waits, not how
// long an invocation may run.
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "faas/base/log.h"

#include "trigger.h"

namespace faas::triggers {
namespace {

// A fetch loop waits at most this long for the queue to signal a ready message; the queue
// wakes it earlier on Publish/Retry/lease expiry, and Stop/Pause wake it via WakeAll.
constexpr std::chrono::milliseconds kMaxWait{1000};

class EmbeddedTrigger final : public Trigger {
 public:
  EmbeddedTrigger(TriggerSpec spec, TriggerEnv env) : Trigger(std::move(spec), std::move(env)) {}

 private:
  void FetchLoop() override {
    store::Queue& q = *env_.queue;
    uint32_t failures = 0;
    while (WaitForRoom()) {
      auto leased = q.Lease(spec_.queue, spec_.batch, spec_.visibility_timeout);
      if (!leased.ok()) {
        SetUnhealthy(kFetcher, leased.status().ToString());
        if (!BackoffWait(++failures)) {
          break;
        }
        continue;
      }
      failures = 0;
      SetHealthy(kFetcher);
      if (leased->empty()) {
        if (!stopping_ && !paused_) {
          q.WaitForReady(spec_.queue, Clock::now() + kMaxWait);
        }
        continue;
      }
      std::vector<Job> jobs;
      jobs.reserve(leased->size());
      {
        std::lock_guard lock(held_mu_);
        for (const store::QueueMessage& m : *leased) {
          held_[m.id] = m.attempt;
        }
      }
      for (store::QueueMessage& m : *leased) {
        Job j;
        j.queue_id = m.id;
        j.last_error = std::move(m.last_error);
        j.delivery.trigger = spec_.name;
        j.delivery.function = spec_.function;
        j.delivery.queue = spec_.queue;
        j.delivery.message_id = std::to_string(m.id);
        j.delivery.attempt = m.attempt;
        j.delivery.body = std::move(m.body);
        j.delivery.headers = std::move(m.headers);
        jobs.push_back(std::move(j));
      }
      Enqueue(std::move(jobs));
    }
  }

  void Ack(const Job& job) override {
    Release(job);
    if (Note(job, "ack", env_.queue->Ack(job.queue_id, job.delivery.attempt))) {
      ++delivered_;
    }
  }

  void RetryLater(const Job& job, const std::string& error,
                  std::chrono::milliseconds delay) override {
    Release(job);
    Note(job, "retry",
         env_.queue->Retry(job.queue_id, job.delivery.attempt, UnixMillisNow() + delay.count(),
                           error));
  }

  void DeadLetter(const Job& job, const std::string& error) override {
    Release(job);
    if (Note(job, "dead_letter",
             env_.queue->DeadLetter(job.queue_id, job.delivery.attempt, spec_.dlq, error))) {
      ++dead_lettered_;
      FAAS_LOG(log_, info, "trigger.dead_lettered", {"trigger", spec_.name},
               {"id", job.delivery.message_id}, {"attempts", job.delivery.attempt},
               {"dlq", spec_.dlq}, {"error", error});
    }
  }

  // Logs a failed end of lease; true when it succeeded. NotFound means the lease expired and
  // another delivery owns the message now: that one decides its fate.
  bool Note(const Job& job, const char* op, const Status& s) {
    if (s.ok()) {
      return true;
    }
    FAAS_LOG(log_, warn, "trigger.lease_end_failed", {"trigger", spec_.name}, {"op", op},
             {"id", job.delivery.message_id}, {"attempt", job.delivery.attempt},
             {"error", s.ToString()});
    return false;
  }

  void WakeFetcher() override { env_.queue->WakeAll(); }

  // The delivery is ending (or ended): its lease is no longer extended.
  void Release(const Job& job) {
    std::lock_guard lock(held_mu_);
    auto it = held_.find(job.queue_id);
    if (it != held_.end() && it->second == job.delivery.attempt) {
      held_.erase(it);
    }
  }

  // Extends the lease of every held delivery to now + visibility. A lost lease (NotFound: it
  // expired and another consumer took the message) is no longer extended; other errors (the
  // backend is unreachable) are retried on the next round.
  void ExtendHeld() override {
    std::vector<std::pair<int64_t, uint32_t>> leases;
    {
      std::lock_guard lock(held_mu_);
      leases.assign(held_.begin(), held_.end());
    }
    for (const auto& [id, attempt] : leases) {
      Status s = env_.queue->Extend(id, attempt, spec_.visibility_timeout);
      if (s.ok()) {
        continue;
      }
      FAAS_LOG(log_, warn, "trigger.extend_failed", {"trigger", spec_.name}, {"id", id},
               {"attempt", attempt}, {"error", s.ToString()});
      if (s.code() == StatusCode::kNotFound) {
        std::lock_guard lock(held_mu_);
        auto it = held_.find(id);
        if (it != held_.end() && it->second == attempt) {
          held_.erase(it);
        }
      }
    }
  }

  int64_t Lag() const override {
    auto st = env_.queue->Stats(spec_.queue);
    if (!st.ok()) {
      return -1;
    }
    return static_cast<int64_t>(st->ready + st->delayed);
  }

  std::mutex held_mu_;                // guards held_
  std::map<int64_t, uint32_t> held_;  // message id → attempt of the leases this trigger holds
};

}  // namespace

std::unique_ptr<Trigger> MakeEmbeddedTrigger(TriggerSpec spec, TriggerEnv env) {
  return std::make_unique<EmbeddedTrigger>(std::move(spec), std::move(env));
}

}  // namespace faas::triggers
