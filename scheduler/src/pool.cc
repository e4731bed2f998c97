// Pool: one function's admission rules (pool.h, docs/design/0012-scheduler-pool.md).
#include "pool.h"

#include <algorithm>
#include <iterator>

namespace faas::scheduler {

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

namespace {

Grant Refusal(WaiterPtr waiter, std::shared_ptr<const FunctionSpec> spec, Outcome outcome,
              std::string message) {
  Grant g;
  g.kind = Grant::kRefused;
  g.waiter = std::move(waiter);
  g.spec = std::move(spec);
  g.outcome = outcome;
  g.message = std::move(message);
  return g;
}

}  // namespace

void Pool::SetSpec(std::shared_ptr<const FunctionSpec> spec, std::vector<PooledPtr>* dead,
                   std::vector<Grant>* grants) {
  spec_ = std::move(spec);
  const uint32_t version = spec_->version;
  auto stale = std::stable_partition(idle_.begin(), idle_.end(),
                                     [&](const PooledPtr& i) { return i->Version() == version; });
  total_ -= static_cast<uint32_t>(std::distance(stale, idle_.end()));
  std::move(stale, idle_.end(), std::back_inserter(*dead));
  idle_.erase(stale, idle_.end());
  // Fewer instances, or a larger max_instances: slots for the queue.
  Serve(dead, grants);
}

PooledPtr Pool::TakeIdle(std::vector<PooledPtr>* dead, const void* affinity) {
  if (affinity != nullptr) {
    // An instance of the caller's loop needs no epoll_ctl to move its channel (async_path.cc).
    // A linear scan: idle_ holds at most max_instances.
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->affinity == affinity && (*it)->Version() == spec_->version) {
        PooledPtr inst = std::move(*it);
        idle_.erase(std::next(it).base());
        return inst;
      }
    }
  }
  while (!idle_.empty()) {
    PooledPtr inst = std::move(idle_.back());
    idle_.pop_back();
    if (inst->Version() == spec_->version) {
      return inst;
    }
    --total_;
    dead->push_back(std::move(inst));
  }
  return nullptr;
}

void Pool::EvictForFresh(std::vector<PooledPtr>* dead) {
  if (!idle_.empty() && total_ >= MaxInstances()) {
    dead->push_back(std::move(idle_.front()));
    idle_.pop_front();
    --total_;
  }
}

Grant Pool::Acquire(const WaiterPtr& waiter, const AcquireRequest& request,
                    std::vector<PooledPtr>* dead) {
  const store::FunctionConfig& cfg = spec_->config;
  if (stopping_) {
    return Refusal(waiter, spec_, Outcome::kShuttingDown, kShuttingDownMessage);
  }
  if (removed_) {
    return Refusal(waiter, spec_, Outcome::kNotFound, DeletedMessage(spec_->name));
  }
  if (request.body_bytes > cfg.max_body_bytes) {
    return Refusal(waiter, spec_, Outcome::kPayloadTooLarge,
                   TooLargeMessage(spec_->name, request.body_bytes, cfg));
  }
  Grant g;
  g.waiter = waiter;
  g.spec = spec_;
  // Fairness: while anyone is queued, a new arrival queues behind them, even if something was
  // freed a moment ago (it is already promised to the head of the queue).
  const bool may_line = queue_.empty() && !request.fresh && request.pipeline &&
                        request.affinity != nullptr && Pipelining();
  if (may_line && BusyFirst()) {
    if (PooledInstance* b = LineFor(request.affinity); b != nullptr) {
      return Behind(std::move(g), b);
    }
  }
  if (queue_.empty()) {
    if (!request.fresh) {
      if ((g.instance = TakeIdle(dead, request.affinity)) != nullptr) {
        g.instance->busy_for = request.affinity;
        busy_.insert(g.instance.get());
        g.kind = Grant::kWarm;
        return g;
      }
    } else {
      EvictForFresh(dead);
    }
    if (total_ < MaxInstances()) {
      ++total_;
      ++cold_starts_;
      g.kind = Grant::kCold;
      return g;
    }
  }
  if (may_line) {
    if (PooledInstance* b = LineFor(request.affinity); b != nullptr) {
      return Behind(std::move(g), b);
    }
  }
  if (queue_.size() >= cfg.queue_depth) {
    return Refusal(waiter, spec_, Outcome::kNoCapacity,
                   QueueFullMessage(spec_->name, cfg, waiting()));
  }
  queue_.push_back({.waiter = waiter,
                    .fresh = request.fresh,
                    .deadline = request.deadline,
                    .affinity = request.affinity});
  g.kind = Grant::kQueued;
  return g;
}

