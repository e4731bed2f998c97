// InstanceLauncher: the one way the scheduler gets a new instance of a function version (cold
// starts, Prewarm, min_warm), and Worker, the pooled form of a running Instance
// (docs/design/0012-scheduler-pool.md). The seam keeps spawning and forking out of the admission
// rules: Pool sees only PooledInstance, and a launcher is what a test replaces.
#pragma once

#include <memory>

#include "faas/base/status.h"
#include "faas/sandbox/cgroup.h"
#include "faas/scheduler/scheduler.h"

#include "instance.h"
#include "pool.h"

namespace faas::scheduler {

class Zygote;

// A running worker in a pool: the Instance, seen by the Pool through PooledInstance.
class Worker final : public PooledInstance {
 public:
  explicit Worker(std::unique_ptr<Instance> instance) : instance_(std::move(instance)) {}
  uint32_t Version() const override { return instance_->Spec().version; }
  bool Healthy() const override { return instance_->Healthy(); }
  Instance& instance() { return *instance_; }

 private:
  std::unique_ptr<Instance> instance_;
};

// The Instance of a PooledInstance the scheduler's launcher made (every one in its pools is).
inline Instance& InstanceOf(PooledInstance* pooled) {
  return static_cast<Worker*>(pooled)->instance();
}

class InstanceLauncher {
 public:
  virtual ~InstanceLauncher() = default;
  // A new, ready instance of `spec` (blocks: spawn or fork, load, faas_init). `zygote` (may be
  // nullptr) is the version's zygote and `group` the function's cgroup level (may be nullptr).
  // Errors as Instance::Start's: FailedPrecondition and DeadlineExceeded are the library's.
  virtual Result<PooledPtr> Launch(std::shared_ptr<const FunctionSpec> spec,
                                   const std::shared_ptr<Zygote>& zygote,
                                   const std::shared_ptr<sandbox::FunctionCgroup>& group,
                                   StartTimings* timings) = 0;
  // The zygote's parked instance of `spec`, handed over without waiting for anything (an event
  // loop calls it: the cold start then needs no blocking thread), or nullptr when none is parked
  // now, and the caller Launches. `spawn` in *timings is the hand-over. Default: never one.
  virtual PooledPtr TakeParked(const std::shared_ptr<const FunctionSpec>& /*spec*/,
                               const std::shared_ptr<Zygote>& /*zygote*/,
                               StartTimings* /*timings*/) {
    return nullptr;
  }
};

// The real launcher: Instance::Create (a fork from the zygote, else a spawned worker).
class ProcessLauncher final : public InstanceLauncher {
 public:
  explicit ProcessLauncher(const SchedulerOptions* options) : options_(options) {}
  Result<PooledPtr> Launch(std::shared_ptr<const FunctionSpec> spec,
                           const std::shared_ptr<Zygote>& zygote,
                           const std::shared_ptr<sandbox::FunctionCgroup>& group,
                           StartTimings* timings) override {
    auto started = Instance::Create(std::move(spec), *options_, zygote, group, timings);
    if (!started.ok()) {
      return started.status();
    }
    return PooledPtr(std::make_unique<Worker>(std::move(*started)));
  }
  PooledPtr TakeParked(const std::shared_ptr<const FunctionSpec>& spec,
                       const std::shared_ptr<Zygote>& zygote, StartTimings* timings) override {
    std::unique_ptr<Instance> parked = Instance::TakeParked(*spec, zygote, timings);
    return parked == nullptr ? nullptr : PooledPtr(std::make_unique<Worker>(std::move(parked)));
  }

 private:
  const SchedulerOptions* options_;  // the scheduler's; outlives the launcher
};

}  // namespace faas::scheduler
