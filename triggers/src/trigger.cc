#include "trigger.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "faas/base/log.h"

namespace faas::triggers {

Trigger::Trigger(TriggerSpec spec, TriggerEnv env)
    : spec_(std::move(spec)), env_(std::move(env)), log_(log::Get("triggers")) {
  paused_ = spec_.paused;
}

Trigger::~Trigger() {
  // The manager always stops and joins a trigger before dropping it; a thread still running
  // here would use a destroyed subclass.
  FAAS_CHECK(!fetcher_.joinable());
  FAAS_CHECK(!extender_.joinable());
  for (const auto& w : workers_) {
    FAAS_CHECK(!w.joinable());
  }
}

void Trigger::Run() {
  StartExtra();
  extender_ = std::thread([this] { ExtendLoop(); });
  workers_.reserve(spec_.concurrency);
  for (uint32_t i = 0; i < spec_.concurrency; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  fetcher_ = std::thread([this] {
    FetchLoop();
    std::lock_guard lock(mu_);
    fetch_parked_ = true;
    state_cv_.notify_all();
  });
  FAAS_LOG(log_, info, "trigger.started", {"trigger", spec_.name}, {"fn", spec_.function},
           {"source", spec_.source},
           {"queue", spec_.source == "embedded" ? spec_.queue : spec_.stream},
           {"paused", paused_.load()});
}

void Trigger::SetPaused(bool paused) {
  std::unique_lock lock(mu_);
  paused_ = paused;
  state_cv_.notify_all();
  if (!paused) {
    return;
  }
  lock.unlock();
  WakeFetcher();
  lock.lock();
  // The fetch loop parks before its next read. A Redis read already blocking finishes first
  // (BLOCK 1000); its messages are delivered like any other fetched ones.
  state_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return fetch_parked_ || stopping_; });
}

void Trigger::BeginStop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  state_cv_.notify_all();
  WakeFetcher();
}

void Trigger::FinishStop(Clock::time_point deadline) {
  if (fetcher_.joinable()) {
    fetcher_.join();
  }
  {
    std::unique_lock lock(mu_);
    auto done = [&] { return in_flight_ == 0 && DrainedLocked(); };
    if (deadline == Clock::time_point::max()) {
      state_cv_.wait(lock, done);
    } else {
      state_cv_.wait_until(lock, deadline, done);
    }
    abandoned_ = true;
    if (in_flight_ > 0) {
      FAAS_LOG(log_, warn, "trigger.abandoned", {"trigger", spec_.name}, {"in_flight", in_flight_});
    }
  }
  // Only now: the deliveries waited for above kept their leases meanwhile.
  {
    std::lock_guard lock(extender_mu_);
    extender_stop_ = true;
  }
  extender_cv_.notify_all();
  if (extender_.joinable()) {
    extender_.join();
  }
  StopExtra();
  FAAS_LOG(log_, info, "trigger.stopped", {"trigger", spec_.name});
}

void Trigger::JoinAll() {
  if (fetcher_.joinable()) {
    fetcher_.join();
  }
  for (auto& w : workers_) {
    if (w.joinable()) {
      w.join();
    }
  }
}

TriggerStatus Trigger::Snapshot() const {
  TriggerStatus st;
  st.spec = spec_;
  st.spec.paused = paused_;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      st.state = "stopped";
    } else if (paused_) {
      st.state = "paused";
    } else if (!healthy_[kFetcher] || !healthy_[kWriter]) {
      st.state = "disconnected";
    } else {
      st.state = "running";
    }
    st.last_error = last_error_;
    st.in_flight = in_flight_;
  }
  st.lag = Lag();
  st.delivered = delivered_;
  st.failed = failed_;
  st.dead_lettered = dead_lettered_;
  return st;
}

bool Trigger::WaitForRoom() {
  std::unique_lock lock(mu_);
  auto ready = [&] { return stopping_ || (!paused_ && jobs_.size() < spec_.batch); };
  if (!ready()) {
    fetch_parked_ = true;
    state_cv_.notify_all();
    state_cv_.wait(lock, ready);
    fetch_parked_ = false;
  }
  return !stopping_;
}

