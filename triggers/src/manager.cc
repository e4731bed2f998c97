#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/triggers/triggers.h"

#include "trigger.h"

namespace faas::triggers {
namespace {

std::string DefaultConsumerName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    host[0] = '\0';
  }
  return "faasd-" + std::string(host[0] != '\0' ? host : "host") + "-" + std::to_string(::getpid());
}

std::string Quote(std::string_view name) {
  return QuoteForMessage(name);
}

}  // namespace

struct TriggerManager::Impl {
  ManagerOptions options;
  TriggerEnv env;
  std::shared_ptr<spdlog::logger> log = log::Get("triggers");

  // Serializes the control operations (Start, Add, Pause, Resume, Delete, Stop), so that what
  // is stored and what runs change in the same order. Taken before `mu`.
  std::mutex control_mu;
  // Guards the map and `stopped`; never held while waiting for a trigger.
  mutable std::mutex mu;
  // shared_ptr: List/Get may still hold one that Delete is stopping. Every trigger is stopped
  // and joined before its last reference goes.
  std::map<std::string, std::shared_ptr<Trigger>> triggers;
  bool stopped = false;

  explicit Impl(ManagerOptions o) : options(std::move(o)) {
    if (options.consumer_name.empty()) {
      options.consumer_name = DefaultConsumerName();
    }
    env.invoke = &options.invoke;
    env.queue = options.queue;
    env.consumer_name = options.consumer_name;
  }

  // Starts `spec` (normalized) and adds it to the map. Requires control_mu.
  void Launch(TriggerSpec spec) {
    std::string name = spec.name;
    std::shared_ptr<Trigger> t = spec.source == "embedded"
                                     ? MakeEmbeddedTrigger(std::move(spec), env)
                                     : MakeRedisTrigger(std::move(spec), env);
    t->Run();
    std::lock_guard lock(mu);
    triggers.emplace(std::move(name), std::move(t));
  }

  Result<std::shared_ptr<Trigger>> Find(const std::string& name) const {
    std::lock_guard lock(mu);
    auto it = triggers.find(name);
    if (it == triggers.end()) {
      return NotFoundError("trigger " + Quote(name) + " does not exist");
    }
    return it->second;
  }

  Status CheckRunning() const {
    if (!options.invoke) {
      return FailedPreconditionError("the trigger manager has no invoke function");
    }
    std::lock_guard lock(mu);
    if (stopped) {
      return FailedPreconditionError("the trigger manager is stopped");
    }
    return OkStatus();
  }

  Status SetPaused(const std::string& name, bool paused) {
    std::lock_guard control(control_mu);
    FAAS_RETURN_IF_ERROR(CheckRunning());
    FAAS_ASSIGN_OR_RETURN(std::shared_ptr<Trigger> t, Find(name));
    if (options.queue != nullptr) {
      TriggerSpec spec = t->Spec();
      spec.paused = paused;
      FAAS_RETURN_IF_ERROR(
          options.queue->PutSetting(options.settings_kind, name, SpecToJson(spec)));
    }
    t->SetPaused(paused);
    FAAS_LOG(log, info, paused ? "trigger.paused" : "trigger.resumed", {"trigger", name});
    return OkStatus();
  }
};

