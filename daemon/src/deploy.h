// The lifecycle of a function's versions: deploy, rollback and delete, each keeping the
// registry and the scheduler in step. Plain C++ in and out; the control API (control_service.cc)
// only translates its messages to these and the results back.
//
//   Deployer deployer(registry, scheduler);
//   DeployOutcome out = deployer.Deploy({.name = "echo", .config = cfg, .library = bytes});
//   if (const DeployError* e = std::get_if<DeployError>(&out)) {
//     return Fail(ctx, e->code, e->status);
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "faas/base/status.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/registry.h"

namespace faas::daemon {

// Converts a stored version to what the scheduler runs.
scheduler::FunctionSpec SpecFor(const store::Registry& registry, const store::Version& v);

// The stable faas code (docs/http-api.md) of a registry error: function_not_found, invalid_argument
// or internal.
std::string_view StoreErrorCode(const Status& s);

struct DeployRequest {
  std::string name;
  store::FunctionConfig config;
  std::string library;  // the shared object's bytes, at most store::kMaxLibraryBytes
};

// A deploy that happened: the version that is now latest.
struct Deployed {
  store::Version version;
  bool unchanged = false;  // same content as the latest version: no version was created
  std::chrono::nanoseconds probe_time{0};
};

// A deploy that did not: `code` is the stable faas code the control API sends as "faas-code"
// (invalid_name, invalid_config, conflict, invalid_artifact, init_failed, init_timeout, or a
// store code); `status` holds the code and message its caller sees. A Result cannot carry the
// faas code: several steps fail with InvalidArgument under different faas codes.
struct DeployError {
  std::string_view code;  // a string literal
  Status status;
};

using DeployOutcome = std::variant<Deployed, DeployError>;

// What a deploy's probe gives Runtime::Prepare beside the version (a rollback gives nothing).
struct PrepareExtras {
  // The library's bytes (v.artifact_sha256 is their digest). A runtime that prepares on other
  // machines sends them along when it can (Runtime::SendsLibrary), so that none of them reads the
  // library back from the store; each checks them against the digest.
  std::string_view library;
  // Called once by a runtime that sends the library, as soon as the probe is on its way and
  // Prepare no longer reads the registry: the deploy stores the artifact meanwhile.
  std::function<void()> sent;
};

// Where a function's versions run, for the control API and its deploys: this machine's
// scheduler (--role all: LocalRuntime) or the cluster's nodes (--role gateway: RemoteInvoker,
// remote_invoker.h). The methods are the Scheduler's, by stored version. Thread-safe.
class Runtime : public scheduler::Invoker {
 public:
  // OK when outbound functions can run; else FailedPrecondition saying what is missing.
  virtual Status OutboundNetworkAvailable() const = 0;
  // Scheduler::Prepare of `v`; v.version is 0 while a deploy probes a version not yet created.
  virtual Status Prepare(const store::Version& v, std::chrono::nanoseconds* took,
                         const PrepareExtras& extras) = 0;
  // True when Prepare sends a library of `size` bytes given in PrepareExtras to where it
  // prepares, so the library need not be in the registry until the version is created.
  virtual bool SendsLibrary(std::size_t size) const = 0;
  virtual void DropPrepared(const std::string& name) = 0;
  // Scheduler::SetFunction: `v` is the function's current version from now on.
  virtual void SetVersion(const store::Version& v) = 0;
  virtual void RemoveFunction(const std::string& name) = 0;
  virtual scheduler::FunctionStats Stats(const std::string& name) const = 0;
  virtual Result<uint32_t> Prewarm(const std::string& name, uint32_t count) = 0;
};

// The Runtime of --role all: the local scheduler, its libraries from the local registry.
class LocalRuntime final : public Runtime {
 public:
  LocalRuntime(scheduler::Scheduler* scheduler, const store::Registry* registry)
      : sched_(scheduler), registry_(registry) {}
  std::shared_ptr<const scheduler::FunctionSpec> Current(const std::string& name) const override {
    return sched_->Current(name);
  }
  scheduler::InvokeResult Invoke(const std::string& name,
                                 scheduler::InvokeRequest request) override {
    return sched_->Invoke(name, std::move(request));
  }
  void InvokeAsync(const std::string& name, scheduler::InvokeRequest request, EventLoop* loop,
                   std::function<void(scheduler::InvokeResult)> done) override {
    sched_->InvokeAsync(name, std::move(request), loop, std::move(done));
  }
  Status OutboundNetworkAvailable() const override { return sched_->OutboundNetworkAvailable(); }
  // The scheduler loads the library from the registry's folder: it must be stored first.
  Status Prepare(const store::Version& v, std::chrono::nanoseconds* took,
                 const PrepareExtras& /*extras*/) override {
    return sched_->Prepare(SpecFor(*registry_, v), took);
  }
  bool SendsLibrary(std::size_t /*size*/) const override { return false; }
  void DropPrepared(const std::string& name) override { sched_->DropPrepared(name); }
  void SetVersion(const store::Version& v) override { sched_->SetFunction(SpecFor(*registry_, v)); }
  void RemoveFunction(const std::string& name) override { sched_->RemoveFunction(name); }
  scheduler::FunctionStats Stats(const std::string& name) const override {
    return sched_->Stats(name);
  }
  Result<uint32_t> Prewarm(const std::string& name, uint32_t count) override {
    return sched_->Prewarm(name, count);
  }

 private:
  scheduler::Scheduler* sched_;
  const store::Registry* registry_;
};

// Thread-safe. Neither pointer is owned; both must outlive the Deployer.
class Deployer {
 public:
  Deployer(store::Registry* registry, Runtime* runtime);

  // Checks the name and config (all problems at once), that outbound network is available if
  // asked for, and the ELF; stores the artifact; loads it once in a probe worker running as
  // the function's uid (while the artifact is being stored, when the runtime sends the library
  // with the probe: Runtime::SendsLibrary); then makes it the latest version and hands it to the
  // scheduler. A
  // library that cannot load or whose faas_init fails never replaces a working version. A
  // second deploy of a name while one runs fails with "conflict" (Aborted).
  DeployOutcome Deploy(const DeployRequest& request);

  // Points latest at an existing `version` and runs it from now on. NotFound as
  // Registry::Rollback; Aborted ("conflict") while a deploy, rollback or delete of the name runs.
  Result<store::Version> Rollback(const std::string& name, uint32_t version);

  // Removes the function, its versions and its running instances. NotFound as Registry::Delete;
  // Aborted ("conflict") while a deploy, rollback or delete of the name runs.
  Status Delete(const std::string& name);

 private:
  // Claims `name` for one change at a time (its registry step and its scheduler step must not
  // interleave with another's); Aborted when it is taken. Release with Release(name).
  Status Claim(const std::string& name, std::string_view what);
  void Release(const std::string& name);

  store::Registry* registry_;
  Runtime* scheduler_;
  std::mutex mu_;
  std::set<std::string> changing_;  // guarded by mu_: names with a change in progress
};

}  // namespace faas::daemon
