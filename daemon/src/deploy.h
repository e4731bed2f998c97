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
#include <mutex>
#include <set>
#include <string>
#include <string_view>
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

// Thread-safe. Neither pointer is owned; both must outlive the Deployer.
class Deployer {
 public:
  Deployer(store::Registry* registry, scheduler::Scheduler* scheduler);

  // Checks the name and config (all problems at once), that outbound network is available if
  // asked for, and the ELF; stores the artifact; loads it once in a probe worker running as
  // the function's uid; then makes it the latest version and hands it to the scheduler. A
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
  scheduler::Scheduler* scheduler_;
  std::mutex mu_;
  std::set<std::string> changing_;  // guarded by mu_: names with a change in progress
};

}  // namespace faas::daemon