TriggerManager::TriggerManager(ManagerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

TriggerManager::~TriggerManager() {
  Stop();
  // Invocations abandoned by Stop still hold their worker threads until `invoke` returns.
  std::lock_guard lock(impl_->mu);
  for (auto& [name, t] : impl_->triggers) {
    t->JoinAll();
  }
}

Status TriggerManager::Start() {
  std::lock_guard control(impl_->control_mu);
  FAAS_RETURN_IF_ERROR(impl_->CheckRunning());
  if (impl_->options.queue == nullptr) {
    return OkStatus();  // nothing stored
  }
  FAAS_ASSIGN_OR_RETURN(auto stored,
                        impl_->options.queue->ListSettings(impl_->options.settings_kind));
  for (auto& [key, json] : stored) {
    Result<TriggerSpec> spec = SpecFromJson(json);
    Status s = spec.ok() ? NormalizeSpec(*spec) : spec.status();
    if (s.ok() && spec->name != key) {
      s = InvalidArgumentError("stored under " + Quote(key) + " but named " + Quote(spec->name));
    }
    if (!s.ok()) {
      // One bad definition must not keep the others (or faasd) from starting.
      FAAS_LOG(impl_->log, err, "trigger.bad_definition", {"trigger", key},
               {"error", s.ToString()});
      continue;
    }
    if (impl_->Find(key).ok()) {
      continue;  // already running (Start called twice, or Added before Start)
    }
    impl_->Launch(std::move(spec).value());
  }
  return OkStatus();
}

Status TriggerManager::Add(TriggerSpec spec) {
  FAAS_RETURN_IF_ERROR(NormalizeSpec(spec));
  if (spec.source == "embedded" && impl_->options.queue == nullptr) {
    return FailedPreconditionError("trigger " + Quote(spec.name) +
                                   ": an embedded queue needs the queue database "
                                   "(ManagerOptions.queue)");
  }
  std::lock_guard control(impl_->control_mu);
  FAAS_RETURN_IF_ERROR(impl_->CheckRunning());
  if (impl_->Find(spec.name).ok()) {
    return AlreadyExistsError("trigger " + Quote(spec.name) + " already exists");
  }
  if (impl_->options.queue != nullptr) {
    FAAS_RETURN_IF_ERROR(impl_->options.queue->PutSetting(impl_->options.settings_kind, spec.name,
                                                          SpecToJson(spec)));
  }
  impl_->Launch(std::move(spec));
  return OkStatus();
}

Status TriggerManager::Pause(const std::string& name) {
  return impl_->SetPaused(name, true);
}

Status TriggerManager::Resume(const std::string& name) {
  return impl_->SetPaused(name, false);
}

Status TriggerManager::Delete(const std::string& name) {
  std::lock_guard control(impl_->control_mu);
  FAAS_RETURN_IF_ERROR(impl_->CheckRunning());
  FAAS_ASSIGN_OR_RETURN(std::shared_ptr<Trigger> t, impl_->Find(name));
  if (impl_->options.queue != nullptr) {
    FAAS_RETURN_IF_ERROR(impl_->options.queue->DeleteSetting(impl_->options.settings_kind, name));
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->triggers.erase(name);
  }
  t->BeginStop();
  t->FinishStop(Clock::time_point::max());
  t->JoinAll();
  FAAS_LOG(impl_->log, info, "trigger.deleted", {"trigger", name});
  return OkStatus();
}

std::vector<TriggerStatus> TriggerManager::List() const {
  std::vector<std::shared_ptr<Trigger>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [name, t] : impl_->triggers) {
      all.push_back(t);
    }
  }
  std::vector<TriggerStatus> out;
  out.reserve(all.size());
  for (const auto& t : all) {
    out.push_back(t->Snapshot());
  }
  return out;
}

Result<TriggerStatus> TriggerManager::Get(const std::string& name) const {
  FAAS_ASSIGN_OR_RETURN(std::shared_ptr<Trigger> t, impl_->Find(name));
  return t->Snapshot();
}

void TriggerManager::Stop(std::chrono::milliseconds grace) {
  std::lock_guard control(impl_->control_mu);
  std::vector<std::shared_ptr<Trigger>> all;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) {
      return;
    }
    impl_->stopped = true;
    for (const auto& [name, t] : impl_->triggers) {
      all.push_back(t);
    }
  }
  for (const auto& t : all) {
    t->BeginStop();
  }
  Clock::time_point deadline = Clock::now() + grace;
  for (const auto& t : all) {
    t->FinishStop(deadline);
  }
}

}  // namespace faas::triggers
