// Following the shared store's changes on gateways and nodes (follow.h).
#include "follow.h"

#include <utility>

#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/store/nodes.h"

namespace faas::daemon {
namespace {

auto& Log() {
  static auto log = faas::log::Get("cluster");
  return log;
}

// "function:resize" -> "function".
std::string_view KindOf(std::string_view payload) {
  return payload.substr(0, payload.find(':'));
}

}  // namespace

RegistryFollower::RegistryFollower(RegistryFollowerOptions options)
    : options_(std::move(options)) {}

RegistryFollower::~RegistryFollower() {
  Stop();
}

Status RegistryFollower::Start() {
  if (listener_ != nullptr) {
    return OkStatus();
  }
  listener_ = std::make_unique<store::ChangeListener>(store::ChangeListenerOptions{
      .url = options_.store,
      .channels = {std::string(store::kRegistryChannel), std::string(store::kNodesChannel)},
      .on_notify = [this](const store::Change& c) { OnChange(c); },
      // Notices sent while the listener was not connected are lost: re-read everything.
      .on_resync = [this] { RefreshAll("listening"); }});
  FAAS_RETURN_IF_ERROR(listener_->Start());
  if (options_.resync_every.count() > 0) {
    backstop_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!wake_.wait_for(lock, options_.resync_every, [this] { return stopping_; })) {
        lock.unlock();
        RefreshAll("periodic");
        lock.lock();
      }
    });
  }
  return OkStatus();
}

void RegistryFollower::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (backstop_.joinable()) {
    backstop_.join();
  }
  if (listener_ != nullptr) {
    listener_->Stop();
  }
}

void RegistryFollower::OnChange(const store::Change& c) {
  FAAS_LOG(Log(), debug, "registry.changed", {"channel", c.channel}, {"payload", c.payload});
  if (c.channel == store::kNodesChannel) {
    Refresh("nodes", options_.nodes);  // a node drained, died or joined: act on it now
    return;
  }
  const std::string_view kind = KindOf(c.payload);
  if (kind == "function") {
    Refresh("functions", options_.functions);
  } else if (kind == "route") {
    Refresh("routes", options_.routes);
  } else if (kind == "key") {
    Refresh("keys", options_.keys);
  } else if (kind == "trigger") {
    Refresh("triggers", options_.triggers);
  } else {
    RefreshAll("unknown notice");  // from a newer faasd: re-read what we know
  }
}

void RegistryFollower::RefreshAll(std::string_view why) {
  FAAS_LOG(Log(), debug, "registry.resync", {"why", why});
  Refresh("functions", options_.functions);
  Refresh("routes", options_.routes);
  Refresh("keys", options_.keys);
  Refresh("nodes", options_.nodes);
  Refresh("triggers", options_.triggers);
}

void RegistryFollower::Refresh(std::string_view what, const std::function<Status()>& read) {
  if (!read) {
    return;
  }
  std::lock_guard lock(refresh_mu_);
  if (Status s = read(); !s.ok()) {
    FAAS_LOG(Log(), warn, "registry.refresh_failed", {"what", what}, {"error", s.message()});
  }
}

DeployPrefetcher::DeployPrefetcher(std::string store, store::Registry* registry)
    : registry_(registry),
      listener_(store::ChangeListenerOptions{
          .url = std::move(store),
          .channels = {std::string(store::kRegistryChannel)},
          .on_notify =
              [this](const store::Change& c) {
                if (KindOf(c.payload) != "function") {
                  return;
                }
                const std::string name = c.payload.substr(c.payload.find(':') + 1);
                if (Status s = Prefetch(name); !s.ok() && s.code() != StatusCode::kNotFound) {
                  // The first call fetches it then (and reports why it cannot).
                  FAAS_LOG(Log(), warn, "artifact.prefetch_failed", {"fn", name},
                           {"error", s.message()});
                }
              },
          // Nothing to catch up on: versions are read when a gateway first asks for them, and
          // a deploy whose notice was missed is fetched by its first call.
          .on_resync = nullptr}) {
  FAAS_CHECK(registry_ != nullptr);
}

DeployPrefetcher::~DeployPrefetcher() {
  Stop();
}

Status DeployPrefetcher::Start() {
  return listener_.Start();
}

void DeployPrefetcher::Stop() {
  listener_.Stop();
}

Status DeployPrefetcher::Prefetch(const std::string& function) {
  FAAS_ASSIGN_OR_RETURN(store::FunctionRecord rec, registry_->GetFunction(function));
  const auto start = Clock::now();
  FAAS_RETURN_IF_ERROR(registry_->FetchArtifact(rec.latest.artifact_sha256).status());
  FAAS_LOG(Log(), info, "artifact.prefetched", {"fn", function}, {"version", rec.latest.version},
           {"sha256", rec.latest.artifact_sha256}, {"ms", ToMillis(Clock::now() - start)});
  return OkStatus();
}

}  // namespace faas::daemon
