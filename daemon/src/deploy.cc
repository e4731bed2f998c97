#include "deploy.h"

#include <future>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/scope_exit.h"
#include "faas/base/time.h"
#include "faas/store/config.h"
#include "faas/store/elf_check.h"
#include "faas/store/hash.h"

namespace faas::daemon {

scheduler::FunctionSpec SpecFor(const store::Registry& registry, const store::Version& v) {
  return {v.function, v.version, registry.ArtifactPath(v.artifact_sha256), v.config, v.uid};
}

std::string_view StoreErrorCode(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return "function_not_found";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kAborted:
      return "conflict";
    default:
      return "internal";
  }
}

Deployer::Deployer(store::Registry* registry, Runtime* scheduler)
    : registry_(registry), scheduler_(scheduler) {
  FAAS_CHECK(registry_ != nullptr && scheduler_ != nullptr);
}

DeployOutcome Deployer::Deploy(const DeployRequest& request) {
  const std::string& name = request.name;
  const store::FunctionConfig& cfg = request.config;
  const auto started = Clock::now();
  Status name_ok = store::ValidateName(name);
  Status cfg_ok = store::ValidateConfig(cfg);
  if (!name_ok.ok() || !cfg_ok.ok()) {
    std::string msg = name_ok.ok() ? "" : name_ok.message();
    if (!cfg_ok.ok()) {
      msg += (msg.empty() ? "" : "; ") + cfg_ok.message();
    }
    return DeployError{name_ok.ok() ? "invalid_config" : "invalid_name", InvalidArgumentError(msg)};
  }
  if (cfg.network == "outbound") {
    if (Status net = scheduler_->OutboundNetworkAvailable(); !net.ok()) {
      return DeployError{"invalid_config", net};  // fail closed: never the host's network
    }
  }
  if (Status claimed = Claim(name, "deploy"); !claimed.ok()) {
    return DeployError{"conflict", claimed};
  }
  ScopeExit done([&] { Release(name); });

  auto elf = store::CheckFunctionElf(request.library);
  if (!elf.ok()) {
    return DeployError{"invalid_artifact", elf.status()};
  }
  const auto put_started = Clock::now();
  std::chrono::nanoseconds put_took{0};
  auto put = [&]() -> Result<std::string> {
    Result<std::string> stored = registry_->PutArtifact(request.library);
    put_took = Clock::now() - put_started;
    return stored;
  };
  // A runtime that sends the library with the probe (a gateway: every node gets the bytes with
  // its Prepare) lets the deploy store the artifact while the nodes prepare it: the registry is
  // written from the moment the probe is on its way (PrepareExtras::sent), and the version is
  // created only after both have succeeded (docs/design/0033).
  const bool overlap = scheduler_->SendsLibrary(request.library.size());
  std::string sha;
  if (overlap) {
    sha = store::Sha256Hex(request.library);
  } else {
    Result<std::string> stored = put();
    if (!stored.ok()) {
      return DeployError{"internal", stored.status()};
    }
    sha = *std::move(stored);
  }
  // Load the library once in a separate worker before it can become latest: the version's
  // zygote, kept for the SetFunction below, so the first call forks (docs/design/0014).
  // The probe runs the function's code, so it runs as the function's own uid already.
  auto uid = registry_->ReserveUid(name);
  if (!uid.ok()) {
    return DeployError{StoreErrorCode(uid.status()), uid.status()};
  }
  store::Version probe;
  probe.function = name;
  probe.artifact_sha256 = sha;
  probe.config = cfg;
  probe.uid = *uid;
  std::chrono::nanoseconds took{0};
  // Waited for (its destructor) on every return below, before `request` can go away.
  std::future<Result<std::string>> storing;
  PrepareExtras extras{.library = request.library, .sent = nullptr};
  if (overlap) {
    extras.sent = [&] { storing = std::async(std::launch::async, put); };
  }
  const auto probe_started = Clock::now();
  Status probed = scheduler_->Prepare(probe, &took, extras);
  const auto probe_ended = Clock::now();
  // Declared after `done`, so it runs first: a zygote SetFunction did not adopt (the deploy
  // failed after the probe) is stopped before another deploy of `name` may prepare one.
  ScopeExit unprepared([&] { scheduler_->DropPrepared(name); });
  if (probed.code() == StatusCode::kUnavailable) {  // a gateway with no node up to probe on
    return DeployError{"unavailable", probed};
  }
  if (!probed.ok()) {
    bool timeout = probed.code() == StatusCode::kDeadlineExceeded;
    bool lib_fault = timeout || probed.code() == StatusCode::kFailedPrecondition;
    return DeployError{timeout ? "init_timeout" : (lib_fault ? "init_failed" : "internal"),
                       Status(lib_fault ? StatusCode::kFailedPrecondition : probed.code(),
                              "the library failed to start: " + probed.message())};
  }
  if (overlap) {
    // The store write began when the probe was sent (else it runs now); a failed write fails
    // the deploy, and what the nodes prepared is dropped (`unprepared`).
    if (Result<std::string> stored = storing.valid() ? storing.get() : put(); !stored.ok()) {
      return DeployError{"internal", stored.status()};
    }
  }
  const auto create_started = Clock::now();
  auto created = registry_->CreateVersion(name, sha, cfg);
  if (!created.ok()) {
    return DeployError{StoreErrorCode(created.status()), created.status()};
  }
  // On a gateway this also pushes the version to every other node and waits for them (bounded).
  const auto set_started = Clock::now();
  scheduler_->SetVersion(created->version);
  // The phases of the deploy (docs/design/0030, "Rollout"), in order on its path: checks and
  // hashing before the probe (pre_ms); the probe's whole round trip (prepare_ms), of which the
  // zygote's start on the node is probe_ms; the wait for the store write after it (put_wait_ms;
  // the write itself took put_ms, beside the probe on a gateway); creating the version
  // (create_ms); making it current everywhere (set_ms).
  static auto log = log::Get("control");
  FAAS_LOG(log, info, "function.deployed", {"fn", name}, {"version", created->version.version},
           {"unchanged", created->unchanged}, {"sha256", sha},
           {"pre_ms", ToMillis(probe_started - started)},
           {"prepare_ms", ToMillis(probe_ended - probe_started)}, {"probe_ms", ToMillis(took)},
           {"put_ms", ToMillis(put_took)}, {"put_wait_ms", ToMillis(create_started - probe_ended)},
           {"create_ms", ToMillis(set_started - create_started)},
           {"set_ms", ToMillis(Clock::now() - set_started)},
           {"ms", ToMillis(Clock::now() - started)});
  return Deployed{std::move(created->version), created->unchanged, took};
}

