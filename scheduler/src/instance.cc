// Instance (instance.h): the two parts joined, and the billing of an instance's end.
#include "instance.h"

#include "faas/base/log.h"

#include "zygote.h"

namespace faas::scheduler {

Result<std::unique_ptr<Instance>> Instance::Of(Result<std::unique_ptr<InstanceProcess>> process) {
  if (!process.ok()) {
    return process.status();
  }
  return std::unique_ptr<Instance>(new Instance(std::move(*process)));
}

Result<std::unique_ptr<Instance>> Instance::Create(
    std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
    const std::shared_ptr<Zygote>& zygote, const std::shared_ptr<sandbox::FunctionCgroup>& group,
    StartTimings* timings) {
  if (zygote != nullptr && zygote->Alive() && zygote->Spec().version == spec->version) {
    auto forked = Fork(zygote, options, timings);
    if (forked.ok()) {
      return forked;
    }
    static auto log = log::Get("scheduler");
    FAAS_LOG(log, warn, "zygote.fork_failed", {"fn", spec->name}, {"version", spec->version},
             {"error", forked.status().message()}, {"fallback", "spawn"});
    *timings = StartTimings{};
  }
  return Start(std::move(spec), options, group, timings);
}

Result<std::unique_ptr<Instance>> Instance::Start(
    std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
    const std::shared_ptr<sandbox::FunctionCgroup>& group, StartTimings* timings, bool as_zygote) {
  return Of(InstanceProcess::Start(std::move(spec), options, group, timings, as_zygote));
}

Result<std::unique_ptr<Instance>> Instance::Fork(const std::shared_ptr<Zygote>& zygote,
                                                 const SchedulerOptions& options,
                                                 StartTimings* timings) {
  return Of(InstanceProcess::Fork(zygote, options, timings));
}

std::unique_ptr<Instance> Instance::TakeParked(const FunctionSpec& spec,
                                               const std::shared_ptr<Zygote>& zygote,
                                               StartTimings* timings) {
  if (zygote == nullptr || zygote->Spec().version != spec.version || !zygote->Alive()) {
    return nullptr;
  }
  std::unique_ptr<InstanceProcess> parked = InstanceProcess::TakeParked(zygote, timings);
  return parked == nullptr ? nullptr : std::unique_ptr<Instance>(new Instance(std::move(parked)));
}

Instance::~Instance() {
  // Closing the channel asks a healthy worker to exit; the kill makes sure it does. The cgroup
  // (destroyed with the process part) then kills anything the function left behind.
  const bool bill = Billed();
  // What ran until now (or until EndNow) is the function's (background); tearing it down is the
  // platform's.
  const std::chrono::nanoseconds background =
      ended_background_ ? *ended_background_
                        : (bill ? TakeBackgroundCpu(true) : std::chrono::nanoseconds(0));
  process_->CloseChannel();
  process_->Kill();
  process_->Wait();
  if (bill) {
    // Kill the rest first, so the final CPU reading is final.
    process_->KillAll();
    on_end_(Spec(), background, process_->Account().Since(process_->Cpu()));
  }
}

void Instance::EndNow() {
  if (!ended_background_) {
    ended_background_ = Billed() ? TakeBackgroundCpu(true) : std::chrono::nanoseconds(0);
  }
  process_->Kill();
}

std::chrono::nanoseconds Instance::TakeBackgroundCpu(bool final) {
  metering::CpuAccount& account = process_->Account();
  return account.TakeBackground(final && account.IsReady() ? std::optional(process_->Cpu())
                                                           : std::nullopt);
}

}  // namespace faas::scheduler