PooledInstance* Pool::LineFor(const void* affinity) const {
  // Behind the calls of the same caller (its loop holds the channel), below the depth, behind
  // the instance with the fewest.
  PooledInstance* best = nullptr;
  for (PooledInstance* b : busy_) {
    if (b->busy_for == affinity && b->behind < pipeline_depth_ &&
        b->takes_behind.load(std::memory_order_relaxed) && b->Version() == spec_->version &&
        b->Healthy() && (best == nullptr || b->behind < best->behind)) {
      best = b;
    }
  }
  return best;
}

Grant Pool::Behind(Grant g, PooledInstance* ahead) {
  ++ahead->behind;
  g.ahead = ahead;
  g.kind = Grant::kBehind;
  return g;
}

void Pool::Serve(std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  while (!queue_.empty() && !closed()) {
    Queued& head = queue_.front();
    Grant g;
    g.waiter = head.waiter;
    g.spec = spec_;
    if (!head.fresh && (g.instance = TakeIdle(dead, head.affinity)) != nullptr) {
      g.instance->busy_for = head.affinity;
      busy_.insert(g.instance.get());
      g.kind = Grant::kWarm;
    } else {
      if (head.fresh) {
        EvictForFresh(dead);
      }
      if (total_ >= MaxInstances()) {
        return;  // the head waits for the next release; so does everyone behind it
      }
      ++total_;
      ++cold_starts_;
      g.kind = Grant::kCold;
    }
    queue_.pop_front();
    grants->push_back(std::move(g));
  }
}

void Pool::Release(PooledPtr instance, bool reusable, Clock::time_point now,
                   std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  busy_.erase(instance.get());
  ++invocations_;
  invocations_ += instance->behind;  // the calls behind ended with it (their callers answer them)
  instance->behind = 0;
  instance->busy_for = nullptr;
  const bool keep = reusable && instance->Healthy() && !closed() &&
                    instance->Version() == spec_->version && spec_->config.isolation != "fresh";
  if (keep) {
    instance->last_used = now;
    idle_.push_back(std::move(instance));
  } else {
    --total_;
    dead->push_back(std::move(instance));
  }
  Serve(dead, grants);
}

void Pool::Handover(PooledInstance* instance) {
  ++invocations_;
  if (instance->behind > 0) {
    --instance->behind;
  }
}

WaiterPtr Pool::TakeBehind(PooledInstance* instance) {
  if (queue_.empty() || closed() || instance->behind >= pipeline_depth_ || !Pipelining()) {
    return nullptr;
  }
  const Queued& head = queue_.front();
  if (head.fresh || head.affinity == nullptr || head.affinity != instance->busy_for ||
      instance->Version() != spec_->version || !instance->Healthy()) {
    return nullptr;
  }
  WaiterPtr w = std::move(queue_.front().waiter);
  queue_.pop_front();
  ++instance->behind;
  return w;
}

void Pool::Requeue(PooledInstance* instance, const std::vector<WaiterPtr>& waiters,
                   Clock::time_point deadline, const void* affinity, std::vector<Grant>* grants) {
  const auto n = static_cast<uint32_t>(waiters.size());
  instance->behind -= std::min(instance->behind, n);
  if (closed()) {  // removed or shutting down meanwhile: refused like everyone queued then
    for (const WaiterPtr& w : waiters) {
      grants->push_back(stopping_
                            ? Refusal(w, spec_, Outcome::kShuttingDown, kShuttingDownMessage)
                            : Refusal(w, spec_, Outcome::kNotFound, DeletedMessage(spec_->name)));
    }
    return;
  }
  for (auto w = waiters.rbegin(); w != waiters.rend(); ++w) {
    queue_.push_front({.waiter = *w, .fresh = false, .deadline = deadline, .affinity = affinity});
  }
}

