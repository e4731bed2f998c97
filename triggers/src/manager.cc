#include <unistd.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

  // The Resync thread (ManagerOptions::resync_interval); woken by Stop.
  std::mutex resync_mu;
  std::condition_variable resync_cv;
  bool resync_stop = false;
  std::thread resync_thread;

  explicit Impl(ManagerOptions o) : options(std::move(o)) {
    if (options.consumer_name.empty()) {
      options.consumer_name = DefaultConsumerName();
    }
    if (options.settings == nullptr && options.queue != nullptr) {
      options.settings = options.queue->Settings();
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

  // The stored definitions that validate, by name; bad ones are logged and left out.
  Result<std::map<std::string, TriggerSpec>> LoadStored() {
    FAAS_ASSIGN_OR_RETURN(auto stored, options.settings->ListSettings(options.settings_kind));
    std::map<std::string, TriggerSpec> out;
    for (auto& [key, json] : stored) {
      Result<TriggerSpec> spec = SpecFromJson(json);
      Status s = spec.ok() ? NormalizeSpec(*spec) : spec.status();
      if (s.ok() && spec->name != key) {
        s = InvalidArgumentError("stored under " + Quote(key) + " but named " + Quote(spec->name));
      }
      if (!s.ok()) {
        // One bad definition must not keep the others (or faasd) from starting.
        FAAS_LOG(log, err, "trigger.bad_definition", {"trigger", key}, {"error", s.ToString()});
        continue;
      }
      out.emplace(key, std::move(spec).value());
    }
    return out;
  }

  // Stops `t` and waits for its deliveries in flight. Requires control_mu; `t` is out of the map.
  static void StopAndJoin(const std::shared_ptr<Trigger>& t) {
    t->BeginStop();
    t->FinishStop(Clock::time_point::max());
    t->JoinAll();
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
    if (options.settings != nullptr) {
      TriggerSpec spec = t->Spec();
      spec.paused = paused;
      FAAS_RETURN_IF_ERROR(
          options.settings->PutSetting(options.settings_kind, name, SpecToJson(spec)));
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
  if (impl_->options.settings == nullptr) {
    return OkStatus();  // nothing stored
  }
  FAAS_ASSIGN_OR_RETURN(auto stored, impl_->LoadStored());
  for (auto& [key, spec] : stored) {
    if (impl_->Find(key).ok()) {
      continue;  // already running (Start called twice, or Added before Start)
    }
    impl_->Launch(std::move(spec));
  }
  if (impl_->options.resync_interval.count() > 0 && !impl_->resync_thread.joinable()) {
    Impl* impl = impl_.get();
    impl_->resync_thread = std::thread([this, impl] {
      std::unique_lock lock(impl->resync_mu);
      while (!impl->resync_cv.wait_for(lock, impl->options.resync_interval,
                                       [impl] { return impl->resync_stop; })) {
        lock.unlock();
        if (Status s = Resync(); !s.ok() && s.code() != StatusCode::kFailedPrecondition) {
          FAAS_LOG(impl->log, warn, "trigger.resync_failed", {"error", s.ToString()});
        }
        lock.lock();
      }
    });
  }
  return OkStatus();
}

Status TriggerManager::Resync() {
  std::lock_guard control(impl_->control_mu);
  FAAS_RETURN_IF_ERROR(impl_->CheckRunning());
  if (impl_->options.settings == nullptr) {
    return OkStatus();
  }
  FAAS_ASSIGN_OR_RETURN(auto stored, impl_->LoadStored());
  // control_mu keeps every other control call out, so the map changes only here meanwhile; `mu`
  // is held only to copy and to erase (SetPaused may wait up to a second for a fetch to park).
  std::map<std::string, std::shared_ptr<Trigger>> running;
  {
    std::lock_guard lock(impl_->mu);
    running = impl_->triggers;
  }
  std::vector<std::shared_ptr<Trigger>> gone;
  for (auto& [name, t] : running) {
    auto want = stored.find(name);
    TriggerSpec now = t->Snapshot().spec;
    bool same = false;
    if (want != stored.end()) {
      TriggerSpec a = now;
      TriggerSpec b = want->second;
      a.paused = b.paused = false;
      same = SpecToJson(a) == SpecToJson(b);
    }
    if (same) {
      if (now.paused != want->second.paused) {
        t->SetPaused(want->second.paused);
        FAAS_LOG(impl_->log, info, "trigger.resynced", {"trigger", name},
                 {"change", want->second.paused ? "paused" : "resumed"});
      }
      stored.erase(want);  // nothing left to launch for it
      continue;
    }
    FAAS_LOG(impl_->log, info, "trigger.resynced", {"trigger", name},
             {"change", want == stored.end() ? "deleted" : "changed"});
    {
      std::lock_guard lock(impl_->mu);
      impl_->triggers.erase(name);
    }
    gone.push_back(t);
  }
  for (const auto& t : gone) {
    Impl::StopAndJoin(t);
  }
  for (auto& [name, spec] : stored) {
    FAAS_LOG(impl_->log, info, "trigger.resynced", {"trigger", name}, {"change", "added"});
    impl_->Launch(std::move(spec));
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
  if (impl_->options.settings != nullptr) {
    FAAS_RETURN_IF_ERROR(impl_->options.settings->PutSetting(impl_->options.settings_kind,
                                                             spec.name, SpecToJson(spec)));
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
  if (impl_->options.settings != nullptr) {
    FAAS_RETURN_IF_ERROR(
        impl_->options.settings->DeleteSetting(impl_->options.settings_kind, name));
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->triggers.erase(name);
  }
  Impl::StopAndJoin(t);
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
  // The Resync thread first: it takes control_mu, which Stop holds below.
  {
    std::lock_guard lock(impl_->resync_mu);
    impl_->resync_stop = true;
  }
  impl_->resync_cv.notify_all();
  if (impl_->resync_thread.joinable()) {
    impl_->resync_thread.join();
  }
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
