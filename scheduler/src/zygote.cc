#include "zygote.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "faas/base/log.h"
#include "faas/sandbox/channel.h"
#include "faas/v1/worker.pb.h"

namespace faas::scheduler {
namespace {

constexpr std::size_t kMaxKeptExits = 1024;    // unasked-for reports (e.g. a fork bomb's)
constexpr std::size_t kMaxZygoteFrame = 4096;  // its frames are a few bytes

}  // namespace

std::size_t ParkTargetFor(const FunctionSpec& spec, const SchedulerOptions& options) {
  if (!options.park_instances) {
    return 0;
  }
  return spec.config.isolation == "fresh" ? std::max<std::size_t>(options.parked_fresh, 1) : 1;
}

Result<std::shared_ptr<Zygote>> Zygote::Start(std::shared_ptr<const FunctionSpec> spec,
                                              const SchedulerOptions& options,
                                              std::shared_ptr<sandbox::FunctionCgroup> group,
                                              bool park_first) {
  StartTimings timings;
  const auto t0 = Clock::now();
  FAAS_ASSIGN_OR_RETURN(std::unique_ptr<InstanceProcess> worker,
                        InstanceProcess::Start(spec, options, group, &timings, /*as_zygote=*/true));
  const auto started = Clock::now();
  if (worker->SenderPid() <= 0) {
    return UnavailableError("the zygote's ready frame carried no sender pid");
  }
  // fork() copies only the calling thread: a faas_init that started threads would leave every
  // instance without them. Such a version runs without a zygote.
  int threads = std::atoi(StatusField(ProcStatus(worker->SenderPid()), "Threads").c_str());
  if (threads != 1) {
    return FailedPreconditionError(
        "faas_init left " + std::to_string(threads) +
        " threads running; a zygote can only fork a single-threaded process");
  }
  if (sandbox::InstanceCgroup* cg = worker->Cgroup(); cg != nullptr) {
    // Whatever faas_init left running beside the zygote (a forked process) would share the
    // zygote's pid namespace, from which every instance is visible: it goes, before the first
    // fork. The zygote itself runs no function code after this (signals blocked, raw clone).
    const pid_t keep[] = {worker->Pid(), worker->SenderPid()};
    FAAS_RETURN_IF_ERROR(cg->KillAllExcept(keep));
    // faas_init ran under the function's own memory limit; the allowance for forks comes now.
    const sandbox::CgroupLimits own = LimitsFor(*spec, options);
    sandbox::CgroupLimits forking = own;
    // One allowance per instance, and one per parked instance.
    forking.memory_bytes += (uint64_t{spec->config.max_instances} + ParkTargetFor(*spec, options)) *
                            kForkAllowanceBytes;
    FAAS_RETURN_IF_ERROR(cg->SetLimits(own, forking));
  }
  std::shared_ptr<Zygote> z(new Zygote());
  z->host_pid_ = worker->SenderPid();
  z->group_ = std::move(group);
  z->spec_ = std::move(spec);
  z->worker_ = std::move(worker);
  z->park_target_ = ParkTargetFor(*z->spec_, options);
  z->phases_.boot = started - t0;
  z->phases_.start = timings;
  z->phases_.ready = Clock::now() - started;
  const auto park_started = Clock::now();
  if (z->park_target_ > 0 && park_first) {
    // The first instance, parked now: the call right after a deploy takes it. The reaper parks
    // the rest (ParkTarget) off the deploy's path.
    if (Status parked = z->Park(options); !parked.ok()) {
      static auto log = log::Get("scheduler");
      FAAS_LOG(log, warn, "zygote.park_failed", {"fn", z->spec_->name}, {"pid", z->host_pid_},
               {"error", parked.message()});
    }
  }
  z->phases_.park = Clock::now() - park_started;
  return z;
}

Status Zygote::Park(const SchedulerOptions& options) {
  {
    std::lock_guard lock(park_mu_);
    if (parked_.size() >= park_target_ || parking_ || park_stopped_ || dead_) {
      return OkStatus();
    }
    parking_ = true;
  }
  StartTimings timings;
  auto forked = InstanceProcess::Fork(shared_from_this(), options, &timings, /*park=*/true);
  std::unique_ptr<InstanceProcess> unwanted;  // ended outside the lock
  {
    std::lock_guard lock(park_mu_);
    parking_ = false;
    if (forked.ok()) {
      if (park_stopped_) {
        unwanted = std::move(*forked);
      } else {
        parked_.push_back(std::move(*forked));
      }
    }
  }
  parked_cv_.notify_all();
  return forked.ok() ? OkStatus() : forked.status();
}

std::unique_ptr<InstanceProcess> Zygote::TakeParked(Clock::time_point deadline) {
  std::vector<std::unique_ptr<InstanceProcess>> dead;  // ended outside the lock
  std::unique_lock lock(park_mu_);
  parked_cv_.wait_until(lock, deadline, [&] { return !parked_.empty() || !parking_; });
  while (!parked_.empty()) {
    std::unique_ptr<InstanceProcess> taken = std::move(parked_.front());
    parked_.pop_front();
    if (taken->Healthy() && !taken->Gone()) {
      return taken;
    }
    dead.push_back(std::move(taken));  // died while parked (killed from outside)
  }
  return nullptr;
}

std::unique_ptr<InstanceProcess> Zygote::TryTakeParked() {
  std::lock_guard lock(park_mu_);
  if (parked_.empty() || !parked_.front()->Healthy() || parked_.front()->Gone()) {
    return nullptr;  // a dead one is TakeParked's to end: that may wait for the zygote's report
  }
  std::unique_ptr<InstanceProcess> taken = std::move(parked_.front());
  parked_.pop_front();
  return taken;
}

bool Zygote::WantsPark() {
  std::lock_guard lock(park_mu_);
  return parked_.size() < park_target_ && !parking_ && !park_stopped_ && !dead_;
}

pid_t Zygote::ParkedPid() {
  std::lock_guard lock(park_mu_);
  return parked_.empty() ? 0 : parked_.front()->Pid();
}

std::size_t Zygote::ParkedCount() {
  std::lock_guard lock(park_mu_);
  return parked_.size();
}

void Zygote::StopParking() {
  std::deque<std::unique_ptr<InstanceProcess>> parked;  // ended outside the lock
  {
    std::lock_guard lock(park_mu_);
    park_stopped_ = true;
    parked.swap(parked_);
  }
}

Zygote::~Zygote() {
  if (!worker_) {
    return;
  }
  // The parked instances first: they are in the zygote's pid namespace (no Park runs now: each
  // holds a reference).
  parked_.clear();
  // Closing the channel retires the zygote; as PID 1 its exit ends its namespace. Every instance
  // held a reference, so none is left to lose. Its CPU since it was ready is the forks' work:
  // the platform's (its loading and faas_init were recorded when it started).
  worker_->KillAll();
  if (on_end_ && worker_->Cgroup() != nullptr) {
    on_end_(*spec_, worker_->Account().Since(worker_->Cpu()));
  }
}

bool Zygote::Alive() {
  if (dead_) {
    return false;
  }
  std::lock_guard lock(alive_mu_);
  if (worker_->Exited()) {
    dead_ = true;  // the keeper exited: the zygote is gone
  }
  return !dead_;
}

Status Zygote::ReadOne(Clock::time_point deadline, std::optional<pid_t>* forked) {
  auto frame = sandbox::ReadFrame(worker_->ChannelFd(), kMaxZygoteFrame, deadline);
  if (!frame.ok()) {
    if (frame.status().code() != StatusCode::kDeadlineExceeded) {
      dead_ = true;
    }
    return frame.status();
  }
  v1::WorkerResponse msg;
  if (!msg.ParseFromString(*frame)) {
    dead_ = true;
    return InternalError("protocol violation: malformed zygote frame");
  }
  if (msg.has_forked()) {
    *forked = static_cast<pid_t>(msg.forked().pid());
    fork_error_ = msg.forked().error();
  } else if (msg.has_exited()) {
    auto pid = static_cast<pid_t>(msg.exited().pid());
    if (exits_.size() >= kMaxKeptExits) {
      exits_.erase(exit_order_.front());
      exit_order_.pop_front();
    }
    if (exits_
            .insert_or_assign(
                pid, ExitInfo{.signaled = msg.exited().signaled(), .value = msg.exited().value()})
            .second) {
      exit_order_.push_back(pid);
    }
  } else {
    dead_ = true;
    return InternalError("protocol violation: unexpected zygote frame");
  }
  return OkStatus();
}

Result<pid_t> Zygote::Fork(int channel, int log, Clock::time_point deadline) {
  std::lock_guard lock(mu_);
  if (dead_) {
    return UnavailableError("the zygote is gone");
  }
  const int fds[] = {channel, log};
  Status sent = sandbox::SendWithFds(worker_->ChannelFd(), 'F', fds);
  if (!sent.ok()) {
    dead_ = true;
    return UnavailableError("fork request: " + sent.message());
  }
  for (;;) {
    std::optional<pid_t> forked;
    Status s = ReadOne(deadline, &forked);
    if (!s.ok()) {
      dead_ = true;  // a zygote that does not answer a fork in time is not trusted again
      return UnavailableError("the zygote did not answer the fork request: " + s.message());
    }
    if (forked) {
      if (*forked <= 0) {
        // EAGAIN: the pids limit. EPERM/ENOSPC: no unprivileged user namespaces on this host
        // (docs/operations.md, "Host uids"); every cold start then spawns a worker.
        return UnavailableError(std::string("the zygote could not clone an instance: ") +
                                (fork_error_ != 0 ? std::strerror(fork_error_) : "unknown error"));
      }
      TakeExit(*forked);  // a recycled pid in the namespace: an old report is not this child's
      return *forked;
    }
  }
}

std::optional<ExitInfo> Zygote::TakeExit(pid_t ns_pid) {
  auto it = exits_.find(ns_pid);
  if (it == exits_.end()) {
    return std::nullopt;
  }
  ExitInfo info = it->second;
  exits_.erase(it);
  std::erase(exit_order_, ns_pid);
  return info;
}

std::optional<ExitInfo> Zygote::ExitOf(pid_t ns_pid, Clock::time_point deadline) {
  std::lock_guard lock(mu_);
  for (;;) {
    if (auto info = TakeExit(ns_pid)) {
      return info;
    }
    std::optional<pid_t> forked;
    if (dead_ || !ReadOne(deadline, &forked).ok()) {
      return std::nullopt;
    }
  }
}

}  // namespace faas::scheduler