Status Deployer::Claim(const std::string& name, std::string_view what) {
  std::lock_guard lock(mu_);
  if (!changing_.insert(name).second) {
    return AbortedError("another deploy, rollback or delete of \"" + name +
                        "\" is in progress; retry the " + std::string(what));
  }
  return OkStatus();
}

void Deployer::Release(const std::string& name) {
  std::lock_guard lock(mu_);
  changing_.erase(name);
}

Result<store::Version> Deployer::Rollback(const std::string& name, uint32_t version) {
  FAAS_RETURN_IF_ERROR(Claim(name, "rollback"));
  ScopeExit done([&] { Release(name); });
  // The version's zygote is prepared before it becomes latest, as a deploy's is, so the first
  // call after the rollback forks (docs/design/0014). Best effort: the library loaded when it
  // was deployed, and if it cannot start now, the call that needs it says why.
  FAAS_ASSIGN_OR_RETURN(store::Version target, registry_->GetVersion(name, version));
  ScopeExit unprepared([&] { scheduler_->DropPrepared(name); });
  if (Status prepared = scheduler_->Prepare(target, nullptr, {}); !prepared.ok()) {
    static auto log = log::Get("control");
    FAAS_LOG(log, warn, "rollback.prepare_failed", {"fn", name}, {"version", version},
             {"error", prepared.message()});
  }
  FAAS_ASSIGN_OR_RETURN(store::Version v, registry_->Rollback(name, version));
  scheduler_->SetVersion(v);
  return v;
}

Status Deployer::Delete(const std::string& name) {
  FAAS_RETURN_IF_ERROR(Claim(name, "delete"));
  ScopeExit done([&] { Release(name); });
  FAAS_RETURN_IF_ERROR(registry_->Delete(name));
  scheduler_->RemoveFunction(name);
  return OkStatus();
}

}  // namespace faas::daemon