void Trigger::Enqueue(std::vector<Job> jobs) {
  if (jobs.empty()) {
    return;
  }
  {
    std::lock_guard lock(mu_);
    for (auto& j : jobs) {
      jobs_.push_back(std::move(j));
    }
  }
  work_cv_.notify_all();
}

bool Trigger::BackoffWait(uint32_t failures) {
  std::chrono::milliseconds delay = Backoff(failures, spec_.backoff_min, spec_.backoff_max);
  std::unique_lock lock(mu_);
  state_cv_.wait_for(lock, delay, [&] { return stopping_ || paused_; });
  return !stopping_;
}

void Trigger::SetHealthy(Component c) {
  {
    std::lock_guard lock(mu_);
    if (healthy_[c]) {
      return;
    }
    healthy_[c] = true;
    if (!healthy_[kFetcher] || !healthy_[kWriter]) {
      return;
    }
    last_error_.clear();
  }
  FAAS_LOG(log_, info, "trigger.reconnected", {"trigger", spec_.name}, {"source", spec_.source});
}

void Trigger::SetUnhealthy(Component c, const std::string& error) {
  {
    std::lock_guard lock(mu_);
    bool was_healthy = healthy_[kFetcher] && healthy_[kWriter];
    healthy_[c] = false;
    last_error_ = error;
    if (!was_healthy) {
      return;
    }
  }
  FAAS_LOG(log_, warn, "trigger.disconnected", {"trigger", spec_.name}, {"source", spec_.source},
           {"error", error});
}

std::string Trigger::LostDeliveriesError(uint32_t attempt, const std::string& last_error) const {
  std::string msg = "delivery " + std::to_string(attempt) + " exceeds max_attempts " +
                    std::to_string(spec_.max_attempts) +
                    ": earlier deliveries did not finish (consumer lost or visibility timeout "
                    "passed)";
  if (!last_error.empty()) {
    msg += "; last error: " + last_error;
  }
  return msg;
}

void Trigger::WorkerLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (stopping_) {
      return;  // jobs not started stay unacknowledged and are redelivered
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++in_flight_;
    state_cv_.notify_all();  // room for the fetch loop
    lock.unlock();
    Process(job);
    lock.lock();
    --in_flight_;
    state_cv_.notify_all();
  }
}

void Trigger::ExtendLoop() {
  const std::chrono::milliseconds every =
      std::max(spec_.visibility_timeout / 3, std::chrono::milliseconds(10));
  std::unique_lock lock(extender_mu_);
  for (;;) {
    extender_cv_.wait_for(lock, every, [&] { return extender_stop_; });
    if (extender_stop_) {
      return;
    }
    lock.unlock();
    ExtendHeld();
    lock.lock();
  }
}

void Trigger::Process(const Job& job) {
  const Delivery& d = job.delivery;
  if (d.attempt > spec_.max_attempts) {
    DeadLetter(job, LostDeliveriesError(d.attempt, job.last_error));
    return;
  }
  DeliveryResult r = CallInvoke(d);
  if (abandoned_) {
    return;  // Stop's grace passed: the outcome is dropped and the message redelivered
  }
  if (r.ok) {
    Ack(job);
    return;
  }
  ++failed_;
  if (r.error.empty()) {
    r.error = "the invocation failed";
  }
  FAAS_LOG(log_, debug, "trigger.attempt_failed", {"trigger", spec_.name}, {"fn", d.function},
           {"id", d.message_id}, {"attempt", d.attempt}, {"error", r.error});
  if (d.attempt >= spec_.max_attempts) {
    DeadLetter(job, r.error);
    return;
  }
  RetryLater(job, r.error, Backoff(d.attempt, spec_.backoff_min, spec_.backoff_max));
}

DeliveryResult Trigger::CallInvoke(const Delivery& d) {
  // InvokeFn reports failures as values; a throwing one is a bug in the caller, but it must
  // not take the worker thread (and the process) down.
  try {
    return (*env_.invoke)(d);
  } catch (const std::exception& e) {
    return {.ok = false, .error = std::string("invoke threw: ") + e.what()};
  } catch (...) {
    return {.ok = false, .error = "invoke threw a non-standard exception"};
  }
}

}  // namespace faas::triggers
