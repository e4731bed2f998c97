// A trigger on the embedded queue (store::Queue). The queue keeps the delivery state: a lease
// per delivery (attempt = QueueMessage.attempt), Retry with a visible_at for the backoff, and
// dead letters; a lease that is never ended expires after the visibility timeout and the
// message is leased again with attempt + 1, which is how a crashed faasd's messages come back.
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
    if (Note(job, "ack", env_.queue->Ack(job.queue_id, job.delivery.attempt))) {
      ++delivered_;
    }
  }

  void RetryLater(const Job& job, const std::string& error,
                  std::chrono::milliseconds delay) override {
    Note(job, "retry",
         env_.queue->Retry(job.queue_id, job.delivery.attempt, UnixMillisNow() + delay.count(),
                           error));
  }

  void DeadLetter(const Job& job, const std::string& error) override {
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

  int64_t Lag() const override {
    auto st = env_.queue->Stats(spec_.queue);
    if (!st.ok()) {
      return -1;
    }
    return static_cast<int64_t>(st->ready + st->delayed);
  }
};

}  // namespace

std::unique_ptr<Trigger> MakeEmbeddedTrigger(TriggerSpec spec, TriggerEnv env) {
  return std::make_unique<EmbeddedTrigger>(std::move(spec), std::move(env));
}

}  // namespace faas::triggers