void Pool::NoteExec(std::chrono::nanoseconds exec, std::chrono::nanoseconds cpu,
                    std::chrono::nanoseconds reported_handler) {
  if (reported_handler.count() >= 0) {
    handler_avg_.Add(reported_handler);
  }
  exec_avg_.Add(exec);
  cpu_avg_.Add(cpu);
}

bool Pool::Pipelining() const {
  return pipeline_depth_ > 0 && exec_avg_.Settled() && cpu_avg_.Get() < kPipelineCpuLimit &&
         exec_avg_.Get() < kPipelineWallLimit && spec_->config.isolation != "fresh";
}

bool Pool::BusyFirst() const {
  return Pipelining() && handler_avg_.Settled() && handler_avg_.Get() < kBusyFirstHandlerLimit;
}

void Pool::ReturnSlot(bool invoked, std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  --total_;
  if (invoked) {
    ++invocations_;
  }
  Serve(dead, grants);
}

uint32_t Pool::Reserve(uint32_t count) {
  if (closed()) {
    return 0;
  }
  const uint32_t free = MaxInstances() - std::min(total_, MaxInstances());
  const uint32_t slots = std::min(count, free);
  total_ += slots;
  return slots;
}

bool Pool::AddIdle(PooledPtr instance, uint32_t version, Clock::time_point now,
                   std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  if (closed() || version != spec_->version) {
    --total_;
    dead->push_back(std::move(instance));
    Serve(dead, grants);
    return false;
  }
  instance->last_used = now;
  idle_.push_back(std::move(instance));
  Serve(dead, grants);
  return true;
}

std::vector<PooledPtr> Pool::Reap(Clock::time_point now) {
  std::vector<PooledPtr> expired;
  const store::FunctionConfig& cfg = spec_->config;
  // idle_ is LRU-ordered: front = least recently used.
  while (!idle_.empty() && total_ > cfg.min_warm &&
         now - idle_.front()->last_used >= cfg.idle_ttl) {
    expired.push_back(std::move(idle_.front()));
    idle_.pop_front();
    --total_;
  }
  return expired;
}

std::optional<Clock::time_point> Pool::EvictableSince() const {
  if (idle_.empty() || total_ <= spec_->config.min_warm) {
    return std::nullopt;
  }
  return idle_.front()->last_used;
}

PooledPtr Pool::EvictIdle() {
  PooledPtr inst = std::move(idle_.front());
  idle_.pop_front();
  --total_;
  ++evicted_;
  return inst;
}

uint32_t Pool::WarmDeficit() const {
  const uint32_t want = std::min(spec_->config.min_warm, MaxInstances());
  return closed() || total_ >= want ? 0 : want - total_;
}

void Pool::Expire(Clock::time_point now, std::vector<Grant>* grants) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->deadline <= now) {
      grants->push_back(Refusal(it->waiter, spec_, Outcome::kNoCapacity,
                                QueueTimeoutMessage(spec_->name, spec_->config)));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Pool::Cancel(const WaiterPtr& waiter) {
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [&](const Queued& q) { return q.waiter == waiter; });
  if (it == queue_.end()) {
    return false;
  }
  queue_.erase(it);
  return true;
}

void Pool::CloseAll(Outcome outcome, const std::string& message, std::vector<PooledPtr>* dead,
                    std::vector<Grant>* grants) {
  for (Queued& q : queue_) {
    grants->push_back(Refusal(std::move(q.waiter), spec_, outcome, message));
  }
  queue_.clear();
  total_ -= static_cast<uint32_t>(idle_.size());
  std::move(idle_.begin(), idle_.end(), std::back_inserter(*dead));
  idle_.clear();
}

void Pool::Remove(std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  if (closed()) {
    return;
  }
  removed_ = true;
  CloseAll(Outcome::kNotFound, DeletedMessage(spec_->name), dead, grants);
}

void Pool::Shutdown(std::vector<PooledPtr>* dead, std::vector<Grant>* grants) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  CloseAll(Outcome::kShuttingDown, kShuttingDownMessage, dead, grants);
}

}  // namespace faas::scheduler
